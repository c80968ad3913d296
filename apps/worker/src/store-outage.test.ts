import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BullJobRunner, type JobName } from '@lookalike/queue';
import { generateCatalog } from '@lookalike/synth';
import { afterAll, describe, expect, it } from 'vitest';
import { storedIds, workerEnv } from './testing.js';

// Real processes, real Redis, the real embedded store made unwritable for a while: the table's folder is marked
// immutable (chattr +i), which refuses every write even to root, as a full or read-only disk would, then restored.
const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const REDIS_URL = 'redis://127.0.0.1:6379';
const dirs: string[] = [];
const frozen: string[] = [];

/** Marks (or unmarks) a folder tree immutable. */
function immutable(path: string, on: boolean): void {
  execFileSync('chattr', ['-R', on ? '+i' : '-i', path], { stdio: 'pipe' });
}

afterAll(async () => {
  for (const path of frozen) immutable(path, false);
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

/** Whether this machine can freeze a folder (chattr on a filesystem that supports it, as root). */
async function canFreeze(): Promise<boolean> {
  const dir = await mkdtemp(join(tmpdir(), 'chattr-'));
  try {
    immutable(dir, true);
    immutable(dir, false);
    return true;
  } catch {
    return false;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const supported = await canFreeze();
if (!supported)
  console.warn(
    'store-outage test NOT RUN: chattr +i is not available here (needs root on ext4/xfs); the store outage is untested on this machine',
  );

describe('ingest through BullMQ when the store is unavailable for a while', () => {
  it.runIf(supported)(
    'retries the batches the outage failed and ends with every image once',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'fault-store-'));
      dirs.push(dir);
      const count = 160;
      await generateCatalog({ count, seed: 14, outDir: join(dir, 'catalog'), size: 96 });
      const prefix = `test-${randomUUID()}`;
      const runner = new BullJobRunner(REDIS_URL, { prefix });
      const completed = new Set<string>();
      const lost: string[] = [];
      let batches = -1;
      runner.events.on('completed', (id: string, name: JobName, result: unknown) => {
        if (name === 'ingest-run') batches = (result as { batches: number }).batches;
        else completed.add(id);
      });
      // Only final failures reach QueueEvents; retried attempts show in each job's attempts and stack traces.
      runner.events.on('failed', (id: string, _name: JobName, reason: string) => lost.push(`${id}: ${reason}`));
      const worker = spawn(process.execPath, [main], { env: workerEnv(dir, prefix, REDIS_URL), stdio: 'ignore' });
      const until = async (ok: () => boolean, seconds: number) => {
        for (let i = 0; i < seconds * 10 && !ok(); i++) await new Promise((r) => setTimeout(r, 100));
      };
      try {
        await runner.enqueue(
          'ingest-run',
          {
            runId: 'outage',
            source: { kind: 'manifest', location: join(dir, 'catalog', 'manifest.jsonl') },
            batchSize: 4,
          },
          { jobId: 'outage' },
        );
        await until(() => completed.size >= 3, 120);
        expect(completed.size).toBeGreaterThanOrEqual(3);
        const store = join(dir, 'store');
        const table = join(
          store,
          (await readdir(store)).find((f) => f.endsWith('.lance'))!,
        );
        const doneBeforeOutage = completed.size;
        immutable(table, true);
        frozen.push(table);
        // Five seconds without a writable store: every batch that reaches its upsert fails and is retried with backoff.
        await new Promise((r) => setTimeout(r, 5000));
        const doneDuringOutage = completed.size - doneBeforeOutage;
        immutable(table, false);
        frozen.pop();
        await until(() => batches > 0 && completed.size >= batches, 240);
        worker.kill('SIGTERM');
        await new Promise((r) => worker.once('exit', r));
        expect(batches).toBe(count / 4);
        expect(lost).toEqual([]);
        expect(completed.size).toBe(batches);
        // The outage was real: nothing was stored while it lasted (a batch mid-upsert at the start may finish), and
        // the batches it hit were retried after failing on the store.
        expect(doneDuringOutage).toBeLessThanOrEqual(2);
        const jobs = await Promise.all(
          Array.from({ length: batches }, (_, b) => runner.queue('ingest').getJob(`outage.${b}`)),
        );
        const retried = jobs.filter((j) => (j?.attemptsMade ?? 0) > 1);
        expect(retried.length).toBeGreaterThan(0);
        expect(retried.map((j) => (j!.stacktrace ?? []).join('\n')).join('\n')).toMatch(/embedded store could not/);
        const ids = await storedIds(dir);
        expect(ids.length).toBe(count);
        expect(new Set(ids).size).toBe(count);
      } finally {
        if (worker.exitCode === null) worker.kill('SIGKILL');
        for (const key of ['ingest', 'audit', 'reindex'] as const) await runner.queue(key).obliterate({ force: true });
        await runner.close();
      }
    },
    300_000,
  );
});
