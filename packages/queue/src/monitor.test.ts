import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { BullJobRunner, startWorker } from './bull.js';
import { WorkerMonitor } from './monitor.js';
import { BadInputError } from './processor.js';

// A real Redis and real BullMQ workers, under a key prefix of the test's own.
const REDIS_URL = 'redis://127.0.0.1:6379';
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** The value of one sample line of Prometheus text, or 0 when the series is absent. */
function sample(text: string, name: string, labels: Record<string, string>): number {
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

describe(WorkerMonitor.name, () => {
  it('counts completed, retried and dead jobs with their durations, and says whether its workers run', async () => {
    const prefix = `test-${randomUUID()}`;
    const runner = new BullJobRunner(REDIS_URL, { prefix });
    let calls = 0;
    const worker = startWorker(
      'ingest',
      {
        'ingest-run': () => Promise.reject(new BadInputError('the manifest is not JSON lines')),
        'ingest-batch': async () => {
          calls++;
          await new Promise((r) => setTimeout(r, 30));
          if (calls < 2) throw new Error('store briefly unavailable');
          return { ok: true };
        },
      },
      { redisUrl: REDIS_URL, prefix },
    );
    cleanups.push(async () => {
      await worker.close();
      await runner.queue('ingest').obliterate({ force: true });
      await runner.close();
    });
    const monitor = new WorkerMonitor();
    monitor.watch(worker);
    expect(monitor.running()).toEqual([{ queue: worker.name, running: true }]);

    const settled = (id: string) =>
      new Promise<void>((resolve) => {
        const done = (jobId: string, ...rest: unknown[]) => {
          const final = rest.length < 3 || rest[2] === true;
          if (jobId === id && final) resolve();
        };
        runner.events.on('completed', done);
        runner.events.on('failed', done);
      });
    const bad = await runner.enqueue('ingest-run', { runId: 'r1', source: { kind: 'manifest', location: 'm.jsonl' } });
    await settled(bad.id);
    const flaky = await runner.enqueue('ingest-batch', { runId: 'r1', batch: 0, items: [{ location: 'a.png' }] });
    await settled(flaky.id);
    // The worker's own events can trail the runner's by a moment.
    for (
      let i = 0;
      i < 50 && sample(await monitor.registry.metrics(), 'lookalike_jobs_total', { outcome: 'completed' }) < 1;
      i++
    )
      await new Promise((r) => setTimeout(r, 50));

    const text = await monitor.registry.metrics();
    const at = (job: string, outcome: string) => sample(text, 'lookalike_jobs_total', { job, outcome });
    expect(at('ingest-run', 'dead')).toBe(1);
    expect(at('ingest-batch', 'failed')).toBe(1);
    expect(at('ingest-batch', 'completed')).toBe(1);
    expect(at('ingest-batch', 'dead')).toBe(0);
    const count = sample(text, 'lookalike_job_duration_seconds_count', { job: 'ingest-batch', outcome: 'completed' });
    const sum = sample(text, 'lookalike_job_duration_seconds_sum', { job: 'ingest-batch', outcome: 'completed' });
    expect(count).toBe(1);
    expect(sum).toBeGreaterThanOrEqual(0.03);
    expect(text).toContain(`queue="${worker.name}"`);

    await worker.close();
    expect(monitor.running()).toEqual([{ queue: worker.name, running: false }]);
  });
});
