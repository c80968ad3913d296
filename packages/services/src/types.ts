/** What `createServices` is asked for and what it builds. */
import type {
  CollectionSpec,
  Config,
  EncoderRole,
  ImageEncoder,
  QualityScorer,
  TextEncoder,
  VectorStore,
} from '@lookalike/core';
import type { FileAuditStore } from '@lookalike/audit';
import type { CalibrationState } from '@lookalike/distance';
import type { ModelRegistry } from '@lookalike/encoder';
import type { ImagePreparer } from '@lookalike/imaging';
import type { DuplicatePolicy, GenerationPlan, Generations, ReindexRequiredError } from '@lookalike/ingest';
import type { Logger } from '@lookalike/logging';
import type { AuditOptions, JobRunner, QueueKey, WorkerMonitor } from '@lookalike/queue';
import type { CaptionScreen } from '@lookalike/screening';
import type { EmbeddedStoreOptions } from '@lookalike/store-embedded';

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
  /**
   * What to do when the store's points were embedded by other towers than the configured ones (model ids,
   * preprocessing or dimension changed), so that they must be re-embedded before the configured towers search them:
   * - `fail` (the default): throw a `ReindexRequiredError` naming the command that re-embeds them;
   * - `serve`: start anyway; vector search answers that error until the re-index completes (`reindex.start()`, a
   *   worker, or `lookalike reindex`); reads and writes work;
   * - `reindex`: as `serve`, and start the re-index job now, or find the one running (BullMQ: the workers run it;
   *   in-process: this process).
   */
  stale?: 'fail' | 'serve' | 'reindex';
  /** Where the store's start-up and re-index notes go (one sentence each). Default: stdout. */
  log?: (line: string) => void;
  /**
   * The process's logger, for what no user waits to read: Redis outages, each job's end and failures (a child
   * logger per job), the store's failed optimizations. Default: warnings on stderr.
   */
  logger?: Logger;
  /**
   * When the embedded store loads its in-memory search index: `eager` (the default) at start-up, or `lazy` at the
   * first search, for a process that rarely searches (a worker: only audits do).
   */
  searchIndex?: 'eager' | 'lazy';
}

/** The store's generations and the re-index a change of towers needs, as the apps drive them. */
export interface ReindexControl {
  /** The collections of the store under `COLLECTION`, their records, and the handles of this process. */
  generations: Generations;
  /** Whether the configured towers' collection waits for a re-index now. */
  readonly pending: boolean;
  /** Which collection serves and takes the writes, and what it is re-indexed from while pending. */
  readonly plan: GenerationPlan;
  /** The command that re-embeds this store: `npx lookalike reindex --data data/demo`. */
  command: string;
  /**
   * Starts the re-index run into the configured towers' collection, or finds the one running; the job runner runs
   * it (BullMQ workers, or this process).
   */
  start(options?: { batchSize?: number; acceptFailures?: boolean }): Promise<{ runId: string; attached: boolean }>;
  /** Reads the target's record now and switches the store to it when it is ready. */
  refresh(): Promise<void>;
  /**
   * The error vector search answers while pending (as operators read it: with the store's place and the exact
   * command): what is stored, what is configured, how far the re-index is.
   */
  required(): Promise<ReindexRequiredError>;
}

export interface Services {
  config: Config;
  /**
   * The store: the collection of the configured towers. The embedded one can also be optimized (compacted and
   * indexed) on demand.
   */
  store: VectorStore & { optimize?: () => Promise<{ indexed: boolean }> };
  /** The re-index of a change of towers: whether one is pending, starting it, the store's generations. */
  reindex: ReindexControl;
  encoders: Record<EncoderRole, ImageEncoder>;
  /** The text tower shared by both image towers (zero-shot text search). */
  text: TextEncoder;
  /** The models folder, for components that need the model files themselves (the audit's gradient graphs). */
  registry: ModelRegistry;
  /**
   * Each tower's distance thresholds (`distance-calibration.json` in its model's folder), or why it has none: a
   * missing or stale calibration leaves distances without verdicts, it does not stop the services.
   */
  calibrations: Record<EncoderRole, CalibrationState>;
  /** How ingest groups near-duplicates (DUPLICATES, DUPLICATE_THRESHOLD); undefined when it does not. */
  duplicates: DuplicatePolicy | undefined;
  /**
   * The collection's caption screen (SCREENING, SCREENING_MIN_COUNT, SCREENING_THRESHOLD); undefined when screening
   * is off or the text tower cannot embed into the screening tower's space.
   */
  screening: CaptionScreen | undefined;
  /** The quality head that scores images at ingest (QUALITY); undefined when off or when the tower has none. */
  quality: QualityScorer | undefined;
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
