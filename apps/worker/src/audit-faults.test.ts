import { randomUUID } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BullJobRunner } from '@lookalike/queue';
import { FileAuditStore } from '@lookalike/audit';
import { generateCatalog } from '@lookalike/synth';
import { afterAll, describe, expect, it } from 'vitest';
import { workerEnv } from './testing.js';

// Real processes, real Redis, real models and store: a worker is SIGKILLed mid-audit and another takes over.
const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const REDIS_URL = 'redis://127.0.0.1:6379';
const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

describe('an audit through BullMQ when a worker is killed', () => {
  it('finishes an audit whose worker is killed mid-audit, and never stores half a report', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fault-audit-'));
    dirs.push(dir);
    await generateCatalog({ count: 40, seed: 13, outDir: join(dir, 'catalog'), size: 96 });
    const prefix = `test-${randomUUID()}`;
    const env = workerEnv(dir, prefix, REDIS_URL);
    const runner = new BullJobRunner(REDIS_URL, { prefix });
    const completed = new Set<string>();
    runner.events.on('completed', (id: string) => completed.add(id));
    const startWorker = () => spawn(process.execPath, [main], { env, stdio: 'ignore' });
    const until = async (ok: () => boolean, seconds: number) => {
      for (let i = 0; i < seconds * 10 && !ok(); i++) await new Promise((r) => setTimeout(r, 100));
    };
    const audits = new FileAuditStore(join(dir, 'audits'));
    try {
      let worker = startWorker();
      await runner.enqueue('ingest-run', {
        runId: 'catalog',
        source: { kind: 'manifest', location: join(dir, 'catalog', 'manifest.jsonl') },
        batchSize: 20,
      });
      await until(() => completed.has('catalog.0') && completed.has('catalog.1'), 120);
      const batches = 6;
      await runner.enqueue('audit-run', {
        auditId: 'killed',
        options: {
          queries: 12,
          batchSize: 2,
          epsilons: [0, 4 / 255],
          attack: 'apgd',
          steps: 150,
          targetedQueries: 0,
          examples: 1,
          // A few triplets, so the perceptual part is spread over the batches that die and retry too.
          perceptual: { triplets: 6 },
          // And a few quality-gate photos, spread over the batches the same way.
          quality: { images: 6 },
        },
      });
      await until(() => [...completed].filter((id) => id.startsWith('killed.b')).length >= 2, 180);
      worker.kill('SIGKILL');
      await new Promise((r) => worker.once('exit', r));
      const doneBeforeKill = [...completed].filter((id) => id.startsWith('killed.b')).length;
      expect(doneBeforeKill).toBeGreaterThanOrEqual(2);
      expect(doneBeforeKill).toBeLessThan(batches);
      expect(await audits.get('killed')).toBeUndefined();
      worker = startWorker();
      await until(() => completed.has('killed.final'), 240);
      worker.kill('SIGTERM');
      await new Promise((r) => worker.once('exit', r));
      expect(completed.has('killed.final')).toBe(true);
      const result = await audits.get('killed');
      expect(result?.queries).toBe(12);
      expect(result?.perQuery).toHaveLength(12 * 2 * 2);
      // Every triplet once per tower and budget, none lost or doubled by the kill.
      expect(result?.perceptual?.perTriplet).toHaveLength(6 * 2 * 2);
      // Every quality photo once per tower (one budget), none lost or doubled by the kill.
      expect(result?.quality?.perImage).toHaveLength(6 * 2);
      expect(new Set(result?.quality?.perImage.map((o) => `${o.encoder}:${o.index}`)).size).toBe(6 * 2);
      expect(await audits.report('killed')).toContain('Robustness audit');
      // Nothing half-written is left beside it.
      expect((await readdir(join(dir, 'audits'))).sort()).toEqual(['killed']);
    } finally {
      for (const key of ['ingest', 'audit', 'reindex'] as const) await runner.queue(key).obliterate({ force: true });
      await runner.close();
    }
  }, 420_000);
});
