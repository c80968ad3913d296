import { randomUUID } from 'node:crypto';
import { ValidationError } from '@lookalike/core';
import type { Worker } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { BullJobRunner, startWorker } from './bull.js';
import { InProcessJobRunner } from './in-process.js';
import { jobsOf, type AuditOptions, type JobName } from './jobs.js';
import { BadInputError, type JobHandlers } from './processor.js';
import type { JobRunner } from './runner.js';

// A real Redis (127.0.0.1:6379 here and in CI); every test uses its own key prefix and removes it afterwards.
const REDIS_URL = 'redis://127.0.0.1:6379';

interface Harness {
  runner: JobRunner;
  close(): Promise<void>;
}

type Make = (handlers: JobHandlers) => Harness;

const makeBull: Make = (handlers) => {
  const prefix = `test-${randomUUID()}`;
  const runner = new BullJobRunner(REDIS_URL, { prefix });
  // A worker per queue whose jobs all have handlers.
  const workers: Worker[] = (['ingest', 'audit'] as const)
    .filter((q) => jobsOf(q).every((n) => handlers[n]))
    .map((q) => startWorker(q, handlers, { redisUrl: REDIS_URL, prefix, concurrency: 2 }));
  return {
    runner,
    async close() {
      await Promise.all(workers.map((w) => w.close()));
      for (const key of ['ingest', 'audit', 'reindex'] as const) await runner.queue(key).obliterate({ force: true });
      await runner.close();
    },
  };
};

const makeInProcess: Make = (handlers) => {
  const runner = new InProcessJobRunner(handlers, { ingest: 2, audit: 2 });
  return { runner, close: () => runner.close() };
};

function finished(
  runner: JobRunner,
  id: string,
  timeoutMs = 20_000,
): Promise<{ state: string; result?: unknown; reason?: string }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`job ${id} did not finish in ${timeoutMs} ms`)), timeoutMs);
    // The job's state is also read now and then: an event is a notification, and a loaded machine may deliver it
    // late; what the tests check is what the runner did, not how fast its events travel.
    const poll = setInterval(() => {
      void runner.getJob(id).then((job) => {
        if (job?.state === 'completed') done({ state: 'completed', result: job.result });
        else if (job?.state === 'failed') done({ state: 'failed', reason: job.failedReason });
      });
    }, 500);
    let settled = false;
    const done = (r: { state: string; result?: unknown; reason?: string }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearInterval(poll);
      runner.events.off('completed', onCompleted);
      runner.events.off('failed', onFailed);
      resolve(r);
    };
    const onCompleted = (jobId: string, _n: JobName, result: unknown) =>
      jobId === id && done({ state: 'completed', result });
    const onFailed = (jobId: string, _n: JobName, reason: string, final: boolean) =>
      jobId === id && final && done({ state: 'failed', reason });
    runner.events.on('completed', onCompleted);
    runner.events.on('failed', onFailed);
  });
}

const item = (i: number) => ({ location: `catalog/${i}.png` });
const options = (): AuditOptions => ({
  queries: 5,
  epsilons: [0],
  attack: 'pgd',
  norm: 'linf',
  steps: 1,
  restarts: 1,
  k: 5,
  depth: 10,
  targetedQueries: 0,
  seed: 0,
  batchSize: 2,
  examples: 0,
  perceptual: { triplets: 0, seed: 33, examples: 0 },
  quality: { images: 0, seed: 43, examples: 0 },
});

/** An audit-run handler that starts a flow with one batch per list of query ids. */
const flowOf =
  (batches: string[][]): NonNullable<JobHandlers['audit-run']> =>
  async (payload, ctx) => {
    const auditId = payload.auditId!;
    await ctx.enqueueFlow({
      parent: {
        name: 'audit-finalize',
        payload: { auditId, startedAt: 'now', batches: batches.length, catalogSize: 5, options: payload.options },
        jobId: `${auditId}.final`,
      },
      children: {
        name: 'audit-batch',
        payloads: batches.map((ids, batch) => ({
          auditId,
          batch,
          queries: ids.map((id) => ({ id })),
          options: payload.options,
        })),
        jobIds: batches.map((_, b) => `${auditId}.b${b}`),
      },
    });
    return { batches: batches.length };
  };

for (const [label, make] of [
  ['BullMQ on Redis', makeBull],
  ['in-process', makeInProcess],
] as const) {
  describe(`job runner: ${label}`, () => {
    let harness: Harness | undefined;
    afterEach(async () => {
      await harness?.close();
      harness = undefined;
    });

    it('validates payloads before queueing anything', async () => {
      harness = make({ 'ingest-run': () => Promise.resolve(), 'ingest-batch': () => Promise.resolve() });
      await expect(harness.runner.enqueue('ingest-batch', { runId: 'r', batch: 0, items: [] })).rejects.toBeInstanceOf(
        ValidationError,
      );
      await expect(
        harness.runner.enqueue('ingest-run', {
          runId: 'r',
          source: { kind: 'directory', root: 'x', evil: 1 },
        } as never),
      ).rejects.toThrow(/source/);
    });

    it('fans a run out into batch jobs, reports progress and returns results', async () => {
      const seen: number[] = [];
      const progress: unknown[] = [];
      harness = make({
        'ingest-run': async (payload, ctx) => {
          const items = Array.from({ length: 7 }, (_, i) => item(i));
          const batches = [items.slice(0, 3), items.slice(3, 6), items.slice(6)];
          await ctx.enqueueBulk(
            'ingest-batch',
            batches.map((b, i) => ({ runId: payload.runId, batch: i, items: b })),
            batches.map((_, i) => `${payload.runId}-batch-${i}`),
          );
          await ctx.updateProgress({ listed: 7 });
          return { batches: batches.length };
        },
        'ingest-batch': async (payload, ctx) => {
          seen.push(...payload.items.map((i) => Number(/\d+/.exec(i.location)![0])));
          await ctx.updateProgress({ done: payload.items.length });
          return { done: payload.items.length };
        },
      });
      harness.runner.events.on('progress', (_id, _name, p) => progress.push(p));
      const runId = `run-${randomUUID()}`;
      const last = finished(harness.runner, `${runId}-batch-2`);
      const { id } = await harness.runner.enqueue('ingest-run', {
        runId,
        source: { kind: 'directory', root: '/data' },
      });
      expect(await last).toMatchObject({ state: 'completed' });
      for (let i = 0; i < 100 && seen.length < 7; i++) await new Promise((r) => setTimeout(r, 50));
      for (const b of [0, 1]) expect((await harness.runner.getJob(`${runId}-batch-${b}`))?.state).toBe('completed');
      expect(seen.sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6]);
      expect((await harness.runner.getJob(id))?.state).toBe('completed');
      expect((await harness.runner.getJob(id))?.result).toEqual({ batches: 3 });
      expect(progress).toContainEqual({ listed: 7 });
    });

    it('retries transient failures and fails bad input at once, without retries', async () => {
      let calls = 0;
      harness = make({
        'ingest-run': () => Promise.reject(new BadInputError('the manifest is not JSON lines')),
        'ingest-batch': () => {
          calls++;
          return calls < 2 ? Promise.reject(new Error('store briefly unavailable')) : Promise.resolve({ ok: calls });
        },
      });
      const bad = await harness.runner.enqueue('ingest-run', {
        runId: 'r1',
        source: { kind: 'manifest', location: 'm.jsonl' },
      });
      expect(await finished(harness.runner, bad.id)).toMatchObject({
        state: 'failed',
        reason: 'the manifest is not JSON lines',
      });
      const flaky = await harness.runner.enqueue('ingest-batch', { runId: 'r1', batch: 0, items: [item(1)] });
      expect(await finished(harness.runner, flaky.id)).toMatchObject({ state: 'completed', result: { ok: 2 } });
      expect(calls).toBe(2);
    });

    it("runs a flow's parent once, after every child, with the children's results", async () => {
      const order: string[] = [];
      let parentRuns = 0;
      harness = make({
        'audit-run': flowOf([['a', 'b'], ['c'], ['d', 'e']]),
        'audit-batch': async (payload) => {
          await new Promise((r) => setTimeout(r, 30 * (3 - payload.batch)));
          order.push(`batch ${payload.batch}`);
          return { ids: payload.queries.map((q) => q.id) };
        },
        'audit-finalize': async (_payload, ctx) => {
          parentRuns++;
          order.push('parent');
          const values = await ctx.childrenValues();
          return Object.keys(values)
            .sort()
            .map((k) => [k, values[k]]);
        },
      });
      const auditId = `a-${randomUUID()}`;
      const done = finished(harness.runner, `${auditId}.final`);
      await harness.runner.enqueue('audit-run', { auditId, options: options() });
      const result = await done;
      expect(result.state).toBe('completed');
      expect(order.at(-1)).toBe('parent');
      expect(order.filter((o) => o.startsWith('batch'))).toHaveLength(3);
      expect(parentRuns).toBe(1);
      expect(result.result).toEqual([
        [`${auditId}.b0`, { ids: ['a', 'b'] }],
        [`${auditId}.b1`, { ids: ['c'] }],
        [`${auditId}.b2`, { ids: ['d', 'e'] }],
      ]);
    });

    it('fails a flow parent without running it when a child fails for good', async () => {
      let parentRuns = 0;
      harness = make({
        'audit-run': flowOf([['q0'], ['q1']]),
        'audit-batch': (payload) =>
          payload.batch === 1 ? Promise.reject(new BadInputError('query q1 is gone')) : Promise.resolve({}),
        'audit-finalize': () => {
          parentRuns++;
          return Promise.resolve();
        },
      });
      const auditId = `a-${randomUUID()}`;
      const done = finished(harness.runner, `${auditId}.final`);
      await harness.runner.enqueue('audit-run', { auditId, options: options() });
      expect((await done).state).toBe('failed');
      expect(parentRuns).toBe(0);
    });

    it('adds a job id only once', async () => {
      let calls = 0;
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      harness = make({
        'ingest-run': () => Promise.resolve(),
        'ingest-batch': async () => {
          calls++;
          await gate;
        },
      });
      const payload = { runId: 'r', batch: 0, items: [item(0)] };
      const a = await harness.runner.enqueue('ingest-batch', payload, { jobId: 'same-id' });
      const b = await harness.runner.enqueue('ingest-batch', payload, { jobId: 'same-id' });
      expect(a.id).toBe(b.id);
      const done = finished(harness.runner, 'same-id');
      release();
      await done;
      expect(calls).toBe(1);
    });
  });
}

/** The names of the Redis connections open now whose name starts with `prefix`. */
async function connectionsOf(prefix: string): Promise<string[]> {
  const { Redis } = await import('ioredis');
  const admin = new Redis(REDIS_URL);
  try {
    const list = (await admin.client('LIST')) as string;
    return [...list.matchAll(/ name=(\S+)/g)].map((m) => m[1]!).filter((name) => name.startsWith(prefix));
  } finally {
    admin.disconnect();
  }
}

describe('Redis connections', () => {
  it('are all closed when the runner and the workers close, so a command using them can exit', async () => {
    const prefix = `test-${randomUUID()}`;
    const handlers: JobHandlers = { 'ingest-run': () => Promise.resolve(), 'ingest-batch': () => Promise.resolve() };
    const runner = new BullJobRunner(REDIS_URL, { prefix });
    const worker = startWorker('ingest', handlers, { redisUrl: REDIS_URL, prefix });
    await worker.waitUntilReady();
    await runner.counts();
    const open = await connectionsOf(prefix);
    expect(open).toEqual(expect.arrayContaining([`${prefix}:producer`, `${prefix}:ingest-worker`]));
    expect(open.filter((n) => n.endsWith('-events'))).toHaveLength(3);
    await worker.close();
    await runner.queue('ingest').obliterate({ force: true });
    await runner.close();
    // The worker's own connection is released once its producers have closed, just after `close` resolves.
    await expect.poll(() => connectionsOf(prefix), { timeout: 5_000, interval: 100 }).toEqual([]);
  });
});

describe(startWorker.name, () => {
  it('refuses to start without a handler for every job of its queue', () => {
    expect(() => startWorker('ingest', { 'ingest-run': () => Promise.resolve() }, { redisUrl: REDIS_URL })).toThrow(
      /no handler for ingest-batch/,
    );
  });
});
