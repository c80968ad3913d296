import { EventEmitter } from 'node:events';
import { UnavailableError, type JobState, type JobStatus } from '@lookalike/core';
import { Queue, QueueEvents, UnrecoverableError, Worker, type Job, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { createRedisConnection } from './connection.js';
import { JOB_POLICIES, QUEUE_NAMES, jobsOf, type JobName, type JobPayload, type QueueKey } from './jobs.js';
import { BadInputError, parsePayload, validatePayload, type JobContext, type JobHandlers } from './processor.js';
import type { JobRunner, RunnerEvents } from './runner.js';

/** BullMQ options of a job from its policy: attempts, exponential backoff, explicit retention. */
export function jobOptions(name: JobName, jobId?: string): JobsOptions {
  const p = JOB_POLICIES[name];
  return {
    attempts: p.attempts,
    backoff: { type: 'exponential', delay: p.backoffMs },
    removeOnComplete: p.keepCompleted,
    removeOnFail: p.keepFailed,
    ...(jobId === undefined ? {} : { jobId }),
  };
}

function queueError(error: unknown): never {
  if (error instanceof UnavailableError) throw error;
  throw new UnavailableError('queue', `Redis did not accept the job: ${(error as Error).message}`, { cause: error });
}

const STATES = new Set<JobState>(['waiting', 'active', 'completed', 'failed', 'delayed']);

/**
 * Producer side of BullMQ: validates payloads, adds jobs with their policies, reports job state, and relays
 * `QueueEvents` (progress, completed, failed) as {@link RunnerEvents}.
 */
export class BullJobRunner implements JobRunner {
  readonly events = new EventEmitter<RunnerEvents>();
  private readonly connection: Redis;
  private readonly queues: Record<QueueKey, Queue>;
  private readonly queueEvents: QueueEvents[] = [];

  constructor(redisUrl: string, options: { prefix?: string; listen?: boolean } = {}) {
    this.connection = createRedisConnection(redisUrl, 'producer');
    const prefix = options.prefix ?? 'lookalike';
    this.queues = {
      ingest: new Queue(QUEUE_NAMES.ingest, { connection: this.connection, prefix }),
      audit: new Queue(QUEUE_NAMES.audit, { connection: this.connection, prefix }),
    };
    if (options.listen ?? true) {
      for (const key of Object.keys(QUEUE_NAMES) as QueueKey[]) {
        const qe = new QueueEvents(QUEUE_NAMES[key], {
          connection: createRedisConnection(redisUrl, 'worker'),
          prefix,
        });
        const nameOf = async (jobId: string): Promise<JobName> =>
          ((await this.queues[key].getJob(jobId))?.name ?? 'ingest-batch') as JobName;
        qe.on('progress', ({ jobId, data }) => {
          void nameOf(jobId).then((n) => this.events.emit('progress', jobId, n, data));
        });
        qe.on('completed', ({ jobId, returnvalue }) => {
          void nameOf(jobId).then((n) => this.events.emit('completed', jobId, n, returnvalue));
        });
        qe.on('failed', ({ jobId, failedReason }) => {
          void this.queues[key].getJob(jobId).then((job) => {
            const final = !job || job.attemptsMade >= (job.opts.attempts ?? 1) || job.finishedOn !== undefined;
            this.events.emit('failed', jobId, (job?.name ?? 'ingest-batch') as JobName, failedReason, final);
          });
        });
        this.queueEvents.push(qe);
      }
    }
  }

  /** The BullMQ queue behind a key, for schedulers and dashboards. */
  queue(key: QueueKey): Queue {
    return this.queues[key];
  }

  async enqueue<N extends JobName>(
    name: N,
    payload: JobPayload<N>,
    options: { jobId?: string } = {},
  ): Promise<{ id: string }> {
    const data = validatePayload(name, payload);
    const job = await this.queues[JOB_POLICIES[name].queue]
      .add(name, data, jobOptions(name, options.jobId))
      .catch(queueError);
    return { id: job.id ?? '' };
  }

  async enqueueBulk<N extends JobName>(
    name: N,
    payloads: readonly JobPayload<N>[],
    jobIds?: readonly string[],
  ): Promise<{ id: string }[]> {
    const jobs = payloads.map((p, i) => ({
      name,
      data: validatePayload(name, p),
      opts: jobOptions(name, jobIds?.[i]),
    }));
    const added = await this.queues[JOB_POLICIES[name].queue].addBulk(jobs).catch(queueError);
    return added.map((j) => ({ id: j.id ?? '' }));
  }

  async getJob(id: string): Promise<JobStatus | undefined> {
    for (const queue of Object.values(this.queues)) {
      const job = await queue.getJob(id).catch(queueError);
      if (!job) continue;
      const state = await job.getState();
      return {
        id,
        name: job.name,
        state: STATES.has(state as JobState)
          ? (state as JobState)
          : state === 'waiting-children'
            ? 'waiting'
            : 'unknown',
        progress: job.progress,
        ...(job.returnvalue === undefined || job.returnvalue === null ? {} : { result: job.returnvalue as unknown }),
        ...(job.failedReason ? { failedReason: job.failedReason } : {}),
      };
    }
    return undefined;
  }

  async counts(): Promise<Record<string, Record<string, number>>> {
    const out: Record<string, Record<string, number>> = {};
    for (const [key, queue] of Object.entries(this.queues)) {
      out[key] = await queue.getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed').catch(queueError);
    }
    return out;
  }

  async close(): Promise<void> {
    await Promise.all(this.queueEvents.map((q) => q.close()));
    await Promise.all(Object.values(this.queues).map((q) => q.close()));
    this.connection.disconnect();
  }
}

/** Options of {@link startWorker}. */
export interface WorkerOptions {
  redisUrl: string;
  prefix?: string;
  concurrency?: number;
}

/**
 * Starts a BullMQ worker for one queue with in-process handlers. Start-up fails if a job of that queue has no
 * handler. The payload is parsed at entry; bad input becomes `UnrecoverableError` (no retries), anything else is
 * rethrown so the job's attempts and backoff apply. CPU-heavy handlers should hand their work to worker threads.
 */
export function startWorker(queue: QueueKey, handlers: JobHandlers, options: WorkerOptions): Worker {
  const missing = jobsOf(queue).filter((n) => !handlers[n]);
  if (missing.length) throw new Error(`cannot start the ${queue} worker: no handler for ${missing.join(', ')}`);
  const prefix = options.prefix ?? 'lookalike';
  const producer = new Map<QueueKey, Queue>();
  const connection = createRedisConnection(options.redisUrl, 'worker');
  const queueFor = (key: QueueKey): Queue => {
    let q = producer.get(key);
    if (!q) {
      q = new Queue(QUEUE_NAMES[key], { connection, prefix });
      producer.set(key, q);
    }
    return q;
  };
  const worker = new Worker(
    QUEUE_NAMES[queue],
    async (job: Job) => {
      const name = job.name as JobName;
      const handler = handlers[name] as ((p: unknown, c: JobContext) => Promise<unknown>) | undefined;
      try {
        if (!handler) throw new BadInputError(`no handler for job ${job.name}`);
        const payload = parsePayload(name, job.data);
        const ctx: JobContext = {
          jobId: job.id ?? '',
          attempt: job.attemptsMade + 1,
          updateProgress: (p) => job.updateProgress(p),
          log: async (line) => {
            await job.log(line);
          },
          enqueueBulk: async (child, payloads, jobIds) => {
            await queueFor(JOB_POLICIES[child].queue).addBulk(
              payloads.map((data, i) => ({ name: child, data, opts: jobOptions(child, jobIds?.[i]) })),
            );
          },
        };
        return await handler(payload, ctx);
      } catch (error) {
        if (error instanceof BadInputError) throw new UnrecoverableError(error.message);
        throw error;
      }
    },
    { connection, prefix, concurrency: options.concurrency ?? 1 },
  );
  worker.on('closed', () => {
    for (const q of producer.values()) void q.close();
  });
  return worker;
}
