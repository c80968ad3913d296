import type { EventEmitter } from 'node:events';
import type { JobStatus } from '@lookalike/core';
import type { JobName, JobPayload } from './jobs.js';

/** Events every runner emits: `progress` (id, name, progress), `completed` (id, name, result), `failed` (id, name, reason, final). */
export interface RunnerEvents {
  progress: [id: string, name: JobName, progress: unknown];
  completed: [id: string, name: JobName, result: unknown];
  failed: [id: string, name: JobName, reason: string, final: boolean];
}

/**
 * Queues jobs and reports on them: BullMQ on Redis (`BullJobRunner`) or in this process (`InProcessJobRunner`).
 * Payloads are validated against the job's schema before anything is queued.
 */
export interface JobRunner {
  readonly events: EventEmitter<RunnerEvents>;
  enqueue<N extends JobName>(name: N, payload: JobPayload<N>, options?: { jobId?: string }): Promise<{ id: string }>;
  enqueueBulk<N extends JobName>(
    name: N,
    payloads: readonly JobPayload<N>[],
    jobIds?: readonly string[],
  ): Promise<{ id: string }[]>;
  getJob(id: string): Promise<JobStatus | undefined>;
  /** Counts of jobs by state per queue. */
  counts(): Promise<Record<string, Record<string, number>>>;
  /** Stops taking jobs, lets running ones finish, releases connections. */
  close(): Promise<void>;
}
