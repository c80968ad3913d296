import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

// The built entry point in a child process against the real Redis, as an operator runs it.
const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const MODELS = fileURLToPath(new URL('../../../models/', import.meta.url));
const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

function start(env: Record<string, string | undefined>) {
  const child = spawn(process.execPath, [main], {
    env: { ...process.env, REDIS_URL: undefined, QDRANT_URL: undefined, ...env },
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
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

  it('starts against Redis and stops cleanly on SIGTERM', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'worker-'));
    dirs.push(dir);
    const w = start({ REDIS_URL: 'redis://127.0.0.1:6379', DATA_DIR: dir, MODELS_DIR: MODELS });
    for (let i = 0; i < 200 && !/Worker ready/.test(w.output()); i++) await new Promise((r) => setTimeout(r, 100));
    expect(w.output()).toMatch(/Worker ready: ingest jobs from redis:\/\/127\.0\.0\.1:6379 into the embedded store/);
    w.child.kill('SIGTERM');
    expect(await w.exited).toBe(0);
    expect(w.output()).toMatch(/Worker stopped\./);
  });
});
