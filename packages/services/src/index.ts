/**
 * The composition root shared by the apps: from a parsed `Config` it builds the vector store (Qdrant when
 * `QDRANT_URL` is set, else the embedded store under `DATA_DIR`), both image towers, and a job runner (BullMQ with
 * an ingest worker in this process when `REDIS_URL` is set, else the in-process runner). Apps only call this and
 * wire the result to their entry points.
 */
import { join } from 'node:path';
import type { CollectionSpec, Config, EncoderRole, ImageEncoder, VectorStore } from '@lookalike/core';
import { ModelRegistry, OnnxImageEncoder } from '@lookalike/encoder';
import { createIngestHandlers } from '@lookalike/ingest';
import { BullJobRunner, InProcessJobRunner, startWorker, type JobRunner } from '@lookalike/queue';
import { EmbeddedVectorStore } from '@lookalike/store-embedded';
import { QdrantVectorStore } from '@lookalike/store-qdrant';

/** Payload fields every collection indexes for filters (the synthetic catalog's labels and image facts). */
export const INDEXED_FIELDS: CollectionSpec['indexedFields'] = [
  { path: 'labels.part', type: 'keyword' },
  { path: 'labels.defect', type: 'keyword' },
  { path: 'labels.color', type: 'keyword' },
  { path: 'labels.material', type: 'keyword' },
  { path: 'labels.position', type: 'keyword' },
  { path: 'format', type: 'keyword' },
  { path: 'width', type: 'integer' },
  { path: 'height', type: 'integer' },
];

export interface Services {
  config: Config;
  store: VectorStore & { optimize?: () => Promise<{ indexed: boolean }> };
  encoders: Record<EncoderRole, ImageEncoder>;
  runner: JobRunner;
  collection: CollectionSpec;
  /** Closes in order: the runner (finishing running jobs), the encoders, the store. */
  close(): Promise<void>;
}

/** Builds and connects everything; fails with a clear error if a model or the store cannot be opened. */
export async function createServices(config: Config): Promise<Services> {
  const registry = await ModelRegistry.open(config.paths.models);
  const runtime = {
    threads: config.encoder.threads,
    maxBatch: config.encoder.maxBatch,
    maxWaitMs: config.encoder.maxWaitMs,
  };
  const encoders: Record<EncoderRole, ImageEncoder> = {
    robust: await OnnxImageEncoder.load(registry, config.models.robust, runtime),
    clean: await OnnxImageEncoder.load(registry, config.models.clean, runtime),
  };
  const store =
    config.store.kind === 'qdrant'
      ? new QdrantVectorStore({
          url: config.store.url,
          collection: config.store.collection,
          ...(config.store.apiKey ? { apiKey: config.store.apiKey } : {}),
        })
      : await EmbeddedVectorStore.open(join(config.paths.data, 'store'), config.store.collection);
  const collection: CollectionSpec = {
    name: config.store.collection,
    dims: { robust: encoders.robust.info.dim, clean: encoders.clean.info.dim },
    indexedFields: INDEXED_FIELDS,
  };
  await store.ensureCollection(collection);
  const handlers = createIngestHandlers({
    store,
    encoders,
    roots: config.ingest.roots,
    decode: { maxBytes: config.images.maxBytes, maxPixels: config.images.maxPixels },
    fetch: {
      maxBytes: config.ingest.fetchMaxBytes,
      timeoutMs: config.ingest.fetchTimeoutMs,
      allowlist: config.ingest.urlAllowlist,
    },
  });
  let runner: JobRunner;
  let stopWorker: () => Promise<void> = () => Promise.resolve();
  if (config.redis) {
    runner = new BullJobRunner(config.redis.url, { prefix: config.redis.prefix });
    const worker = startWorker('ingest', handlers, {
      redisUrl: config.redis.url,
      prefix: config.redis.prefix,
      concurrency: config.ingest.concurrency,
    });
    stopWorker = () => worker.close();
  } else {
    runner = new InProcessJobRunner(handlers, { ingest: Math.max(1, config.ingest.concurrency) });
  }
  return {
    config,
    store,
    encoders,
    runner,
    collection,
    async close() {
      await stopWorker();
      await runner.close();
      await Promise.all(Object.values(encoders).map((e) => e.close()));
      await store.close();
    },
  };
}
