import { randomUUID } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BullJobRunner, type JobName } from '@lookalike/queue';
import { INDEXED_FIELDS } from '@lookalike/services';
import { EmbeddedVectorStore } from '@lookalike/store-embedded';
import { generateCatalog } from '@lookalike/synth';
import { afterAll, describe, expect, it } from 'vitest';

// Real processes, real Redis, real models and store: a worker is SIGKILLed mid-ingest and another takes over.
const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const MODELS = fileURLToPath(new URL('../../../models/', import.meta.url));
const REDIS_URL = 'redis://127.0.0.1:6379';
const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

describe('ingest through BullMQ when a worker is killed', () => {
  it('ends with every image present exactly once after SIGKILL and a restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fault-'));
    dirs.push(dir);
    const count = 96;
    await generateCatalog({ count, seed: 12, outDir: join(dir, 'catalog'), size: 96 });
    const prefix = `test-${randomUUID()}`;
    const env = {
      ...process.env,
      REDIS_URL,
      QUEUE_PREFIX: prefix,
      DATA_DIR: dir,
      INGEST_ROOTS: dir,
      MODELS_DIR: MODELS,
      QDRANT_URL: undefined,
    };
    const runner = new BullJobRunner(REDIS_URL, { prefix });
    const completed = new Set<string>();
    let batches = -1;
    runner.events.on('completed', (id: string, name: JobName, result: unknown) => {
      if (name === 'ingest-run') batches = (result as { batches: number }).batches;
      else completed.add(id);
    });
    const startWorker = () => spawn(process.execPath, [main], { env, stdio: 'ignore' });
    try {
      let worker = startWorker();
      await runner.enqueue(
        'ingest-run',
        {
          runId: 'fault',
          source: { kind: 'manifest', location: join(dir, 'catalog', 'manifest.jsonl') },
          batchSize: 4,
        },
        { jobId: 'fault' },
      );
      // Kill the first worker once a few batches are done and others are surely in flight.
      for (let i = 0; i < 600 && completed.size < 3; i++) await new Promise((r) => setTimeout(r, 100));
      expect(completed.size).toBeGreaterThanOrEqual(3);
      worker.kill('SIGKILL');
      await new Promise((r) => worker.once('exit', r));
      const beforeRestart = completed.size;
      expect(beforeRestart).toBeLessThan(count / 4);
      worker = startWorker();
      // The killed worker's active job is recovered by BullMQ's stalled-job check (lock duration 30 s).
      for (let i = 0; i < 1200 && !(batches > 0 && completed.size >= batches); i++)
        await new Promise((r) => setTimeout(r, 100));
      worker.kill('SIGTERM');
      await new Promise((r) => worker.once('exit', r));
      expect(batches).toBe(count / 4);
      expect(completed.size).toBe(batches);

      const store = await EmbeddedVectorStore.open(join(dir, 'store'));
      try {
        // Open the store the workers wrote, as the next process would.
        await store.ensureCollection({
          name: 'lookalike',
          dims: { robust: 128, clean: 128 },
          indexedFields: INDEXED_FIELDS,
        });
        const ids: string[] = [];
        let cursor: string | undefined;
        do {
          const page = await store.scroll({ limit: 50, ...(cursor ? { cursor } : {}) });
          ids.push(...page.points.map((p) => p.id));
          cursor = page.next;
        } while (cursor);
        expect(ids.length).toBe(count);
        expect(new Set(ids).size).toBe(count);
      } finally {
        await store.close();
      }
    } finally {
      for (const key of ['ingest', 'audit'] as const) await runner.queue(key).obliterate({ force: true });
      await runner.close();
    }
  }, 180_000);
});
