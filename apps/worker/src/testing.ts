/** Shared by the worker's process-level tests: how they start workers and read back what the workers stored. */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scrollPoints } from '@lookalike/core';
import { INDEXED_FIELDS } from '@lookalike/services';
import { EmbeddedVectorStore } from '@lookalike/store-embedded';

export const MODELS = fileURLToPath(new URL('../../../models/', import.meta.url));

/**
 * A worker's environment: its Redis and queue prefix, this test's data folder, the committed models, no schedule, and
 * a 5 s job lock, so a killed worker's job is taken up again in seconds rather than BullMQ's default minute.
 */
export function workerEnv(dir: string, prefix: string, redisUrl: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    REDIS_URL: redisUrl,
    QUEUE_PREFIX: prefix,
    DATA_DIR: dir,
    INGEST_ROOTS: dir,
    MODELS_DIR: MODELS,
    QDRANT_URL: undefined,
    AUDIT_SCHEDULE: 'false',
    JOB_LOCK_MS: '5000',
  };
}

/** Every id in the embedded store the workers wrote under `dir`, opened as the next process would open it. */
export async function storedIds(dir: string): Promise<string[]> {
  const store = await EmbeddedVectorStore.open(join(dir, 'store'));
  try {
    await store.ensureCollection({
      name: 'lookalike',
      dims: { robust: 128, clean: 128 },
      indexedFields: INDEXED_FIELDS,
    });
    const ids: string[] = [];
    for await (const p of scrollPoints(store, { pageSize: 50 })) ids.push(p.id);
    return ids;
  } finally {
    await store.close();
  }
}
