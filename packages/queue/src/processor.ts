import { ValidationError, formatIssues } from '@lookalike/core';
import { JOB_SCHEMAS, type JobName, type ParsedPayload } from './jobs.js';

/** What a processor may do besides compute: report progress, log a line to the job. */
export interface JobContext {
  jobId: string;
  attempt: number;
  updateProgress(progress: object): Promise<void>;
  log(line: string): Promise<void>;
  /** Enqueues child jobs (the fan-out of a parent job). */
  enqueueBulk<N extends JobName>(
    name: N,
    payloads: readonly ParsedPayload<N>[],
    jobIds?: readonly string[],
  ): Promise<void>;
  /**
   * Enqueues children and a parent that runs only once every child has completed (a BullMQ flow). A child that
   * fails for good fails the parent, so the parent never works from partial results.
   */
  enqueueFlow<P extends JobName, C extends JobName>(flow: {
    parent: { name: P; payload: ParsedPayload<P>; jobId: string };
    children: { name: C; payloads: readonly ParsedPayload<C>[]; jobIds: readonly string[] };
  }): Promise<void>;
  /** The results of this job's children (in a flow's parent), by child job id. */
  childrenValues(): Promise<Record<string, unknown>>;
}

/** A handler: plain logic taking a parsed payload. Expected outcomes are results; bad input throws `BadInputError`. */
export type JobHandler<N extends JobName> = (payload: ParsedPayload<N>, ctx: JobContext) => Promise<unknown>;
export type JobHandlers = { [N in JobName]?: JobHandler<N> };

/** Thrown by handlers for input that no retry can fix; runners turn it into BullMQ's `UnrecoverableError`. */
export class BadInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BadInputError';
    Object.setPrototypeOf(this, new.target.prototype);
  }
}

/** Parses a job's data at the processor's entry; invalid data is bad input (never retried). */
export function parsePayload<N extends JobName>(name: N, data: unknown): ParsedPayload<N> {
  const parsed = JOB_SCHEMAS[name].safeParse(data);
  if (!parsed.success) {
    throw new BadInputError(`job ${name} has an invalid payload: ${formatIssues(parsed.error.issues)}`);
  }
  return parsed.data as ParsedPayload<N>;
}

/** Validates a payload before it is enqueued (producers); invalid input is the caller's error. */
export function validatePayload<N extends JobName>(name: N, data: unknown): ParsedPayload<N> {
  try {
    return parsePayload(name, data);
  } catch (error) {
    throw new ValidationError((error as Error).message);
  }
}
