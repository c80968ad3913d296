export { createRedisConnection } from './connection.js';
export {
  QUEUE_NAMES,
  JOB_SCHEMAS,
  JOB_POLICIES,
  ingestItemSchema,
  ingestSourceSchema,
  auditOptionsSchema,
  reindexFailureSchema,
  reindexTotalsSchema,
  type AuditOptions,
  type ReindexFailure,
  type ReindexTotals,
  jobsOf,
  type QueueKey,
  type JobName,
  type JobPayload,
  type ParsedPayload,
  type JobPolicy,
  type IngestItem,
  type IngestSource,
} from './jobs.js';
export {
  BadInputError,
  parsePayload,
  validatePayload,
  type JobContext,
  type JobHandler,
  type JobHandlers,
} from './processor.js';
export type { JobRunner, RunnerEvents } from './runner.js';
export { InProcessJobRunner } from './in-process.js';
export { BullJobRunner, startWorker, jobOptions, type WorkerOptions } from './bull.js';
export { WorkerMonitor } from './monitor.js';
