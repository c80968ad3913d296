import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BullJobRunner } from '@lookalike/queue';
import { afterAll, describe, expect, it } from 'vitest';

// The built entry point in a child process against the real Redis, as an operator runs it.
const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const MODELS = fileURLToPath(new URL('../../../models/', import.meta.url));
const REDIS_URL = 'redis://127.0.0.1:6379';
const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

function start(env: Record<string, string | undefined>) {
  const child = spawn(process.execPath, [main], {
    env: { ...process.env, REDIS_URL: undefined, QDRANT_URL: undefined, ...env },
  });
  let out = '';
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  /** The messages of its log so far: stdout is pino's JSON, one object per line, each with a level and a time. */
  const messages = () =>
    stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { level: number; time: number; msg: string })
      .map((entry) => {
        expect(typeof entry.level).toBe('number');
        expect(typeof entry.time).toBe('number');
        return entry.msg;
      })
      .join('\n');
  return { child, output: () => out, messages, exited };
}

describe('lookalike worker', () => {
  it('refuses to start without REDIS_URL, and lists every bad variable of a broken configuration', async () => {
    const noRedis = start({});
    expect(await noRedis.exited).toBe(2);
    expect(noRedis.output()).toMatch(/REDIS_URL is not set/);
    const broken = start({ REDIS_URL: 'http://not-redis', PORT: 'eighty' });
    expect(await broken.exited).toBe(2);
    expect(broken.output()).toMatch(/REDIS_URL/);
    expect(broken.output()).toMatch(/PORT/);
  });

  it('starts against Redis, installs the nightly audit schedule once, and stops cleanly on SIGTERM', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'worker-'));
    dirs.push(dir);
    const prefix = `test-${randomUUID()}`;
    const env = { REDIS_URL, DATA_DIR: dir, MODELS_DIR: MODELS, QUEUE_PREFIX: prefix, AUDIT_CRON: '15 4 * * *' };
    const runner = new BullJobRunner(REDIS_URL, { prefix, listen: false });
    try {
      for (let run = 0; run < 2; run++) {
        const w = start(env);
        for (let i = 0; i < 200 && !/Nightly audit scheduled/.test(w.output()); i++)
          await new Promise((r) => setTimeout(r, 100));
        expect(w.messages()).toMatch(
          /Worker ready: ingest and audit jobs from redis:\/\/127\.0\.0\.1:6379 into the embedded store/,
        );
        expect(w.messages()).toMatch(/Nightly audit scheduled with cron "15 4 \* \* \*"/);
        // Its own listener (WORKER_HEALTH_PORT 0: a free port, logged).
        const url = /Health checks and metrics at (http:\/\/[^ ]+)\/readyz/.exec(w.messages())![1]!;
        expect((await fetch(`${url}/healthz`)).status).toBe(200);
        const ready = await fetch(`${url}/readyz`);
        expect(ready.status).toBe(200);
        expect(((await ready.json()) as { checks: { name: string; ok: boolean }[] }).checks).toEqual(
          ['store', 'redis', 'models', 'workers'].map((name) => ({ name, ok: true })),
        );
        const metrics = await (await fetch(`${url}/metrics`)).text();
        expect(metrics).toContain('# TYPE lookalike_job_duration_seconds histogram');
        expect(metrics).toContain('# TYPE lookalike_jobs_total counter');
        expect((await fetch(`${url}/readyz`, { method: 'POST' })).status).toBe(405);
        w.child.kill('SIGTERM');
        expect(await w.exited).toBe(0);
        expect(w.messages()).toMatch(/Received SIGTERM; no more health checks or new jobs[\s\S]*Worker stopped\./);
      }
      // Both starts converged on one scheduler.
      const schedulers = await runner.queue('audit').getJobSchedulers();
      expect(schedulers.map((s) => [s.key, s.pattern])).toEqual([['nightly-audit', '15 4 * * *']]);
    } finally {
      for (const key of ['ingest', 'audit', 'reindex'] as const) await runner.queue(key).obliterate({ force: true });
      await runner.close();
    }
  });
});
