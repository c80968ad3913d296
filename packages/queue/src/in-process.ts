import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import type { JobState, JobStatus } from '@lookalike/core';
import { JOB_POLICIES, type JobName, type JobPayload, type ParsedPayload, type QueueKey } from './jobs.js';
import { BadInputError, parsePayload, validatePayload, type JobContext, type JobHandlers } from './processor.js';
import type { JobRunner, RunnerEvents } from './runner.js';

interface Entry {
  id: string;
  name: JobName;
  data: unknown;
  state: JobState;
  attempt: number;
  progress: unknown;
  result?: unknown;
  failedReason?: string;
  finishedAt?: number;
  /** A flow's parent: the children it waits for (it is queued when the last one completes). */
  children?: string[];
  /** A flow's child: the parent to notify. */
  parent?: string;
}

/**
 * Runs the same handlers as the BullMQ workers, in this process, for one machine with no Redis: FIFO per queue,
 * bounded concurrency, the jobs' attempts with exponential backoff, bad input failed at once. Jobs live in memory:
 * a restart forgets queued work, which is why production uses BullMQ (idempotent ingest makes a re-run safe).
 */
export class InProcessJobRunner implements JobRunner {
  readonly events = new EventEmitter<RunnerEvents>();
  private readonly jobs = new Map<string, Entry>();
  private readonly waiting: Record<QueueKey, string[]> = { ingest: [], audit: [], reindex: [] };
  private readonly active: Record<QueueKey, number> = { ingest: 0, audit: 0, reindex: 0 };
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly handlers: JobHandlers,
    private readonly concurrency: Partial<Record<QueueKey, number>> = {},
  ) {}

  async enqueue<N extends JobName>(
    name: N,
    payload: JobPayload<N>,
    options: { jobId?: string } = {},
  ): Promise<{ id: string }> {
    await Promise.resolve();
    validatePayload(name, payload);
    if (this.closed) throw new Error('the job runner is closed');
    const id = options.jobId ?? randomUUID();
    // Same semantics as BullMQ: a job id that exists is not added again.
    if (this.jobs.has(id)) return { id };
    this.jobs.set(id, { id, name, data: payload, state: 'waiting', attempt: 0, progress: 0 });
    this.waiting[JOB_POLICIES[name].queue].push(id);
    setImmediate(() => this.pump());
    return { id };
  }

  async enqueueBulk<N extends JobName>(
    name: N,
    payloads: readonly JobPayload<N>[],
    jobIds?: readonly string[],
  ): Promise<{ id: string }[]> {
    const out: { id: string }[] = [];
    for (let i = 0; i < payloads.length; i++) {
      const jobId = jobIds?.[i];
      out.push(await this.enqueue(name, payloads[i]!, jobId === undefined ? {} : { jobId }));
    }
    return out;
  }

  /** Adds a flow: the children now, the parent once every child has completed (see {@link JobContext.enqueueFlow}). */
  async enqueueFlow<P extends JobName, C extends JobName>(flow: {
    parent: { name: P; payload: JobPayload<P>; jobId: string };
    children: { name: C; payloads: readonly JobPayload<C>[]; jobIds: readonly string[] };
  }): Promise<void> {
    return this.addFlow(flow);
  }

  private async addFlow(flow: {
    parent: { name: JobName; payload: unknown; jobId: string };
    children: { name: JobName; payloads: readonly unknown[]; jobIds: readonly string[] };
  }): Promise<void> {
    await Promise.resolve();
    const { parent, children } = flow;
    validatePayload(parent.name, parent.payload);
    children.payloads.forEach((p) => validatePayload(children.name, p));
    if (this.closed) throw new Error('the job runner is closed');
    if (this.jobs.has(parent.jobId)) return;
    this.jobs.set(parent.jobId, {
      id: parent.jobId,
      name: parent.name,
      data: parent.payload,
      state: 'waiting',
      attempt: 0,
      progress: 0,
      children: [...children.jobIds],
    });
    for (let i = 0; i < children.payloads.length; i++) {
      const id = children.jobIds[i]!;
      if (this.jobs.has(id)) continue;
      this.jobs.set(id, {
        id,
        name: children.name,
        data: children.payloads[i],
        state: 'waiting',
        attempt: 0,
        progress: 0,
        parent: parent.jobId,
      });
      this.waiting[JOB_POLICIES[children.name].queue].push(id);
    }
    this.settleParent(parent.jobId);
    setImmediate(() => this.pump());
  }

  /** Queues a flow's parent once all its children completed; fails it when one failed for good. */
  private settleParent(parentId: string): void {
    const parent = this.jobs.get(parentId);
    if (!parent?.children || parent.state !== 'waiting' || parent.attempt > 0) return;
    const children = parent.children.map((id) => this.jobs.get(id));
    const failed = children.find((c) => !c || c.state === 'failed');
    if (failed) {
      parent.state = 'failed';
      parent.failedReason = `child job ${failed?.id ?? '(removed)'} failed: ${failed?.failedReason ?? 'it is gone'}`;
      parent.finishedAt = Date.now();
      this.events.emit('failed', parent.id, parent.name, parent.failedReason, true);
      return;
    }
    if (
      children.every((c) => c!.state === 'completed') &&
      !this.waiting[JOB_POLICIES[parent.name].queue].includes(parentId)
    )
      this.waiting[JOB_POLICIES[parent.name].queue].push(parentId);
  }

  getJob(id: string): Promise<JobStatus | undefined> {
    const e = this.jobs.get(id);
    if (!e) return Promise.resolve(undefined);
    return Promise.resolve({
      id: e.id,
      name: e.name,
      state: e.state,
      progress: e.progress,
      ...(e.result === undefined ? {} : { result: e.result }),
      ...(e.failedReason === undefined ? {} : { failedReason: e.failedReason }),
    });
  }

  counts(): Promise<Record<string, Record<string, number>>> {
    const out: Record<string, Record<string, number>> = {};
    for (const e of this.jobs.values()) {
      const q = JOB_POLICIES[e.name].queue;
      out[q] ??= {};
      out[q][e.state] = (out[q][e.state] ?? 0) + 1;
    }
    return Promise.resolve(out);
  }

  /** Resolves when no job is waiting, delayed or active. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const q of Object.keys(this.waiting) as QueueKey[]) this.waiting[q] = [];
    while (this.active.ingest + this.active.audit + this.active.reindex > 0)
      await new Promise((r) => setTimeout(r, 10));
  }

  private isIdle(): boolean {
    for (const e of this.jobs.values())
      if (e.state === 'waiting' || e.state === 'active' || e.state === 'delayed') return false;
    return true;
  }

  private pump(): void {
    if (this.closed) return;
    for (const q of Object.keys(this.waiting) as QueueKey[]) {
      const limit = this.concurrency[q] ?? 1;
      while (this.active[q] < limit && this.waiting[q].length > 0) {
        const entry = this.jobs.get(this.waiting[q].shift()!);
        if (entry) void this.run(q, entry);
      }
    }
    if (this.isIdle()) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  private async run(queue: QueueKey, entry: Entry): Promise<void> {
    this.active[queue]++;
    entry.state = 'active';
    entry.attempt++;
    const policy = JOB_POLICIES[entry.name];
    const ctx: JobContext = {
      jobId: entry.id,
      attempt: entry.attempt,
      updateProgress: (progress) => {
        entry.progress = progress;
        this.events.emit('progress', entry.id, entry.name, progress);
        return Promise.resolve();
      },
      log: () => Promise.resolve(),
      enqueueBulk: async (name, payloads, jobIds) => {
        await this.enqueueBulk(name, payloads as JobPayload<typeof name>[], jobIds);
      },
      enqueueFlow: (flow) => this.addFlow(flow),
      childrenValues: () =>
        Promise.resolve(
          Object.fromEntries((entry.children ?? []).map((id) => [id, this.jobs.get(id)?.result] as const)),
        ),
    };
    try {
      const handler = this.handlers[entry.name] as ((p: unknown, c: JobContext) => Promise<unknown>) | undefined;
      if (!handler) throw new BadInputError(`no handler for job ${entry.name}`);
      const payload: ParsedPayload<JobName> = parsePayload(entry.name, entry.data);
      entry.result = await handler(payload, ctx);
      entry.state = 'completed';
      entry.finishedAt = Date.now();
      this.events.emit('completed', entry.id, entry.name, entry.result);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      const final = error instanceof BadInputError || entry.attempt >= policy.attempts || this.closed;
      entry.failedReason = reason;
      if (final) {
        entry.state = 'failed';
        entry.finishedAt = Date.now();
      } else {
        entry.state = 'delayed';
        const timer = setTimeout(
          () => {
            this.timers.delete(timer);
            entry.state = 'waiting';
            this.waiting[queue].push(entry.id);
            this.pump();
          },
          policy.backoffMs * 2 ** (entry.attempt - 1),
        );
        this.timers.add(timer);
      }
      this.events.emit('failed', entry.id, entry.name, reason, final);
    } finally {
      this.active[queue]--;
      if (entry.parent && (entry.state === 'completed' || entry.state === 'failed')) this.settleParent(entry.parent);
      this.prune();
      this.pump();
    }
  }

  /** Keeps finished jobs within the policies' retention counts. */
  private prune(): void {
    const finished = [...this.jobs.values()].filter((e) => e.state === 'completed' || e.state === 'failed');
    for (const name of Object.keys(JOB_POLICIES) as JobName[]) {
      for (const state of ['completed', 'failed'] as const) {
        const keep =
          state === 'completed' ? JOB_POLICIES[name].keepCompleted.count : JOB_POLICIES[name].keepFailed.count;
        const list = finished.filter((e) => e.name === name && e.state === state);
        list.sort((a, b) => (a.finishedAt ?? 0) - (b.finishedAt ?? 0));
        for (const e of list.slice(0, Math.max(0, list.length - keep))) this.jobs.delete(e.id);
      }
    }
  }
}
