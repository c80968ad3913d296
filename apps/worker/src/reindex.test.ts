import { randomUUID } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig, scrollPoints } from '@lookalike/core';
import { modelsWith } from '@lookalike/ingest/testing';
import { BullJobRunner, type InProcessJobRunner, type JobName } from '@lookalike/queue';
import { createServices } from '@lookalike/services';
import { EmbeddedVectorStore } from '@lookalike/store-embedded';
import { generateCatalog } from '@lookalike/synth';
import { afterAll, describe, expect, it } from 'vitest';
import { workerEnv } from './testing.js';

// Real processes, real Redis, real models and store: a worker started with other towers than the store's re-indexes
// it by itself; SIGKILLed mid-way, the next worker takes the run over and finishes it.
const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const REDIS_URL = 'redis://127.0.0.1:6379';
const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

describe('a worker on a store made with other towers', () => {
  it('re-indexes it on the BullMQ workers, and a worker killed mid-way leaves nothing half done', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'worker-reindex-'));
    dirs.push(dir);
    const models = await modelsWith(join(dir, 'models'), [
      { id: 'rand-robust-48', role: 'robust', dim: 48, size: 64, seed: 1 },
      { id: 'rand-clean-48', role: 'clean', dim: 48, size: 64, seed: 2 },
    ]);
    await generateCatalog({ count: 24, seed: 13, outDir: join(dir, 'catalog'), size: 96 });
    const old = await createServices(
      parseConfig({ DATA_DIR: dir, INGEST_ROOTS: dir, MODELS_DIR: models, LOG_LEVEL: 'silent' }),
    );
    await (old.runner as InProcessJobRunner).enqueue('ingest-run', {
      runId: 'old',
      source: { kind: 'directory', root: join(dir, 'catalog') },
    });
    await (old.runner as InProcessJobRunner).idle();
    await old.close();

    const prefix = `test-${randomUUID()}`;
    const env = {
      ...workerEnv(dir, prefix, REDIS_URL),
      MODELS_DIR: models,
      ROBUST_MODEL: 'rand-robust-48',
      CLEAN_MODEL: 'rand-clean-48',
      INGEST_BATCH_SIZE: '3',
      INGEST_CONCURRENCY: '1',
    };
    const runner = new BullJobRunner(REDIS_URL, { prefix });
    const batches = new Set<string>();
    let finished: { ready: boolean; done: number; skipped: number } | undefined;
    runner.events.on('completed', (id: string, name: JobName, result: unknown) => {
      if (name === 'reindex-batch') batches.add(id);
      else if (name === 'reindex-run' && (result as { finished?: boolean }).finished)
        finished = result as typeof finished;
    });
    let out = '';
    const startWorker = () => {
      const child = spawn(process.execPath, [main], { env });
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      return child;
    };
    try {
      let worker = startWorker();
      for (let i = 0; i < 600 && batches.size < 2; i++) await new Promise((r) => setTimeout(r, 100));
      expect(out).toMatch(
        /a re-index has started \(reindex\.lookalike--\w+\.1\) into collection lookalike--\w+ on the workers/,
      );
      expect(batches.size).toBeGreaterThanOrEqual(2);
      worker.kill('SIGKILL');
      await new Promise((r) => worker.once('exit', r));
      expect(batches.size).toBeLessThan(8);
      worker = startWorker();
      // The next worker finds the run going and follows it; BullMQ's stalled-job check hands it the killed one's job.
      for (let i = 0; i < 1200 && !finished; i++) await new Promise((r) => setTimeout(r, 100));
      worker.kill('SIGTERM');
      await new Promise((r) => worker.once('exit', r));
      expect(out).toMatch(/a re-index is already running \(reindex\.lookalike--\w+\.1\)/);
      expect(finished).toMatchObject({ ready: true });
      expect(batches.size).toBe(8);

      const to = /into collection (lookalike--\w+)/.exec(out)![1]!;
      const record = JSON.parse(await readFile(join(dir, 'store', `${to}.meta.json`), 'utf8')) as {
        lookalike: { state: string };
      };
      expect(record.lookalike.state).toBe('ready');
      const store = await EmbeddedVectorStore.open(join(dir, 'store'), to);
      try {
        await store.ensureCollection({ name: to, dims: { robust: 48, clean: 48 }, indexedFields: [] });
        const ids: string[] = [];
        for await (const p of scrollPoints(store)) {
          expect(p.payload.embeddings.robust.modelId).toBe('rand-robust-48');
          ids.push(p.id);
        }
        expect(new Set(ids).size).toBe(24);
        expect(ids).toHaveLength(24);
      } finally {
        await store.close();
      }
    } finally {
      for (const key of ['ingest', 'audit', 'reindex'] as const) await runner.queue(key).obliterate({ force: true });
      await runner.close();
    }
  }, 180_000);
});
