/**
 * Every job Lookalike queues: its queue, its payload schema and its default options. Producers and processors both
 * go through this map, so a payload is validated once when it is enqueued and again when a worker takes it.
 */
import { z } from 'zod';
import { filterSchema } from '@lookalike/core';

/**
 * Queue names; one queue per kind of work so that each can scale its workers on its own. Re-indexing has its own so
 * that a long re-embedding of the whole store never holds back the uploads and ingests queued behind it.
 */
export const QUEUE_NAMES = {
  ingest: 'lookalike-ingest',
  audit: 'lookalike-audit',
  reindex: 'lookalike-reindex',
} as const;
export type QueueKey = keyof typeof QUEUE_NAMES;

const metadataValue = z.union([z.string().max(4096), z.number().finite(), z.boolean(), z.null()]);
const record = z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/), metadataValue);

/** One image to ingest: a local path (inside an allowed root) or an http(s) URL, plus what the manifest said. */
export const ingestItemSchema = z.strictObject({
  location: z.string().min(1).max(4096),
  /** Optional id from the manifest; otherwise the sha256 of the bytes. */
  id: z.string().min(1).max(256).optional(),
  caption: z.string().max(2000).optional(),
  labels: record.optional(),
  metadata: record.optional(),
});
export type IngestItem = z.infer<typeof ingestItemSchema>;

/** Where a bulk ingest reads from. */
export const ingestSourceSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('directory'),
    root: z.string().min(1).max(4096),
    include: z.array(z.string().min(1).max(256)).max(32).optional(),
    exclude: z.array(z.string().min(1).max(256)).max(32).optional(),
  }),
  z.strictObject({
    kind: z.literal('manifest'),
    location: z.string().min(1).max(4096),
    format: z.enum(['jsonl', 'csv']).optional(),
  }),
  z.strictObject({ kind: z.literal('items'), items: z.array(ingestItemSchema).min(1).max(10_000) }),
]);
export type IngestSource = z.infer<typeof ingestSourceSchema>;

/** How an audit attacks and measures; every field has the nightly default. */
/** A random seed: any unsigned 32-bit integer. */
const seedSchema = z
  .number()
  .int()
  .min(0)
  .max(2 ** 32 - 1);

export const auditOptionsSchema = z.strictObject({
  /** Query images drawn (seeded) from the catalog. */
  queries: z.number().int().min(1).max(100_000).default(200),
  /** Budgets in [0,1] pixel units; 0 is the clean baseline. */
  epsilons: z
    .array(z.number().min(0).max(1))
    .min(1)
    .max(16)
    .default([0, 1 / 255, 2 / 255, 4 / 255, 8 / 255]),
  attack: z.enum(['pgd', 'apgd']).default('apgd'),
  norm: z.enum(['linf', 'l2']).default('linf'),
  steps: z.number().int().min(1).max(10_000).default(100),
  restarts: z.number().int().min(1).max(16).default(1),
  /** PGD's step size; default 2.5·ε/steps. */
  stepSize: z.number().positive().max(1).optional(),
  /** Neighbours compared (overlap@k, precision@k, targeted success@k). */
  k: z.number().int().min(1).max(100).default(10),
  /** Ranks searched to place the clean top-1 after the attack. */
  depth: z.number().int().min(1).max(1000).default(100),
  /** Queries that are also attacked toward another image (targeted success@k). */
  targetedQueries: z.number().int().min(0).max(100_000).default(50),
  seed: seedSchema.default(0),
  /** Queries per batch job (the unit of fan-out and of retry). */
  batchSize: z.number().int().min(1).max(256).default(10),
  /** Example queries whose images are kept for the report. */
  examples: z.number().int().min(0).max(16).default(4),
  /** Restricts the queries (and the label used for precision@k) to part of the catalog. */
  filter: filterSchema.optional(),
  /**
   * The towers as a perceptual metric: 2AFC on `triplets` generator-rendered triplets of seed `seed` (a seed no
   * tower was trained or calibrated on), attacked with the audit's attack and steps at ℓ∞ 4/255 and ℓ2 3·S/224
   * (the paper's ε = 3 at 224 px, at the same per-pixel size), and the duplicate decision attacked at ℓ∞ 4/255. 0
   * triplets leaves it out.
   */
  perceptual: z
    .strictObject({
      triplets: z.number().int().min(0).max(10_000).default(100),
      seed: seedSchema.default(33),
      /** Flipped 2AFC decisions kept with their images, per tower. */
      examples: z.number().int().min(0).max(8).default(2),
    })
    .prefault({}),
  /**
   * The quality gate under attack: `images` seeded photos of seed `seed` (half undistorted, half with one distortion
   * at severity ≥ 0.6), each tower's quality model attacked with the audit's attack and steps at ℓ∞ 4/255 to push a
   * good photo under its threshold and a bad one over it. 0 images leaves it out.
   */
  quality: z
    .strictObject({
      images: z.number().int().min(0).max(10_000).default(40),
      seed: seedSchema.default(43),
      /** Flipped decisions kept with their images, per tower. */
      examples: z.number().int().min(0).max(8).default(2),
    })
    .prefault({}),
});
export type AuditOptions = z.output<typeof auditOptionsSchema>;

/** A collection of the vector store: `COLLECTION`, or `COLLECTION--<towers fingerprint>` for a later generation. */
const collectionName = z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/);

/** One image a re-index could not re-embed, and why. */
export const reindexFailureSchema = z.strictObject({
  id: z.string().min(1).max(256),
  location: z.string().max(4096),
  code: z.string().min(1).max(64),
  reason: z.string().max(4096),
});
export type ReindexFailure = z.infer<typeof reindexFailureSchema>;

/** What a re-index has done so far: carried from page to page of its run. */
export const reindexTotalsSchema = z.strictObject({
  /** Images re-read from their originals and re-embedded by both towers. */
  done: z.number().int().min(0),
  /** Points that already had the target's vectors in the source; their vectors were copied, not recomputed. */
  copied: z.number().int().min(0),
  /** Points the target already held with its towers' vectors (an earlier, interrupted run), or gone from the source. */
  skipped: z.number().int().min(0),
  /** Images that could not be re-embedded (every one counted; the first 100 in `failures`). */
  failed: z.number().int().min(0),
  failures: z.array(reindexFailureSchema).max(100),
});
export type ReindexTotals = z.infer<typeof reindexTotalsSchema>;

/** Payload schemas by job name. */
export const JOB_SCHEMAS = {
  /** Lists a source and fans out into batch jobs. */
  'ingest-run': z.strictObject({
    runId: z.string().min(1).max(128),
    source: ingestSourceSchema,
    batchSize: z.number().int().min(1).max(1024).default(32),
  }),
  /** Decodes, embeds with both towers and upserts one batch. */
  'ingest-batch': z.strictObject({
    runId: z.string().min(1).max(128),
    batch: z.number().int().min(0),
    items: z.array(ingestItemSchema).min(1).max(1024),
  }),
  /** Picks the audit's queries and fans out into batch jobs under one finalising parent (a BullMQ flow). */
  'audit-run': z.strictObject({
    /** Given by the caller, or made from the job id (scheduled runs). */
    auditId: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,128}$/)
      .optional(),
    options: auditOptionsSchema,
  }),
  /** Attacks one batch of queries with every ε against both towers and returns per-query outcomes. */
  'audit-batch': z.strictObject({
    auditId: z.string().min(1).max(128),
    batch: z.number().int().min(0),
    queries: z
      .array(z.strictObject({ id: z.string().min(1).max(256), targetId: z.string().min(1).max(256).optional() }))
      .min(1)
      .max(1024),
    /** The perceptual triplets this batch also runs: `first` … `first + count − 1`. */
    triplets: z.strictObject({ first: z.number().int().min(0), count: z.number().int().min(1).max(10_000) }).optional(),
    /** The quality-gate photos this batch also attacks: `first` … `first + count − 1`. */
    quality: z.strictObject({ first: z.number().int().min(0), count: z.number().int().min(1).max(10_000) }).optional(),
    options: auditOptionsSchema,
  }),
  /** Runs once every batch has finished: aggregates the outcomes and writes the report whole. */
  'audit-finalize': z.strictObject({
    auditId: z.string().min(1).max(128),
    startedAt: z.string(),
    batches: z.number().int().min(1),
    catalogSize: z.number().int().min(0),
    options: auditOptionsSchema,
  }),
  /**
   * One page of a re-index: reads the next page of the source collection's points (by id, after `cursor`) and fans
   * it out into batch jobs under the job for the next page (a flow), so pages run one after another and batches
   * within a page in parallel; the page that finds no more points marks the target collection ready.
   */
  'reindex-run': z.strictObject({
    runId: z.string().min(1).max(200),
    from: collectionName,
    to: collectionName,
    /** Fingerprint of the towers and preprocessing the target holds; workers with other towers refuse the job. */
    towers: z.string().regex(/^[0-9a-f]{12}$/),
    page: z.number().int().min(0).default(0),
    cursor: z.string().min(1).max(256).optional(),
    batchSize: z.number().int().min(1).max(1024).default(32),
    /** Batch jobs per page. */
    pageBatches: z.number().int().min(1).max(1024).default(32),
    /**
     * Mark the target ready even when some images could not be re-embedded (their points are then left out of it;
     * the source keeps them). By default any failure keeps the target from being served.
     */
    acceptFailures: z.boolean().default(false),
    /** Set on the job after the last page: it reads nothing and finishes the run. */
    final: z.boolean().default(false),
    totals: reindexTotalsSchema.default({ done: 0, copied: 0, skipped: 0, failed: 0, failures: [] }),
  }),
  /** Re-reads the originals of some points of the source, embeds them with both towers and upserts them into the target. */
  'reindex-batch': z.strictObject({
    runId: z.string().min(1).max(200),
    batch: z.number().int().min(0),
    from: collectionName,
    to: collectionName,
    towers: z.string().regex(/^[0-9a-f]{12}$/),
    ids: z.array(z.string().min(1).max(256)).min(1).max(1024),
  }),
} as const;
export type JobName = keyof typeof JOB_SCHEMAS;
export type JobPayload<N extends JobName> = z.input<(typeof JOB_SCHEMAS)[N]>;
export type ParsedPayload<N extends JobName> = z.output<(typeof JOB_SCHEMAS)[N]>;

/** Retry and retention policy of a job. */
export interface JobPolicy {
  queue: QueueKey;
  attempts: number;
  /** Exponential backoff base delay in milliseconds. */
  backoffMs: number;
  /** Completed jobs kept (count) and for how long (seconds). */
  keepCompleted: { count: number; age: number };
  /** Failed jobs kept for inspection. */
  keepFailed: { count: number; age: number };
}

const DAY = 24 * 3600;
export const JOB_POLICIES: Record<JobName, JobPolicy> = {
  'ingest-run': {
    queue: 'ingest',
    attempts: 3,
    backoffMs: 2000,
    keepCompleted: { count: 1000, age: 7 * DAY },
    keepFailed: { count: 5000, age: 30 * DAY },
  },
  'ingest-batch': {
    queue: 'ingest',
    attempts: 8,
    backoffMs: 1000,
    keepCompleted: { count: 10_000, age: 2 * DAY },
    keepFailed: { count: 10_000, age: 30 * DAY },
  },
  'audit-run': {
    queue: 'audit',
    attempts: 3,
    backoffMs: 5000,
    keepCompleted: { count: 1000, age: 90 * DAY },
    keepFailed: { count: 1000, age: 90 * DAY },
  },
  'audit-batch': {
    queue: 'audit',
    attempts: 4,
    backoffMs: 5000,
    keepCompleted: { count: 10_000, age: 7 * DAY },
    keepFailed: { count: 10_000, age: 30 * DAY },
  },
  'audit-finalize': {
    queue: 'audit',
    attempts: 5,
    backoffMs: 5000,
    keepCompleted: { count: 1000, age: 90 * DAY },
    keepFailed: { count: 1000, age: 90 * DAY },
  },
  'reindex-run': {
    queue: 'reindex',
    attempts: 5,
    backoffMs: 2000,
    keepCompleted: { count: 10_000, age: 7 * DAY },
    keepFailed: { count: 1000, age: 30 * DAY },
  },
  // Like an ingest batch: store faults are retried; a worker with other towers hands the job back by failing it.
  'reindex-batch': {
    queue: 'reindex',
    attempts: 8,
    backoffMs: 1000,
    keepCompleted: { count: 100_000, age: 2 * DAY },
    keepFailed: { count: 10_000, age: 30 * DAY },
  },
};

/** Job names served by one queue: a worker refuses to start unless it has a handler for each. */
export function jobsOf(queue: QueueKey): JobName[] {
  return (Object.keys(JOB_POLICIES) as JobName[]).filter((n) => JOB_POLICIES[n].queue === queue);
}
