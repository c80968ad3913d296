/**
 * Every job Lookalike queues: its queue, its payload schema and its default options. Producers and processors both
 * go through this map, so a payload is validated once when it is enqueued and again when a worker takes it.
 */
import { z } from 'zod';

/** Queue names; one queue per kind of work so that each can scale its workers on its own. */
export const QUEUE_NAMES = { ingest: 'lookalike-ingest', audit: 'lookalike-audit' } as const;
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
};

/** Job names served by one queue: a worker refuses to start unless it has a handler for each. */
export function jobsOf(queue: QueueKey): JobName[] {
  return (Object.keys(JOB_POLICIES) as JobName[]).filter((n) => JOB_POLICIES[n].queue === queue);
}
