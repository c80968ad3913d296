/**
 * The composition root shared by the apps: from a parsed `Config` it builds the vector store (Qdrant when
 * `QDRANT_URL` is set, else the embedded store under `DATA_DIR`), both image towers, and a job runner (BullMQ with
 * an ingest worker in this process when `REDIS_URL` is set, else the in-process runner). Apps only call this and
 * wire the result to their entry points.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ENCODER_ROLES,
  type CollectionSpec,
  type Config,
  type EncoderRole,
  type ImageEncoder,
  type PointPayload,
  type TextEncoder,
  type VectorStore,
} from '@lookalike/core';
import { PixelSpaceModel } from '@lookalike/attacks';
import { createAuditHandlers, FileAuditStore } from '@lookalike/audit';
import { ModelRegistry, OnnxImageEncoder, OnnxTextEncoder } from '@lookalike/encoder';
import { PreprocessPool, preprocessHash, type ImagePreparer } from '@lookalike/imaging';
import { createIngestHandlers, fetchImage, resolveInsideRoots } from '@lookalike/ingest';
import {
  auditOptionsSchema,
  BullJobRunner,
  InProcessJobRunner,
  startWorker,
  WorkerMonitor,
  type AuditOptions,
  type JobRunner,
  type QueueKey,
} from '@lookalike/queue';
import { EmbeddedVectorStore, type EmbeddedStoreOptions } from '@lookalike/store-embedded';
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

/** Where images uploaded through the API are kept (named by their sha256); always an allowed ingest root. */
export function uploadsDir(config: Config): string {
  return join(config.paths.data, 'uploads');
}

/** Which job queues this process works on when jobs go through Redis (in-process runs always do both). */
export interface ServiceOptions {
  /** Default: both. The API process in a multi-process deployment passes `[]`. */
  workers?: readonly QueueKey[];
  /** Whether the runner relays job events (progress bars, caches); worker processes need none. Default true. */
  jobEvents?: boolean;
  /**
   * Told of each optimize the embedded store runs by itself (compaction and indexes, every few dozen writes).
   * Default: failures go to stderr (the next writes try again), successes are not reported.
   */
  onStoreOptimize?: EmbeddedStoreOptions['onOptimize'];
}

function reportOptimizeFailure(outcome: { result: unknown } | { error: Error }): void {
  if ('error' in outcome) console.error(`The embedded store could not optimize itself: ${outcome.error.message}`);
}

export interface Services {
  config: Config;
  /** The store; the embedded one can also be optimized (compacted and indexed) on demand. */
  store: VectorStore & { optimize?: () => Promise<{ indexed: boolean }> };
  encoders: Record<EncoderRole, ImageEncoder>;
  /** The text tower shared by both image towers (zero-shot text search). */
  text: TextEncoder;
  /** The models folder, for components that need the model files themselves (the audit's gradient graphs). */
  registry: ModelRegistry;
  /**
   * The process's image decoding and preprocessing threads (a `PreprocessPool`, started on first use), shared by
   * ingest and by query uploads over 1 MP: at most two images per thread are decoded at once, whatever the load.
   */
  preparer: ImagePreparer;
  runner: JobRunner;
  collection: CollectionSpec;
  /** Finished audits (JSON and HTML reports) under `DATA_DIR/audits`. */
  audits: FileAuditStore;
  /** The audit options the configuration gives (AUDIT_QUERIES, AUDIT_EPSILONS, AUDIT_STEPS, AUDIT_ATTACK). */
  auditDefaults: AuditOptions;
  /** With Redis: this process's BullMQ workers, their job metrics and whether they run (the worker's `/readyz`). */
  monitor: WorkerMonitor | undefined;
  /**
   * Installs the nightly audit (AUDIT_CRON) as a BullMQ job scheduler; every worker may call it, they converge on
   * one schedule. Returns false without Redis (in-process runs have no scheduler).
   */
  scheduleAudits(): Promise<boolean>;
  /**
   * Closes in order: the workers and runner (finishing running jobs), the preprocessing threads, the encoders and
   * models, the store.
   */
  close(): Promise<void>;
}

/** The audit defaults from the configuration. */
export function auditDefaults(config: Config): AuditOptions {
  return auditOptionsSchema.parse({
    queries: config.audit.queries,
    epsilons: config.audit.epsilons,
    steps: config.audit.steps,
    attack: config.audit.attack,
  });
}

/** Builds and connects everything; fails with a clear error if a model or the store cannot be opened. */
export async function createServices(config: Config, options: ServiceOptions = {}): Promise<Services> {
  const registry = await ModelRegistry.open(config.paths.models);
  const runtime = {
    threads: config.encoder.threads,
    maxBatch: config.encoder.maxBatch,
    maxWaitMs: config.encoder.maxWaitMs,
  };
  const modelIds: Record<EncoderRole, string> = { robust: config.models.robust, clean: config.models.clean };
  const encoders: Record<EncoderRole, ImageEncoder> = {
    robust: await OnnxImageEncoder.load(registry, modelIds.robust, runtime),
    clean: await OnnxImageEncoder.load(registry, modelIds.clean, runtime),
  };
  const text = await OnnxTextEncoder.load(registry, config.models.text, runtime);
  const store =
    config.store.kind === 'qdrant'
      ? new QdrantVectorStore({
          url: config.store.url,
          collection: config.store.collection,
          ...(config.store.apiKey ? { apiKey: config.store.apiKey } : {}),
        })
      : await EmbeddedVectorStore.open(join(config.paths.data, 'store'), config.store.collection, {
          onOptimize: options.onStoreOptimize ?? reportOptimizeFailure,
        });
  const collection: CollectionSpec = {
    name: config.store.collection,
    dims: { robust: encoders.robust.info.dim, clean: encoders.clean.info.dim },
    indexedFields: INDEXED_FIELDS,
  };
  await store.ensureCollection(collection);
  const roots = [...config.ingest.roots, uploadsDir(config)];
  const decode = {
    maxBytes: config.images.maxBytes,
    maxPixels: config.images.maxPixels,
    allowSvg: config.images.allowSvg,
  };
  const fetchLimits = {
    maxBytes: config.ingest.fetchMaxBytes,
    timeoutMs: config.ingest.fetchTimeoutMs,
    allowlist: config.ingest.urlAllowlist,
  };
  let pool: PreprocessPool | undefined;
  const preparer: ImagePreparer = {
    prepare: (images, specs, limits, mode) =>
      (pool ??= new PreprocessPool(
        config.images.preprocessThreads ? { threads: config.images.preprocessThreads } : {},
      )).prepare(images, specs, limits, mode),
    close: async () => pool?.close(),
  };
  const preprocess = config.images.preprocess;
  const ingest = createIngestHandlers({ store, encoders, roots, decode, fetch: fetchLimits, preparer, preprocess });

  // The audit's attackers: each tower's VJP model, built on first use and cached under DATA_DIR/cache/vjp.
  let models: Promise<Record<EncoderRole, PixelSpaceModel>> | undefined;
  const openModels = async (): Promise<Record<EncoderRole, PixelSpaceModel>> => {
    const opened = await Promise.all(
      ENCODER_ROLES.map((role) => {
        const manifest = registry.image(modelIds[role]);
        return PixelSpaceModel.open(
          manifest.id,
          registry.file(manifest.id, manifest.files.model),
          encoders[role].info.preprocess,
          {
            cacheDir: join(config.paths.data, 'cache', 'vjp'),
            threads: config.encoder.threads,
            outputNormalized: manifest.output.normalized,
          },
        );
      }),
    );
    return Object.fromEntries(ENCODER_ROLES.map((r, i) => [r, opened[i]!])) as Record<EncoderRole, PixelSpaceModel>;
  };
  const readImage = async (payload: PointPayload): Promise<Uint8Array> =>
    /^https?:\/\//i.test(payload.source)
      ? fetchImage(payload.source, fetchLimits)
      : readFile(await resolveInsideRoots(payload.source, roots));
  const audits = new FileAuditStore(join(config.paths.data, 'audits'));
  const audit = createAuditHandlers({
    store,
    models: () => (models ??= openModels()),
    readImage,
    repository: audits,
    provenance: Object.fromEntries(
      ENCODER_ROLES.map((r) => [
        r,
        { modelId: encoders[r].info.id, preprocessHash: preprocessHash(encoders[r].info.preprocess, preprocess) },
      ]),
    ) as Record<EncoderRole, { modelId: string; preprocessHash: string }>,
    decode,
    preprocess,
  });
  const handlers = {
    'ingest-run': ingest['ingest-run'],
    'ingest-batch': ingest['ingest-batch'],
    ...audit,
  };

  let runner: JobRunner;
  const workers: { close(): Promise<void> }[] = [];
  let monitor: WorkerMonitor | undefined;
  if (config.redis) {
    monitor = new WorkerMonitor();
    const bull = new BullJobRunner(config.redis.url, {
      prefix: config.redis.prefix,
      listen: options.jobEvents ?? true,
    });
    runner = bull;
    for (const queue of options.workers ?? (['ingest', 'audit'] as const)) {
      const worker = startWorker(queue, handlers, {
        redisUrl: config.redis.url,
        prefix: config.redis.prefix,
        // One audit batch at a time per process: it already uses every core for its gradients.
        concurrency: queue === 'ingest' ? config.ingest.concurrency : 1,
      });
      monitor.watch(worker);
      workers.push(worker);
    }
  } else {
    runner = new InProcessJobRunner(handlers, { ingest: Math.max(1, config.ingest.concurrency), audit: 1 });
  }
  const defaults = auditDefaults(config);
  return {
    config,
    store,
    encoders,
    text,
    registry,
    preparer,
    runner,
    collection,
    audits,
    auditDefaults: defaults,
    monitor,
    async scheduleAudits() {
      if (!(runner instanceof BullJobRunner)) return false;
      await runner.schedule('nightly-audit', config.audit.cron, 'audit-run', { options: defaults });
      return true;
    },
    async close() {
      await Promise.all(workers.map((w) => w.close()));
      await runner.close();
      await ingest.close();
      await preparer.close();
      await Promise.all([...Object.values(encoders), text].map((e) => e.close()));
      if (models) await Promise.all(Object.values(await models).map((m) => m.release()));
      await store.close();
    },
  };
}

export { startWorkerHealth, type WorkerHealthServer } from './worker-health.js';
export { dependencyChecks, runReadiness, type ReadinessCheck, type ReadinessResult } from './readiness.js';
