/**
 * The composition root shared by the apps: from a parsed `Config` it builds the vector store (Qdrant when
 * `QDRANT_URL` is set, else the embedded store under `DATA_DIR`), both image towers, and a job runner (BullMQ with
 * an ingest worker in this process when `REDIS_URL` is set, else the in-process runner). Apps only call this and
 * wire the result to their entry points.
 *
 * The store is the collection of the configured towers (a `GenerationStore`): when a store was made with other
 * towers, its points are re-embedded into a new collection by a re-index job before that one is searched; what
 * happens at start-up then is {@link ServiceOptions.stale}.
 */
import { isAbsolute, join, relative, resolve } from 'node:path';
import {
  ENCODER_ROLES,
  type CollectionSpec,
  type Config,
  type EncoderRole,
  type ImageEncoder,
  type PointPayload,
} from '@lookalike/core';
import { PixelSpaceModel } from '@lookalike/attacks';
import { createAuditHandlers, FileAuditStore, type QualityGate } from '@lookalike/audit';
import { CALIBRATION_FILE, loadCalibration, type CalibrationState } from '@lookalike/distance';
import { ModelRegistry, OnnxImageEncoder, OnnxTextEncoder } from '@lookalike/encoder';
import { PreprocessPool, decodeLimitsOf, preprocessHash, type ImagePreparer } from '@lookalike/imaging';
import {
  createIngestHandlers,
  createReindexHandlers,
  Generations,
  readOriginal,
  towersOf,
  type StoreCollections,
} from '@lookalike/ingest';
import { BullJobRunner, InProcessJobRunner, startWorker, WorkerMonitor, type JobRunner } from '@lookalike/queue';
import { stderrLogger, type Logger } from '@lookalike/logging';
import { EmbeddedCollections } from '@lookalike/store-embedded';
import { QdrantCollections } from '@lookalike/store-qdrant';
import { GenerationStore } from './generation-store.js';
import { auditDefaults, captionScreen, duplicatePolicy, qualityHead } from './policies.js';
import type { ReindexControl, ServiceOptions, Services } from './types.js';

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
  { path: 'duplicates.group', type: 'keyword' },
  { path: 'duplicates.distance', type: 'float' },
  { path: 'duplicates.review', type: 'keyword' },
  { path: 'screening.verdict', type: 'keyword' },
  { path: 'quality.grade', type: 'keyword' },
  { path: 'quality.score', type: 'float' },
];

/** Where images uploaded through the API are kept (named by their sha256); always an allowed ingest root. */
export function uploadsDir(config: Config): string {
  return join(config.paths.data, 'uploads');
}

/**
 * The command that re-embeds the store `config` names, as a user types it from `cwd`: `--data` when the embedded
 * store's data folder is also the only ingest root (what `--data` sets), else the bare command, run with the same
 * environment.
 */
export function reindexCommand(config: Config, cwd = process.cwd()): string {
  if (config.store.kind === 'qdrant') return 'npx lookalike reindex';
  const data = resolve(config.paths.data);
  const roots = config.ingest.roots.map((r) => resolve(r));
  if (roots.length !== 1 || roots[0] !== data) return 'npx lookalike reindex';
  const rel = relative(cwd, data);
  const shown = rel === '' ? '.' : rel.startsWith('..') || isAbsolute(rel) ? data : rel;
  return `npx lookalike reindex --data ${/[\s'"$]/.test(shown) ? JSON.stringify(shown) : shown}`;
}

/** The default `onStoreOptimize`: failures only (the next writes try again). */
function reportOptimizeFailure(logger: Logger): (outcome: { result: unknown } | { error: Error }) => void {
  return (outcome) => {
    if ('error' in outcome)
      logger.warn({ err: outcome.error }, 'The embedded store could not optimize itself; the next writes try again.');
  };
}

/**
 * Builds and connects everything; fails with a clear error if a model or the store cannot be opened, and with a
 * `ReindexRequiredError` if the store holds vectors of other towers (unless {@link ServiceOptions.stale} says
 * otherwise).
 */
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
  const calibrations = Object.fromEntries(
    await Promise.all(
      ENCODER_ROLES.map(async (role) => {
        const manifest = registry.image(modelIds[role]);
        const file = registry.file(manifest.id, { path: CALIBRATION_FILE });
        const model = { id: manifest.id, sha256: manifest.files.model.sha256 };
        return [role, await loadCalibration(file, model, config.images.preprocess)] as const;
      }),
    ),
  ) as Record<EncoderRole, CalibrationState>;
  const log = options.log ?? ((line: string) => console.log(line));
  const logger = options.logger ?? stderrLogger('warn');
  const preprocess = config.images.preprocess;
  const towers = towersOf(encoders, preprocess);
  const collections: StoreCollections =
    config.store.kind === 'qdrant'
      ? new QdrantCollections({
          url: config.store.url,
          ...(config.store.apiKey ? { apiKey: config.store.apiKey } : {}),
        })
      : new EmbeddedCollections(join(config.paths.data, 'store'), {
          onOptimize: options.onStoreOptimize ?? reportOptimizeFailure(logger),
        });
  const generations = new Generations(collections, config.store.collection, INDEXED_FIELDS, { log });
  const command = reindexCommand(config);
  let store: GenerationStore;
  try {
    const plan = await generations.resolve(towers);
    if (plan.source && (options.stale ?? 'fail') === 'fail') throw generations.reindexRequired(plan, command);
    store = await GenerationStore.open(generations, plan, { command, log, warm: options.searchIndex !== 'lazy' });
  } catch (error) {
    await generations.close();
    await Promise.all([...Object.values(encoders), text].map((e) => e.close()));
    throw error;
  }
  const collection: CollectionSpec = {
    name: store.current.target.name,
    dims: { robust: encoders.robust.info.dim, clean: encoders.clean.info.dim },
    indexedFields: INDEXED_FIELDS,
  };
  const roots = [...config.ingest.roots, uploadsDir(config)];
  const decode = decodeLimitsOf(config.images);
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
  const duplicates = duplicatePolicy(config, calibrations);
  if (typeof duplicates === 'string') log(duplicates);
  const screening = captionScreen(
    config,
    store,
    encoders,
    text,
    (value) => collections.setMetadata(store.current.target.name, { screening: value }),
    () => collections.metadata(store.current.target.name).then((m) => m?.['screening']),
  );
  if (typeof screening === 'string') log(screening);
  const quality = await qualityHead(config, registry, modelIds, runtime);
  if (typeof quality === 'string') log(quality);
  const scorer = typeof quality === 'object' ? quality : undefined;
  const ingest = createIngestHandlers({
    store,
    encoders,
    roots,
    decode,
    fetch: fetchLimits,
    preparer,
    preprocess,
    ...(typeof duplicates === 'object' ? { duplicates } : {}),
    ...(typeof screening === 'object' ? { screening: { screen: screening, text } } : {}),
    ...(scorer ? { quality: scorer } : {}),
  });
  const reindexHandlers = createReindexHandlers({
    generations,
    encoders,
    roots,
    decode,
    fetch: fetchLimits,
    preparer,
    preprocess,
    ...(typeof screening === 'object' ? { text } : {}),
    ...(scorer ? { quality: scorer } : {}),
    // A re-index finished in this process: switch at once rather than at the store's next check, and fit the
    // caption screen of the new towers (their similarities were measured again) so their verdicts follow.
    onFinished: () =>
      void store
        .refresh(true)
        .then(() => (typeof screening === 'object' ? screening.refit() : undefined))
        .catch((err: unknown) => logger.warn({ err }, 'The caption screen could not refit after the re-index.')),
  });

  // The audit's attackers: each tower's VJP model, and each tower's quality model as a score model, built on first
  // use and cached under DATA_DIR/cache/vjp, on the tower's preprocessing.
  const attacker = (
    role: EncoderRole,
    manifest: { id: string; files: { model: { path: string } }; output: { normalized: boolean } },
    output: 'embedding' | 'score',
  ) =>
    PixelSpaceModel.open(
      manifest.id,
      registry.file(manifest.id, manifest.files.model),
      encoders[role].info.preprocess,
      {
        cacheDir: join(config.paths.data, 'cache', 'vjp'),
        threads: config.encoder.threads,
        outputNormalized: manifest.output.normalized,
        output,
      },
    );
  const perRole = async <T>(open: (role: EncoderRole) => Promise<T>): Promise<Record<EncoderRole, T>> => {
    const opened = await Promise.all(ENCODER_ROLES.map(open));
    return Object.fromEntries(ENCODER_ROLES.map((r, i) => [r, opened[i]!])) as Record<EncoderRole, T>;
  };
  let models: Promise<Record<EncoderRole, PixelSpaceModel>> | undefined;
  const openModels = () => perRole((role) => attacker(role, registry.image(modelIds[role]), 'embedding'));
  // The gates grade at the threshold ingest grades with (QUALITY_THRESHOLD for QUALITY's tower, else the model's).
  let gates: Promise<Record<EncoderRole, QualityGate | string>> | undefined;
  const openGates = () =>
    perRole(async (role): Promise<QualityGate | string> => {
      const manifest = registry.findQuality(modelIds[role]);
      if (typeof manifest === 'string') return manifest;
      await registry.verify(manifest.id);
      const threshold = scorer?.info.tower === role ? scorer.info.threshold : manifest.threshold;
      return { model: await attacker(role, manifest, 'score'), threshold };
    });
  // The audit reads a query's original as a re-index does: the same roots, SSRF rules and byte limit.
  const readImage = (payload: PointPayload): Promise<Uint8Array> =>
    readOriginal(payload.source, { roots, fetch: fetchLimits, maxBytes: decode.maxBytes });
  const audits = new FileAuditStore(join(config.paths.data, 'audits'));
  const audit = createAuditHandlers({
    store,
    models: () => (models ??= openModels()),
    qualityGates: () => (gates ??= openGates()),
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
    duplicateThresholds: Object.fromEntries(
      ENCODER_ROLES.map((r) => {
        const state = calibrations[r];
        return [r, state.status === 'calibrated' ? state.calibration.thresholds.sameItem : state.reason];
      }),
    ) as Record<EncoderRole, number | string>,
  });
  const handlers = {
    'ingest-run': ingest['ingest-run'],
    'ingest-batch': ingest['ingest-batch'],
    ...reindexHandlers,
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
      logger,
    });
    runner = bull;
    for (const queue of options.workers ?? (['ingest', 'audit', 'reindex'] as const)) {
      const worker = startWorker(queue, handlers, {
        redisUrl: config.redis.url,
        prefix: config.redis.prefix,
        lockMs: config.redis.lockMs,
        logger,
        // One audit batch at a time per process: it already uses every core for its gradients.
        concurrency: queue === 'audit' ? 1 : config.ingest.concurrency,
      });
      monitor.watch(worker);
      workers.push(worker);
    }
  } else {
    const concurrency = Math.max(1, config.ingest.concurrency);
    runner = new InProcessJobRunner(handlers, { ingest: concurrency, audit: 1, reindex: concurrency });
  }
  const reindex: ReindexControl = {
    generations,
    get pending() {
      return store.pending;
    },
    get plan() {
      return store.current;
    },
    command,
    start: (startOptions = {}) =>
      generations.startReindex(runner, store.current, {
        batchSize: startOptions.batchSize ?? config.ingest.batchSize,
        local: !config.redis,
        ...(startOptions.acceptFailures === undefined ? {} : { acceptFailures: startOptions.acceptFailures }),
      }),
    refresh: () => store.refresh(true),
    required: () => store.reindexRequired('operators'),
  };
  if (store.pending && options.stale === 'reindex') {
    const source = store.current.source!;
    const { runId, attached } = await reindex.start();
    log(
      `The store's ${source.points} images in collection ${source.name} were embedded by other towers than the ` +
        `configured ${encoders.robust.info.id} and ${encoders.clean.info.id}; ${attached ? 'a re-index is already running' : 'a re-index has started'} ` +
        `(${runId}) into collection ${store.current.target.name}${config.redis ? ' on the workers' : ' in this process'}. ` +
        'Search by image and text answers once it completes; follow it with `' +
        command +
        '`.',
    );
  }
  const defaults = auditDefaults(config);
  return {
    config,
    store,
    reindex,
    encoders,
    text,
    registry,
    calibrations,
    duplicates: typeof duplicates === 'object' ? duplicates : undefined,
    screening: typeof screening === 'object' ? screening : undefined,
    quality: scorer,
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
      await Promise.all([...Object.values(encoders), text, ...(scorer ? [scorer] : [])].map((e) => e.close()));
      if (models) await Promise.all(Object.values(await models).map((m) => m.release()));
      if (gates)
        await Promise.all(
          Object.values(await gates).flatMap((g) => (typeof g === 'string' ? [] : [g.model.release()])),
        );
      await store.close();
    },
  };
}

export { auditDefaults, captionScreen, duplicatePolicy } from './policies.js';
export { queryServices, type QueryDeps } from './query.js';
export type { ReindexControl, ServiceOptions, Services } from './types.js';
export { GenerationStore, type GenerationStoreOptions } from './generation-store.js';
export { ReindexRequiredError } from '@lookalike/ingest';
export { startWorkerHealth, type WorkerHealthServer } from './worker-health.js';
export { dependencyChecks, runReadiness, type ReadinessCheck, type ReadinessResult } from './readiness.js';
