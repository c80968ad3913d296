import { cp, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  cosine,
  ENCODER_ROLES,
  scrollPoints,
  type EncoderRole,
  type ImageEncoder,
  type PixelBatch,
  type StoredPoint,
  type TextEncoder,
  type VectorStore,
} from '@lookalike/core';
import { ModelRegistry, OnnxImageEncoder, OnnxTextEncoder } from '@lookalike/encoder';
import { CaptionScreen } from '@lookalike/screening';
import { MainThreadPreparer } from '@lookalike/imaging';
import { InProcessJobRunner } from '@lookalike/queue';
import { EmbeddedCollections } from '@lookalike/store-embedded';
import { generateCatalog } from '@lookalike/synth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Generations, type GenerationPlan } from './generations.js';
import { createIngestHandlers } from './processor.js';
import { createReindexHandlers, type ReindexBatchResult, type ReindexRunResult } from './reindex.js';
import { modelsWith } from './testing.js';
import { TowerInputs } from './tower-inputs.js';
import { embeddedBy, towersOf, type Towers } from './towers.js';

// Real parts end to end: the committed tiny towers make the "old" store; random-weight towers written as ONNX models
// (another id, a 64 px input and 48 dimensions; or the same size and dimension) are the model change. The embedded
// store in a temp folder, the in-process job runner.
const INDEXED = [{ path: 'labels.part', type: 'keyword' as const }];
let dir: string;
let old: Record<EncoderRole, ImageEncoder>;
let next: Record<EncoderRole, CountingEncoder>;
let sameDim: Record<EncoderRole, CountingEncoder>;
let registry: ModelRegistry;
const preparer = new MainThreadPreparer();

/** Counts the images each tower embeds. */
class CountingEncoder implements ImageEncoder {
  embedded = 0;
  constructor(private readonly inner: ImageEncoder) {}
  get info() {
    return this.inner.info;
  }
  embed(batch: PixelBatch): Promise<Float32Array[]> {
    this.embedded += batch.n;
    return this.inner.embed(batch);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

const counts = (e: Record<EncoderRole, CountingEncoder>) => ENCODER_ROLES.map((r) => e[r].embedded);
const reset = (e: Record<EncoderRole, CountingEncoder>) => ENCODER_ROLES.forEach((r) => (e[r].embedded = 0));

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'reindex-'));
  registry = await ModelRegistry.open(
    await modelsWith(join(dir, 'models'), [
      { id: 'rand-robust-48', role: 'robust', dim: 48, size: 64, seed: 1 },
      { id: 'rand-clean-48', role: 'clean', dim: 48, size: 64, seed: 2 },
      { id: 'rand-robust-128', role: 'robust', dim: 128, size: 96, seed: 3 },
      { id: 'rand-clean-128', role: 'clean', dim: 128, size: 96, seed: 4 },
    ]),
  );
  const load = async (robust: string, clean: string) => ({
    robust: await OnnxImageEncoder.load(registry, robust),
    clean: await OnnxImageEncoder.load(registry, clean),
  });
  old = await load('defect-cnn-fare4', 'defect-cnn-clean');
  const n = await load('rand-robust-48', 'rand-clean-48');
  next = { robust: new CountingEncoder(n.robust), clean: new CountingEncoder(n.clean) };
  const s = await load('rand-robust-128', 'rand-clean-128');
  sameDim = { robust: new CountingEncoder(s.robust), clean: new CountingEncoder(s.clean) };
  // 10 items with twins: 20 images.
  await generateCatalog({ count: 10, seed: 3, outDir: join(dir, 'catalog'), size: 96, twins: true });
});

afterAll(async () => {
  await Promise.all([old, next, sameDim].flatMap((e) => Object.values(e ?? {}).map((x) => x.close())));
  await rm(dir, { recursive: true, force: true });
});

const fetch = { maxBytes: 1 << 20, timeoutMs: 1000 };

/** A store folder whose collection `lookalike` holds the catalog under `catalog`, embedded by `encoders`. */
async function storeWith(name: string, catalog = join(dir, 'catalog'), encoders = old): Promise<Generations> {
  const generations = new Generations(new EmbeddedCollections(join(dir, name)), 'lookalike', INDEXED);
  await ingestInto(generations, encoders, catalog);
  return generations;
}

/** Ingests the images under `catalog` into the collection of `encoders`' towers (created if missing). */
async function ingestInto(
  generations: Generations,
  encoders: Record<EncoderRole, ImageEncoder>,
  catalog: string,
  store?: VectorStore,
): Promise<void> {
  const target = store ?? (await generations.target(await generations.resolve(towersOf(encoders, 'fast'))));
  const handlers = createIngestHandlers({ store: target, encoders, roots: [dir], fetch, preparer });
  const runner = new InProcessJobRunner(handlers, { ingest: 2 });
  await runner.enqueue('ingest-run', { runId: 'seed', source: { kind: 'directory', root: catalog }, batchSize: 8 });
  await runner.idle();
  await runner.close();
}

interface Run {
  plan: GenerationPlan;
  runId: string;
  batches: ReindexBatchResult[];
  result?: ReindexRunResult & { finished: true };
  failures: string[];
}

/**
 * Re-indexes `generations` to `encoders`' towers in a fresh in-process runner (a process of its own), in pages of
 * `pageBatches` batches of 3. `stopAfter` closes the runner once that many batches completed, as a killed process
 * leaves the run (its queue is gone with it).
 */
async function reindex(
  generations: Generations,
  encoders: Record<EncoderRole, ImageEncoder>,
  options: { stopAfter?: number; acceptFailures?: boolean; pageBatches?: number; text?: TextEncoder } = {},
): Promise<Run> {
  const towers = towersOf(encoders, 'fast');
  const plan = await generations.resolve(towers);
  await generations.target(plan);
  const handlers = createReindexHandlers({
    generations,
    encoders,
    roots: [dir],
    fetch,
    preparer,
    ...(options.text ? { text: options.text } : {}),
  });
  const runner = new InProcessJobRunner(handlers, { reindex: 2 });
  const run: Run = { plan, runId: '', batches: [], failures: [] };
  let stopped: Promise<void> | undefined;
  runner.events.on('completed', (_id, name, result) => {
    if (name === 'reindex-batch') {
      run.batches.push(result as ReindexBatchResult);
      if (options.stopAfter !== undefined && run.batches.length >= options.stopAfter) stopped ??= runner.close();
    } else if (name === 'reindex-run' && (result as ReindexRunResult).finished)
      run.result = result as ReindexRunResult & { finished: true };
  });
  runner.events.on('failed', (id, _name, reason) => run.failures.push(`${id}: ${reason}`));
  const { runId } = await generations.startReindex(runner, plan, {
    batchSize: 3,
    pageBatches: options.pageBatches ?? 2,
    ...(options.acceptFailures ? { acceptFailures: true } : {}),
  });
  run.runId = runId;
  if (options.stopAfter === undefined) await runner.idle();
  else
    while (!stopped) {
      await new Promise((r) => setTimeout(r, 20));
      if (run.result) break;
    }
  await (stopped ?? runner.close());
  return run;
}

async function all(store: VectorStore, withVectors = false): Promise<StoredPoint[]> {
  const points: StoredPoint[] = [];
  for await (const p of scrollPoints(store, { pageSize: 7, withVectors })) points.push(p);
  return points;
}

/** What `encoders` embed an original as, computed here without the pipeline. */
async function embeddingOf(encoders: Record<EncoderRole, ImageEncoder>, location: string) {
  const inputs = new TowerInputs(encoders);
  const [prepared] = await preparer.prepare([new Uint8Array(await readFile(location))], inputs.specs, {}, 'fast');
  const { vectors } = await inputs.run([prepared as never]);
  return vectors[0]!;
}

const towersOfNext = (): Towers => towersOf(next, 'fast');

describe(createReindexHandlers.name, () => {
  it('measures screened captions again against the new vectors, and keeps their verdicts for the next refit', async () => {
    const text = await OnnxTextEncoder.load(registry, 'defect-cnn-text');
    try {
      const fields = [...INDEXED, { path: 'screening.verdict', type: 'keyword' as const }];
      const generations = new Generations(new EmbeddedCollections(join(dir, 'store-screened')), 'lookalike', fields);
      const source = await generations.target(await generations.resolve(towersOf(old, 'fast')));
      const screen = new CaptionScreen(
        source,
        text,
        { read: () => Promise.resolve(undefined), write: () => Promise.resolve() },
        { tower: 'robust', threshold: 0.9, minCount: 100, textModel: text.info.id, imageModel: 'defect-cnn-fare4' },
      );
      const handlers = createIngestHandlers({
        store: source,
        encoders: old,
        roots: [dir],
        fetch,
        preparer,
        screening: { screen, text },
      });
      const runner = new InProcessJobRunner(handlers, { ingest: 2 });
      const manifest = join(dir, 'catalog', 'manifest.jsonl');
      await runner.enqueue('ingest-run', {
        runId: 's',
        source: { kind: 'manifest', location: manifest },
        batchSize: 8,
      });
      await runner.idle();
      await runner.close();
      const before = new Map((await all(source)).map((p) => [p.id, p.payload.screening!]));
      expect(before.size).toBe(10);

      const run = await reindex(generations, sameDim, { text });
      expect(run.failures).toEqual([]);
      const after = await all(await generations.existing(run.plan.target.name), true);
      expect(after).toHaveLength(10);
      for (const p of after) {
        const s = p.payload.screening!;
        const [caption] = await text.embed([p.payload.caption!]);
        for (const role of ENCODER_ROLES) expect(s.similarity[role]).toBeCloseTo(cosine(p.vectors![role], caption!), 5);
        expect(s.similarity.robust).not.toBeCloseTo(before.get(p.id)!.similarity.robust, 3);
        expect(s.verdict).toBe(before.get(p.id)!.verdict);
      }
    } finally {
      await text.close();
    }
  });

  it('re-embeds every point once, by id pages, into a new collection of the new dimension, and switches when complete', async () => {
    const generations = await storeWith('store-a');
    const source = await generations.existing('lookalike');
    const before = await all(source);
    expect(before).toHaveLength(20);
    reset(next);

    const run = await reindex(generations, next);
    expect(run.failures).toEqual([]);
    expect(run.plan.source).toMatchObject({ name: 'lookalike', points: 20, towers: towersOf(old, 'fast') });
    const to = run.plan.target.name;
    expect(to).toMatch(/^lookalike--[0-9a-f]{12}$/);
    // 20 points in pages of 2 batches of 3: 4 pages of 6, 6, 6 and 2 points; every image embedded exactly once.
    expect(run.batches).toHaveLength(7);
    expect(counts(next)).toEqual([20, 20]);
    expect(run.result).toMatchObject({ ready: true, done: 20, copied: 0, skipped: 0, failedTotal: 0, failed: [] });

    const target = await generations.existing(to);
    const after = await all(target, true);
    expect(after.map((p) => p.id)).toEqual(before.map((p) => p.id));
    for (const [i, p] of after.entries()) {
      const was = before[i]!.payload;
      expect(p.payload.embeddings).toEqual({
        robust: { modelId: 'rand-robust-48', preprocessHash: towersOfNext().robust.preprocessHash },
        clean: { modelId: 'rand-clean-48', preprocessHash: towersOfNext().clean.preprocessHash },
      });
      // Everything but the provenance is the source's.
      expect({ ...p.payload, embeddings: undefined }).toEqual({ ...was, embeddings: undefined });
      expect(p.vectors!.robust).toHaveLength(48);
    }
    // The vectors are the new towers' embeddings of the originals.
    for (const p of after.slice(0, 3)) {
      const expected = await embeddingOf(next, p.payload.source);
      for (const r of ENCODER_ROLES) expect(cosine(p.vectors![r], expected[r])).toBeGreaterThan(0.9999);
    }
    // The old collection is untouched, and each set of towers resolves to its own ready collection.
    expect((await all(source)).every((p) => embeddedBy(p.payload.embeddings, towersOf(old, 'fast')))).toBe(true);
    expect(await generations.resolve(towersOfNext())).toEqual({
      towers: towersOfNext(),
      target: { name: to, exists: true, ready: true },
    });
    expect((await generations.resolve(towersOf(old, 'fast'))).target).toEqual({
      name: 'lookalike',
      exists: true,
      ready: true,
    });
    expect(await generations.read(to)).toMatchObject({ state: 'ready', from: 'lookalike', reindex: { run: 1 } });

    // A later generation that lost its record is never taken for complete: it is re-indexed (nothing left to do).
    await rm(join(dir, 'store-a', `${to}.meta.json`));
    reset(next);
    const relearnt = await reindex(generations, next);
    expect(relearnt.plan.target).toEqual({ name: to, exists: true, ready: false });
    expect(relearnt.result).toMatchObject({ ready: true, done: 0, skipped: 20 });
    expect(counts(next)).toEqual([0, 0]);

    // Nothing is left to do: a pruned store keeps only the new collection.
    expect(await generations.prune(to)).toEqual(['lookalike']);
    expect(await generations.collections.names()).toEqual([to]);
    await generations.close();
  });

  it('resumes after a crash: the next run re-embeds only what the first left, so no image is embedded twice', async () => {
    const generations = await storeWith('store-b');
    reset(next);
    const first = await reindex(generations, next, { stopAfter: 2 });
    expect(first.result).toBeUndefined();
    const partly = counts(next)[0]!;
    expect(partly).toBeGreaterThanOrEqual(6);
    expect(partly).toBeLessThan(20);
    const to = first.plan.target.name;
    expect(await generations.read(to)).toMatchObject({ state: 'building', reindex: { run: 1 } });
    expect(await generations.collections.points(to)).toBe(partly);

    // A new process: the plan finds the half-filled collection, a new run starts from where it is.
    const second = await reindex(generations, next);
    expect(second.plan.target).toEqual({ name: to, exists: true, ready: false });
    expect(second.runId).toBe(`reindex.${to}.2`);
    expect(second.result).toMatchObject({ ready: true, done: 20 - partly, skipped: partly, failedTotal: 0 });
    expect(counts(next)).toEqual([20, 20]);
    expect(await generations.collections.points(to)).toBe(20);
    await generations.close();
  });

  it('follows a run that another live process runs in its own runner rather than starting one beside it', async () => {
    const generations = await storeWith('store-e');
    const plan = await generations.resolve(towersOfNext());
    await generations.target(plan);
    const runner = new InProcessJobRunner({}, {});
    // The parent process stands in for an API that runs the re-index in-process.
    await generations.update(plan.target.name, (r) => ({
      ...r,
      reindex: { run: 3, page: 1, startedAt: new Date().toISOString(), owner: { host: hostname(), pid: process.ppid } },
    }));
    expect(await generations.startReindex(runner, plan, { batchSize: 3, local: true })).toEqual({
      runId: `reindex.${plan.target.name}.3`,
      attached: true,
    });
    expect(await runner.counts()).toEqual({});
    // Once that process is gone, the next start begins a new run (in this process, recorded as its owner).
    await generations.update(plan.target.name, (r) => ({
      ...r,
      reindex: { ...r.reindex!, owner: { host: hostname(), pid: 2 ** 22 + 1 } },
    }));
    expect((await generations.startReindex(runner, plan, { batchSize: 3, local: true })).runId).toBe(
      `reindex.${plan.target.name}.4`,
    );
    expect((await generations.read(plan.target.name))?.reindex?.owner).toEqual({ host: hostname(), pid: process.pid });
    await runner.close();
    await generations.close();
  });

  it('records originals that are gone or changed with their reasons, keeps their points, and switches only when told to', async () => {
    const catalog = join(dir, 'catalog-c');
    await cp(join(dir, 'catalog'), catalog, { recursive: true });
    const generations = await storeWith('store-c', catalog);
    const stored = await all(await generations.existing('lookalike'));
    const gone = stored[0]!;
    const changed = stored[1]!;
    await unlink(gone.payload.source);
    await writeFile(changed.payload.source, await readFile(stored[2]!.payload.source));

    const first = await reindex(generations, next);
    expect(first.failures).toEqual([]);
    expect(first.result).toMatchObject({ ready: false, done: 18, failedTotal: 2 });
    const byId = Object.fromEntries(first.result!.failed.map((f) => [f.id, f]));
    expect(byId[gone.id]).toMatchObject({ code: 'SOURCE_MISSING', location: gone.payload.source });
    expect(byId[gone.id]!.reason).toMatch(/does not exist any more/);
    expect(byId[changed.id]).toMatchObject({ code: 'SOURCE_CHANGED', location: changed.payload.source });
    const to = first.plan.target.name;
    // Not served: the plan still re-indexes from the old collection, which keeps every point.
    expect((await generations.resolve(towersOfNext())).source?.name).toBe('lookalike');
    expect(await generations.collections.points('lookalike')).toBe(20);
    expect(await generations.collections.points(to)).toBe(18);

    // The operator accepts the loss: the rerun tries the two again, skips the rest, and switches without them.
    const second = await reindex(generations, next, { acceptFailures: true });
    expect(second.result).toMatchObject({ ready: true, done: 0, skipped: 18, failedTotal: 2 });
    expect((await generations.resolve(towersOfNext())).target.ready).toBe(true);
    expect(await generations.collections.points('lookalike')).toBe(20);
    await generations.close();
  });

  it('copies the vectors of points that already came from the new towers (a mixed store) instead of re-embedding them', async () => {
    // As stores got mixed before generations: all 20 with the old towers, then a part re-ingested in place with new
    // ones, and no record of what the collection holds.
    const generations = await storeWith('store-d');
    const legacy = await generations.existing('lookalike');
    const part = join(dir, 'part');
    await cp(join(dir, 'catalog', 'images'), part, { recursive: true, filter: (src) => !/-00000[5-9]/.test(src) });
    await ingestInto(generations, sameDim, part, legacy);
    const mixed = (await all(legacy)).filter((p) => embeddedBy(p.payload.embeddings, towersOf(sameDim, 'fast')));
    expect(mixed.length).toBe(10);
    await generations.release('lookalike');
    await rm(join(dir, 'store-d', 'lookalike.meta.json'));
    reset(sameDim);

    const run = await reindex(generations, sameDim);
    expect(run.plan.source).toMatchObject({ name: 'lookalike', towers: undefined, points: 20 });
    expect(run.result).toMatchObject({ ready: true, done: 10, copied: 10, failedTotal: 0 });
    expect(counts(sameDim)).toEqual([10, 10]);
    const target = await all(await generations.existing(run.plan.target.name), true);
    expect(target.every((p) => embeddedBy(p.payload.embeddings, towersOf(sameDim, 'fast')))).toBe(true);
    const copied = target.find((p) => p.id === mixed[0]!.id)!;
    const expected = await embeddingOf(sameDim, copied.payload.source);
    expect(cosine(copied.vectors!.robust, expected.robust)).toBeGreaterThan(0.9999);
    await generations.close();
  });
});
