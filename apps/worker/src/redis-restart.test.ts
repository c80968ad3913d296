import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { JobStatus } from '@lookalike/core';
import { BullJobRunner, type JobName } from '@lookalike/queue';
import { generateCatalog } from '@lookalike/synth';
import { afterAll, describe, expect, it } from 'vitest';
import { storedIds, workerEnv } from './testing.js';

// Real processes, a private Redis, real models and store: Redis is SIGKILLed mid-ingest and restarted from its
// append-only file, as production's `appendonly yes` would be. The shared Redis at 6379 is never touched.
const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const dirs: string[] = [];
const children: ChildProcess[] = [];
afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

const exited = (child: ChildProcess) =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve(child.exitCode)
    : new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

/**
 * Starts redis-server on `port` with every write fsynced to its AOF under `dir` and no RDB snapshots; resolves once
 * it has loaded the AOF and accepts connections.
 */
async function startRedis(port: number, dir: string): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'yes',
      '--appendfsync',
      'always',
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  children.push(child);
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start on port ${port}: ${out}`)), 10_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (/Ready to accept connections/.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited with ${code}: ${out}`));
    });
  });
  child.stdout.resume();
  return child;
}

/**
 * Stderr lines other than what BullMQ prints, with no `error` listener attached, while Redis is away: refused and
 * reset connections, the embedded store's warning that a background optimize lost a commit race to an index build
 * (retried by the next write), and "Missing lock" for a job whose `moveToFinished` Redis ran and made durable but was killed
 * before it replied (ioredis resends it on reconnect; the job is completed, and any job that reply handed the worker
 * is recovered by the stalled-job check).
 */
const unexpected = (stderr: string) =>
  stderr
    .split('\n')
    .filter(
      (l) =>
        !/ECONNREFUSED|ECONNRESET|Store optimize failed \(the next writes try again\): .*Retryable commit conflict|Missing lock for job \S+ moveTo(Finished|Delayed|Failed)|^\s+at |^\s+(errno|code|syscall|address|port): |^\s*[{}]?\s*$/.test(
          l,
        ),
    );

describe('ingest through BullMQ when Redis restarts', () => {
  it('ends with every image present exactly once and every batch completed after Redis is killed and restarted', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'redis-restart-'));
    dirs.push(dir);
    const redisDir = join(dir, 'redis');
    await mkdir(redisDir);
    const count = 120;
    const batchSize = 4;
    const batches = count / batchSize;
    await generateCatalog({ count, seed: 21, outDir: join(dir, 'catalog'), size: 96 });
    const port = await freePort();
    const url = `redis://127.0.0.1:${port}`;
    let redis = await startRedis(port, redisDir);

    const prefix = `test-${randomUUID()}`;
    const env = workerEnv(dir, prefix, url);
    const startWorker = () => {
      const child = spawn(process.execPath, [main], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(child);
      const log = { out: '', err: '' };
      child.stdout.on('data', (d: Buffer) => (log.out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (log.err += d.toString()));
      return { child, log };
    };

    const runner = new BullJobRunner(url, { prefix });
    const completed = new Set<string>();
    const failed: string[] = [];
    runner.events.on('completed', (id: string, name: JobName) => {
      if (name === 'ingest-batch') completed.add(id);
    });
    runner.events.on('failed', (id: string, _name: JobName, reason: string) => failed.push(`${id}: ${reason}`));
    const batchIds = Array.from({ length: batches }, (_, b) => `restart.${b}`);
    /** Every batch's state read from Redis; undefined while Redis cannot answer. */
    const states = async (): Promise<(JobStatus | undefined)[] | undefined> => {
      try {
        return await Promise.all(batchIds.map((id) => runner.getJob(id)));
      } catch {
        return undefined;
      }
    };

    const workers = [startWorker(), startWorker()];
    const stderr = () => workers.map((w, i) => `worker ${i} stderr:\n${w.log.err}`).join('\n');
    try {
      await runner.enqueue(
        'ingest-run',
        { runId: 'restart', source: { kind: 'manifest', location: join(dir, 'catalog', 'manifest.jsonl') }, batchSize },
        { jobId: 'restart' },
      );
      for (let i = 0; i < 600 && completed.size < 4; i++) await sleep(100);
      expect(completed.size).toBeGreaterThanOrEqual(4);

      // Kill Redis with batches in flight and most still waiting; appendfsync always keeps every acknowledged write.
      redis.kill('SIGKILL');
      await exited(redis);
      expect(completed.size).toBeLessThan(batches / 2);
      await sleep(4000);
      // With Redis down, workers wait for it rather than crash.
      expect(
        workers.map((w) => w.child.exitCode),
        stderr(),
      ).toEqual([null, null]);
      redis = await startRedis(port, redisDir);

      // QueueEvents may miss events during the outage, so Redis's own job states decide. A job whose reply was lost
      // in the kill is only taken again once its lock expires and a stalled-job check runs (JOB_LOCK_MS, 5 s here).
      let last: (JobStatus | undefined)[] | undefined;
      for (let i = 0; i < 180; i++) {
        last = await states();
        if (last?.every((s) => s?.state === 'completed')) break;
        await sleep(500);
      }
      expect(
        last?.map((s, b) => `${batchIds[b]}: ${s?.state ?? 'missing'}`),
        stderr(),
      ).toEqual(batchIds.map((id) => `${id}: completed`));
      const run = await runner.getJob('restart');
      expect(run?.state).toBe('completed');
      expect(run?.result).toMatchObject({ items: count, batches });
      expect((await runner.counts()).ingest).toEqual({
        waiting: 0,
        active: 0,
        delayed: 0,
        failed: 0,
        completed: batches + 1,
      });
      // QueueEvents resumes the events stream where it left off, so the events relayed every completion too.
      for (let i = 0; i < 50 && completed.size < batches; i++) await sleep(100);
      expect(completed.size).toBe(batches);
      expect(failed).toEqual([]);

      for (const w of workers) w.child.kill('SIGTERM');
      expect(await Promise.all(workers.map((w) => exited(w.child))), stderr()).toEqual([0, 0]);
      for (const w of workers) {
        expect(w.log.out).toMatch(/Worker stopped\./);
        expect(unexpected(w.log.err)).toEqual([]);
      }

      const ids = await storedIds(dir);
      expect(ids.length).toBe(count);
      expect(new Set(ids).size).toBe(count);
      const images = join(dir, 'catalog', 'images');
      const expected = await Promise.all(
        (await readdir(images)).map(async (f) =>
          createHash('sha256')
            .update(await readFile(join(images, f)))
            .digest('hex'),
        ),
      );
      expect(new Set(ids)).toEqual(new Set(expected));
      const results = last!.map((s) => s!.result as { ids: string[]; failed: unknown[] });
      expect(results.flatMap((r) => r.failed)).toEqual([]);
      expect(new Set(results.flatMap((r) => r.ids))).toEqual(new Set(expected));
    } finally {
      for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
      await Promise.race([runner.close(), sleep(5000)]);
      redis.kill('SIGKILL');
    }
  }, 180_000);
});
