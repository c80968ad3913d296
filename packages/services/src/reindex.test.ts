import { randomUUID } from 'node:crypto';
import { createHash } from 'node:crypto';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ENCODER_ROLES, parseConfig, scrollPoints, type StoredPoint } from '@lookalike/core';
import { embeddedBy, ReindexRequiredError } from '@lookalike/ingest';
import { modelsWith } from '@lookalike/ingest/testing';
import { BullJobRunner, type InProcessJobRunner } from '@lookalike/queue';
import { SearchService } from '@lookalike/search';
import { generateCatalog } from '@lookalike/synth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServices, type Services } from './index.js';

// The composition root on a store made with the committed tiny towers, then started with other towers (random
// weights, another id, a 64 px input, 48 dimensions): what start-up, search and ingest do, and the re-index through
// the in-process runner and through BullMQ on the real Redis.
const REDIS_URL = 'redis://127.0.0.1:6379';
const NEW = { ROBUST_MODEL: 'rand-robust-48', CLEAN_MODEL: 'rand-clean-48' };
let dir: string;
let models: string;
const open: Services[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'services-reindex-'));
  models = await modelsWith(join(dir, 'models'), [
    { id: 'rand-robust-48', role: 'robust', dim: 48, size: 64, seed: 1 },
    { id: 'rand-clean-48', role: 'clean', dim: 48, size: 64, seed: 2 },
  ]);
  // 6 items with twins: 12 images; and one more image, ingested later.
  await generateCatalog({ count: 6, seed: 21, outDir: join(dir, 'catalog'), size: 96, twins: true });
  await generateCatalog({ count: 1, seed: 22, outDir: join(dir, 'extra'), size: 96 });
});

afterAll(async () => {
  await Promise.all(open.map((s) => s.close()));
  await rm(dir, { recursive: true, force: true });
});

function env(data: string, extra: Record<string, string> = {}) {
  return parseConfig({
    DATA_DIR: data,
    INGEST_ROOTS: data,
    MODELS_DIR: models,
    LOG_LEVEL: 'silent',
    ...extra,
  });
}

async function start(...args: Parameters<typeof createServices>): Promise<Services> {
  const services = await createServices(...args);
  open.push(services);
  return services;
}

async function close(services: Services): Promise<void> {
  open.splice(open.indexOf(services), 1);
  await services.close();
}

/** A data folder with the catalog and the extra image, whose store holds the catalog, embedded by the committed towers. */
async function oldStore(name: string): Promise<string> {
  const data = join(dir, name);
  for (const folder of ['catalog', 'extra']) await cp(join(dir, folder), join(data, folder), { recursive: true });
  const services = await start(env(data));
  const runner = services.runner as InProcessJobRunner;
  await runner.enqueue('ingest-run', { runId: 'old', source: { kind: 'directory', root: join(data, 'catalog') } });
  await runner.idle();
  expect(await services.store.count()).toBe(12);
  await close(services);
  return data;
}

async function points(services: Services): Promise<StoredPoint[]> {
  const out: StoredPoint[] = [];
  for await (const p of scrollPoints(services.store, { withVectors: true })) out.push(p);
  return out;
}

const search = (s: Services) => new SearchService({ store: s.store, encoders: s.encoders, text: s.text });

describe('a store made with other towers', () => {
  it('refuses to start by default, naming the command; or serves reads and refuses vector search until re-indexed', async () => {
    const data = await oldStore('in-process');
    const error: unknown = await createServices(env(data, NEW)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ReindexRequiredError);
    const required = error as ReindexRequiredError;
    expect(required.code).toBe('CONFLICT');
    expect(required.command).toBe(`npx lookalike reindex --data ${data}`);
    expect(required.message).toMatch(
      /holds 12 images embedded by defect-cnn-fare4 and defect-cnn-clean \(128 dimensions.*\) in collection lookalike, but the configured towers are rand-robust-48 and rand-clean-48 \(48 dimensions/,
    );

    const lines: string[] = [];
    const services = await start(env(data, NEW), { stale: 'serve', log: (l) => lines.push(l) });
    expect(services.reindex.pending).toBe(true);
    const [first] = (await services.store.scroll({ limit: 1 })).points;
    const bytes = await readFile(first!.payload.source);
    // A query embedded by the new towers against the old vectors: refused, never compared.
    const refused: unknown = await search(services)
      .byImage(bytes)
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ReindexRequiredError);
    // What API clients get names no server path; operators get the exact command.
    expect((refused as Error).message).toContain('Run `npx lookalike reindex` to re-embed');
    expect(JSON.stringify((refused as ReindexRequiredError).toJSON())).not.toContain(dir);
    expect((await services.reindex.required()).command).toBe(`npx lookalike reindex --data ${data}`);
    // A search from a stored image compares old vectors with old vectors: answered.
    const similar = await search(services).byId(first!.id, { k: 3 });
    expect(similar.hits).toHaveLength(3);
    expect(await services.store.count()).toBe(12);
    expect((await services.store.get([first!.id]))[0]?.payload.source).toBe(first!.payload.source);

    // An image ingested meanwhile goes into the new collection: read by id at once, listed once the switch is made.
    const runner = services.runner as InProcessJobRunner;
    const extra = join(data, 'extra', 'images', 's22-000000.png');
    const extraId = createHash('sha256')
      .update(await readFile(extra))
      .digest('hex');
    await runner.enqueue('ingest-run', { runId: 'new', source: { kind: 'items', items: [{ location: extra }] } });
    await runner.idle();
    expect((await services.store.get([extraId]))[0]?.payload.embeddings.robust.modelId).toBe('rand-robust-48');
    expect(await services.store.count()).toBe(12);

    const { runId } = await services.reindex.start({ batchSize: 4 });
    expect(runId).toMatch(/^reindex\.lookalike--[0-9a-f]{12}\.1$/);
    await runner.idle();
    await services.reindex.refresh();
    expect(services.reindex.pending).toBe(false);
    expect(lines.some((l) => /re-index into collection lookalike--\w+ completed/.test(l))).toBe(true);

    const stored = await points(services);
    expect(stored).toHaveLength(13);
    for (const p of stored) {
      expect(embeddedBy(p.payload.embeddings, services.reindex.plan.towers)).toBe(true);
      for (const r of ENCODER_ROLES) expect(p.vectors![r]).toHaveLength(48);
    }
    const found = await search(services).byImage(bytes, { k: 1 });
    expect(found.hits[0]!.id).toBe(first!.id);
    expect(found.hits[0]!.score).toBeGreaterThan(0.999);
    await close(services);

    // The next start is the normal one: ready at once, nothing to re-index; the old towers still find theirs.
    const again = await start(env(data, NEW));
    expect(again.reindex.pending).toBe(false);
    await close(again);
    const before = await start(env(data));
    expect(before.reindex.plan.target.name).toBe('lookalike');
    expect(await before.store.count()).toBe(12);
    await close(before);
  });

  it('with Redis, re-indexes on the BullMQ workers it starts, and answers searches with its progress meanwhile', async () => {
    const data = await oldStore('bullmq');
    const prefix = `test-${randomUUID()}`;
    const services = await start(env(data, { ...NEW, REDIS_URL, QUEUE_PREFIX: prefix }), {
      stale: 'reindex',
      log: () => undefined,
    });
    try {
      const [first] = (await services.store.scroll({ limit: 1 })).points;
      const refused: unknown = await search(services)
        .byImage(await readFile(first!.payload.source))
        .catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(ReindexRequiredError);
      // Paused while the run goes, or (on a fast machine) told to run the command once more, never answered.
      expect((refused as Error).message).toMatch(/Search is paused while|Run `npx lookalike reindex/);
      for (let i = 0; i < 300 && services.reindex.pending; i++) {
        await new Promise((r) => setTimeout(r, 200));
        await services.reindex.refresh();
      }
      expect(services.reindex.pending).toBe(false);
      const stored = await points(services);
      expect(stored).toHaveLength(12);
      expect(stored.every((p) => embeddedBy(p.payload.embeddings, services.reindex.plan.towers))).toBe(true);
      const record = await services.reindex.generations.read(services.reindex.plan.target.name);
      expect(record).toMatchObject({ state: 'ready', reindex: { run: 1, totals: { done: 12, failed: 0 } } });
    } finally {
      await close(services);
      const runner = new BullJobRunner(REDIS_URL, { prefix, listen: false });
      for (const key of ['ingest', 'audit', 'reindex'] as const) await runner.queue(key).obliterate({ force: true });
      await runner.close();
    }
  });
});
