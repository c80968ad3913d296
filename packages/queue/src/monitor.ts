import type { Job, Worker } from 'bullmq';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Job durations from a few milliseconds (a cached ingest batch) to a long audit batch. */
const JOB_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

/**
 * What a worker process tells about its BullMQ workers: Prometheus metrics of the jobs they ran (durations and
 * outcomes per queue and job name, in a registry of its own with the process's default metrics) and whether each is
 * still running. {@link WorkerMonitor.watch} each worker once; the metrics are counted from its events.
 */
export class WorkerMonitor {
  readonly registry = new Registry();
  private readonly workers: Worker[] = [];
  private readonly duration: Histogram<'queue' | 'job' | 'outcome'>;
  private readonly outcomes: Counter<'queue' | 'job' | 'outcome'>;

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    this.duration = new Histogram({
      name: 'lookalike_job_duration_seconds',
      help: 'Time from a job being taken to it completing or failing, by queue, job name and outcome.',
      labelNames: ['queue', 'job', 'outcome'] as const,
      buckets: JOB_BUCKETS,
      registers: [this.registry],
    });
    this.outcomes = new Counter({
      name: 'lookalike_jobs_total',
      help: 'Jobs this process finished, by queue, job name and outcome (completed, failed: will retry, dead: out of attempts).',
      labelNames: ['queue', 'job', 'outcome'] as const,
      registers: [this.registry],
    });
  }

  /** Counts the jobs `worker` finishes from now on, and adds it to {@link running}. */
  watch(worker: Worker): void {
    this.workers.push(worker);
    const record = (job: Job | undefined, outcome: 'completed' | 'failed' | 'dead') => {
      if (!job) return;
      const labels = { queue: worker.name, job: job.name, outcome };
      this.outcomes.inc(labels);
      if (job.processedOn !== undefined)
        this.duration.observe(labels, Math.max(0, ((job.finishedOn ?? Date.now()) - job.processedOn) / 1000));
    };
    worker.on('completed', (job) => record(job, 'completed'));
    worker.on('failed', (job) => {
      if (!job) return;
      const attempts = job.opts.attempts ?? 1;
      record(job, job.attemptsMade >= attempts || job.finishedOn !== undefined ? 'dead' : 'failed');
    });
  }

  /** Each watched worker's queue and whether it is taking jobs (not closed, not paused). */
  running(): { queue: string; running: boolean }[] {
    return this.workers.map((w) => ({ queue: w.name, running: w.isRunning() && !w.isPaused() }));
  }
}
