import { EventEmitter } from 'node:events';
import { UnavailableError, type JobState, type JobStatus } from '@lookalike/core';
import { stderrLogger, type Logger } from '@lookalike/logging';
import { FlowProducer, Queue, QueueEvents, UnrecoverableError, Worker, type Job, type JobsOptions } from 'bullmq';
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

/**
 * One line per Redis error of a long-lived BullMQ object or connection. Without a listener, BullMQ prints a stack
 * trace and ioredis an "Unhandled error event" for every reconnect attempt while Redis is down; they reconnect on
 * their own either way.
 */
function logRedisErrors(
  emitter: { on(event: 'error', listener: (error: Error) => void): unknown },
  what: string,
  logger: Logger,
): void {
  let last = 0;
  emitter.on('error', (error: Error) => {
    // At most one line every 5 s per object during an outage.
    if (Date.now() - last < 5000) return;
    last = Date.now();
    logger.warn(`Redis connection for ${what} failed (${error.message}); retrying.`);
  });
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
  /** Connections made here and handed to BullMQ, which does not close connections it was given. */
  private readonly ownConnections: Redis[] = [];
  /**
   * Settles once the event listeners are connected (or after 5 s, or on their failure: never a reason to refuse
   * work). QueueEvents only sees events from the moment it reads its stream, so a job added and finished before
   * that would never be reported and a caller waiting for it would wait forever; adds wait for this first.
   */
  private listening: Promise<void> = Promise.resolve();

  private readonly logger: Logger;

  /** `logger`: where Redis outages are reported (default: warnings on stderr). */
  constructor(redisUrl: string, options: { prefix?: string; listen?: boolean; logger?: Logger } = {}) {
    this.logger = options.logger ?? stderrLogger('warn');
    const prefix = options.prefix ?? 'lookalike';
    this.connection = createRedisConnection(redisUrl, 'producer', { connectionName: `${prefix}:producer` });
    logRedisErrors(this.connection, 'job producers', this.logger);
    this.queues = {
      ingest: new Queue(QUEUE_NAMES.ingest, { connection: this.connection, prefix }),
      audit: new Queue(QUEUE_NAMES.audit, { connection: this.connection, prefix }),
      reindex: new Queue(QUEUE_NAMES.reindex, { connection: this.connection, prefix }),
    };
    for (const [key, queue] of Object.entries(this.queues)) logRedisErrors(queue, `the ${key} queue`, this.logger);
    if (options.listen ?? true) {
      for (const key of Object.keys(QUEUE_NAMES) as QueueKey[]) {
        const eventsConnection = createRedisConnection(redisUrl, 'worker', {
          connectionName: `${prefix}:${key}-events`,
        });
        this.ownConnections.push(eventsConnection);
        logRedisErrors(eventsConnection, `the ${key} queue's events`, this.logger);
        const qe = new QueueEvents(QUEUE_NAMES[key], { connection: eventsConnection, prefix });
        logRedisErrors(qe, `the ${key} queue's events`, this.logger);
        // Lookups for events never reject: an event can arrive while the producer connection is down or not yet
        // back after a Redis restart, and an unhandled rejection would end the process.
        const lookup = (jobId: string): Promise<Job | undefined> =>
          this.queues[key].getJob(jobId).catch(() => undefined);
        const nameOf = async (jobId: string): Promise<JobName> =>
          ((await lookup(jobId))?.name ?? 'ingest-batch') as JobName;
        qe.on('progress', ({ jobId, data }) => {
          void nameOf(jobId).then((n) => this.events.emit('progress', jobId, n, data));
        });
        qe.on('completed', ({ jobId, returnvalue }) => {
          void nameOf(jobId).then((n) => this.events.emit('completed', jobId, n, returnvalue));
        });
        qe.on('failed', ({ jobId, failedReason }) => {
          void lookup(jobId).then((job) => {
            const final = !job || job.attemptsMade >= (job.opts.attempts ?? 1) || job.finishedOn !== undefined;
            this.events.emit('failed', jobId, (job?.name ?? 'ingest-batch') as JobName, failedReason, final);
          });
        });
        this.queueEvents.push(qe);
      }
      const ready = Promise.all(this.queueEvents.map((qe) => qe.waitUntilReady())).then(() => undefined);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, 5_000).unref()));
      this.listening = Promise.race([ready, timeout])
        .catch(() => undefined)
        .finally(() => clearTimeout(timer));
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
    await this.listening;
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
    await this.listening;
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

  /**
   * Creates or updates a recurring job (BullMQ's `upsertJobScheduler`): every process that starts with the same
   * scheduler id and cron converges on one schedule, so workers can all call it at start-up.
   */
  async schedule<N extends JobName>(schedulerId: string, cron: string, name: N, payload: JobPayload<N>): Promise<void> {
    const data = validatePayload(name, payload);
    const { attempts, backoff, removeOnComplete, removeOnFail } = jobOptions(name);
    await this.queues[JOB_POLICIES[name].queue]
      .upsertJobScheduler(
        schedulerId,
        { pattern: cron },
        {
          name,
          data,
          opts: {
            ...(attempts === undefined ? {} : { attempts }),
            ...(backoff === undefined ? {} : { backoff }),
            ...(removeOnComplete === undefined ? {} : { removeOnComplete }),
            ...(removeOnFail === undefined ? {} : { removeOnFail }),
          },
        },
      )
      .catch(queueError);
  }

  /** Removes a recurring job; true when one existed. */
  async unschedule(queue: QueueKey, schedulerId: string): Promise<boolean> {
    return this.queues[queue].removeJobScheduler(schedulerId).catch(queueError);
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
    for (const c of this.ownConnections) c.disconnect();
  }
}

/** Options of {@link startWorker}. */
export interface WorkerOptions {
  redisUrl: string;
  prefix?: string;
  concurrency?: number;
  /**
   * How long a job's lock lasts without renewal (BullMQ renews it every half of it) and how often this worker looks
   * for jobs whose lock ran out, so a killed worker's job is taken up again within about twice this. Default 30 s,
   * BullMQ's.
   */
  lockMs?: number;
  /**
   * The process's logger (default: warnings on stderr): Redis outages, and per job a child logger (queue, job name,
   * id, attempt) that records what the handler logs, the job's end and its failures.
   */
  logger?: Logger;
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
  const lockMs = options.lockMs ?? 30_000;
  const logger = (options.logger ?? stderrLogger('warn')).child({ queue });
  const producer = new Map<QueueKey, Queue>();
  const connection = createRedisConnection(options.redisUrl, 'worker', { connectionName: `${prefix}:${queue}-worker` });
  logRedisErrors(connection, `the ${queue} worker`, logger);
  const queueFor = (key: QueueKey): Queue => {
    let q = producer.get(key);
    if (!q) {
      q = new Queue(QUEUE_NAMES[key], { connection, prefix });
      producer.set(key, q);
    }
    return q;
  };
  let flows: FlowProducer | undefined;
  const worker = new Worker(
    QUEUE_NAMES[queue],
    async (job: Job) => {
      const name = job.name as JobName;
      const handler = handlers[name] as ((p: unknown, c: JobContext) => Promise<unknown>) | undefined;
      const attempt = job.attemptsMade + 1;
      const jobLog = logger.child({ job: name, jobId: job.id, attempt });
      const started = performance.now();
      try {
        if (!handler) throw new BadInputError(`no handler for job ${job.name}`);
        const payload = parsePayload(name, job.data);
        const ctx: JobContext = {
          jobId: job.id ?? '',
          attempt,
          updateProgress: (p) => job.updateProgress(p),
          log: async (line) => {
            jobLog.info(line);
            await job.log(line);
          },
          enqueueBulk: async (child, payloads, jobIds) => {
            await queueFor(JOB_POLICIES[child].queue).addBulk(
              payloads.map((data, i) => ({ name: child, data, opts: jobOptions(child, jobIds?.[i]) })),
            );
          },
          enqueueFlow: async ({ parent, children }) => {
            flows ??= new FlowProducer({ connection, prefix });
            await flows.add({
              name: parent.name,
              queueName: QUEUE_NAMES[JOB_POLICIES[parent.name].queue],
              data: parent.payload,
              opts: jobOptions(parent.name, parent.jobId),
              children: children.payloads.map((data, i) => ({
                name: children.name,
                queueName: QUEUE_NAMES[JOB_POLICIES[children.name].queue],
                data,
                opts: { ...jobOptions(children.name, children.jobIds[i]), failParentOnFailure: true },
              })),
            });
          },
          childrenValues: async () => {
            const values = await job.getChildrenValues<unknown>();
            // Keys are `<prefix>:<queue>:<jobId>`; callers know their children by job id.
            return Object.fromEntries(
              Object.entries(values).map(([key, v]) => [key.slice(key.lastIndexOf(':') + 1), v]),
            );
          },
        };
        const result = await handler(payload, ctx);
        jobLog.debug({ ms: Math.round(performance.now() - started) }, `${name} done`);
        return result;
      } catch (error) {
        const ms = Math.round(performance.now() - started);
        if (error instanceof BadInputError) {
          jobLog.warn({ ms, reason: error.message }, `${name} refused its input; not retried`);
          throw new UnrecoverableError(error.message);
        }
        const attempts = job.opts.attempts ?? 1;
        // A retry is the policy at work (info); a job out of attempts is a fault someone should see (error).
        if (attempt < attempts)
          jobLog.info({ ms, err: error }, `${name} failed; attempt ${attempt} of ${attempts}, retrying`);
        else jobLog.error({ ms, err: error }, `${name} failed for good after ${attempts} attempts`);
        throw error;
      }
    },
    {
      connection,
      prefix,
      concurrency: options.concurrency ?? 1,
      lockDuration: lockMs,
      stalledInterval: lockMs,
      // BullMQ's default maxStalledCount (1): a job whose lock was lost to a killed worker or a Redis restart is taken
      // up again once. No processor holds the event loop (onnxruntime runs on worker threads of its own,
      // `@lookalike/onnx-session`), so a lock is never lost to a busy worker, and a job that stalls twice is a fault.
    },
  );
  logRedisErrors(worker, `the ${queue} worker`, logger);
  // BullMQ closes the connections it made (the worker's blocking one), never one it was given: this one is ours.
  worker.on('closed', () => {
    void Promise.allSettled([flows?.close(), ...[...producer.values()].map((q) => q.close())]).then(() =>
      connection.disconnect(),
    );
  });
  return worker;
}
