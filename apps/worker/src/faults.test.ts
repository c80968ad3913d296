import { randomUUID } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BullJobRunner, type JobName } from '@lookalike/queue';
import { generateCatalog } from '@lookalike/synth';
import { afterAll, describe, expect, it } from 'vitest';
import { storedIds, workerEnv } from './testing.js';

// Real processes, real Redis, real models and store: a worker is SIGKILLed mid-ingest and another takes over.
const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const REDIS_URL = 'redis://127.0.0.1:6379';
const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

describe('ingest through BullMQ when a worker is killed', () => {
  it('ends with every image present exactly once after SIGKILL and a restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fault-'));
    dirs.push(dir);
    const count = 96;
    await generateCatalog({ count, seed: 12, outDir: join(dir, 'catalog'), size: 96 });
    const prefix = `test-${randomUUID()}`;
    const env = workerEnv(dir, prefix, REDIS_URL);
    const runner = new BullJobRunner(REDIS_URL, { prefix });
    const completed = new Set<string>();
    let batches = -1;
    runner.events.on('completed', (id: string, name: JobName, result: unknown) => {
      if (name === 'ingest-run') batches = (result as { batches: number }).batches;
      else completed.add(id);
    });
    const startWorker = () => spawn(process.execPath, [main], { env, stdio: 'ignore' });
    try {
      let worker = startWorker();
      await runner.enqueue(
        'ingest-run',
        {
          runId: 'fault',
          source: { kind: 'manifest', location: join(dir, 'catalog', 'manifest.jsonl') },
          batchSize: 4,
        },
        { jobId: 'fault' },
      );
      // Kill the first worker once a few batches are done and others are surely in flight.
      for (let i = 0; i < 600 && completed.size < 3; i++) await new Promise((r) => setTimeout(r, 100));
      expect(completed.size).toBeGreaterThanOrEqual(3);
      worker.kill('SIGKILL');
      await new Promise((r) => worker.once('exit', r));
      const beforeRestart = completed.size;
      expect(beforeRestart).toBeLessThan(count / 4);
      worker = startWorker();
      // The killed worker's active job is recovered by BullMQ's stalled-job check (JOB_LOCK_MS, 5 s here).
      for (let i = 0; i < 1200 && !(batches > 0 && completed.size >= batches); i++)
        await new Promise((r) => setTimeout(r, 100));
      worker.kill('SIGTERM');
      await new Promise((r) => worker.once('exit', r));
      expect(batches).toBe(count / 4);
      expect(completed.size).toBe(batches);

      const ids = await storedIds(dir);
      expect(ids.length).toBe(count);
      expect(new Set(ids).size).toBe(count);
    } finally {
      for (const key of ['ingest', 'audit', 'reindex'] as const) await runner.queue(key).obliterate({ force: true });
      await runner.close();
    }
  }, 180_000);
});
