import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cosine, type CollectionSpec, type EncoderRole, type ImageEncoder } from '@lookalike/core';
import { ModelRegistry, OnnxImageEncoder } from '@lookalike/encoder';
import { InProcessJobRunner, type IngestSource } from '@lookalike/queue';
import { EmbeddedVectorStore } from '@lookalike/store-embedded';
import { generateCatalog } from '@lookalike/synth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MainThreadPreparer, fromBytes, preprocessHash, type ImagePreparer } from '@lookalike/imaging';
import { createIngestHandlers, pointOf, type BatchResult, type IngestDeps } from './processor.js';

// Real parts end to end: the committed tiny towers, the embedded LanceDB store, the in-process job runner.
const MODELS = fileURLToPath(new URL('../../../models/', import.meta.url));
let dir: string;
let store: EmbeddedVectorStore;
let encoders: Record<EncoderRole, ImageEncoder>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ingest-e2e-'));
  const registry = await ModelRegistry.open(MODELS);
  encoders = {
    robust: await OnnxImageEncoder.load(registry, 'defect-cnn-fare4'),
    clean: await OnnxImageEncoder.load(registry, 'defect-cnn-clean'),
  };
  await generateCatalog({ count: 10, seed: 4, outDir: join(dir, 'catalog'), twins: true, size: 128 });
  // Large enough (≥ 2 × the towers' side) for the fast path to resize in libvips.
  await generateCatalog({ count: 2, seed: 9, outDir: join(dir, 'large'), size: 400, format: 'jpeg' });
  // Broken files beside the good ones: each must be reported, none may fail the batch.
  const png = await readFile(join(dir, 'catalog/images/s4-000000.png'));
  await writeFile(join(dir, 'catalog/images/empty.png'), '');
  await writeFile(join(dir, 'catalog/images/notes.png'), 'this is text, not an image');
  await writeFile(join(dir, 'catalog/images/truncated.png'), png.subarray(0, png.length / 3));
  await writeFile(join(dir, 'catalog/images/copy-of-0.png'), png);
  store = await EmbeddedVectorStore.open(join(dir, 'store'));
  const spec: CollectionSpec = {
    name: 'lookalike',
    dims: { robust: encoders.robust.info.dim, clean: encoders.clean.info.dim },
    indexedFields: [{ path: 'labels.part', type: 'keyword' }],
  };
  await store.ensureCollection(spec);
});
afterAll(async () => {
  await Promise.all(Object.values(encoders ?? {}).map((e) => e.close()));
  await store?.close();
  await rm(dir, { recursive: true, force: true });
});

/** Counts the images a preparer is asked to decode. */
class CountingPreparer implements ImagePreparer {
  images = 0;
  private readonly inner = new MainThreadPreparer();
  prepare(...args: Parameters<ImagePreparer['prepare']>) {
    this.images += args[0].length;
    return this.inner.prepare(...args);
  }
  close() {
    return this.inner.close();
  }
}

async function ingest(runId: string, source: IngestSource, options: Partial<IngestDeps> = {}, batchSize = 6) {
  const handlers = createIngestHandlers({
    store,
    encoders,
    roots: [dir],
    fetch: { maxBytes: 1 << 20, timeoutMs: 1000 },
    chunkSize: 4,
    ...options,
  });
  const runner = new InProcessJobRunner(handlers, { ingest: 2 });
  const results: BatchResult[] = [];
  const failures: string[] = [];
  runner.events.on('completed', (_id, name, result) => name === 'ingest-batch' && results.push(result as BatchResult));
  runner.events.on('failed', (_id, name, reason) => failures.push(`${name}: ${reason}`));
  await runner.enqueue('ingest-run', { runId, source, batchSize });
  await runner.idle();
  await runner.close();
  await handlers.close();
  expect(failures).toEqual([]);
  return {
    done: results.reduce((n, r) => n + r.done, 0),
    skipped: results.reduce((n, r) => n + r.skipped, 0),
    failed: results.flatMap((r) => r.failed),
    batches: results.length,
    ids: results.flatMap((r) => r.ids),
  };
}

const ingestDirectory = (runId: string, options: Partial<IngestDeps> = {}) =>
  ingest(runId, { kind: 'directory', root: join(dir, 'catalog') }, options);

describe(createIngestHandlers.name, () => {
  it('ingests every valid image once, reports each bad file with its reason, and adds nothing the second time', async () => {
    const first = await ingestDirectory('run-1');
    // 20 catalog images + 4 extra files: 24 items in 4 batches of 6.
    expect(first.batches).toBe(4);
    const failures = Object.fromEntries(first.failed.map((f) => [f.location.split('/').pop(), f.code]));
    expect(Object.keys(failures).sort()).toEqual(['empty.png', 'notes.png', 'truncated.png']);
    expect(failures['empty.png']).toBe('IMAGE_EMPTY');
    expect(failures['notes.png']).toBe('IMAGE_NOT_AN_IMAGE');
    // libvips has reported this cut-off PNG both as a premature end and as a read error (seen across runs of this
    // test); either is a typed rejection of that one file.
    expect(['IMAGE_TRUNCATED', 'IMAGE_DECODE_FAILED']).toContain(failures['truncated.png']);
    // The byte-identical copy maps to the same id: 20 distinct images.
    expect(await store.count()).toBe(20);
    expect(first.done + first.skipped).toBe(21);

    // Stored images are skipped from their sha256 alone: only the three broken files are decoded again.
    const preparer = new CountingPreparer();
    const second = await ingestDirectory('run-2', { preparer });
    expect(second.done).toBe(0);
    expect(second.skipped).toBe(21);
    expect(preparer.images).toBe(3);
    expect(second.failed).toHaveLength(3);
    expect(await store.count()).toBe(20);
  });

  it('stores both vectors with provenance, and search finds an image from its own pixels', async () => {
    const page = await store.scroll({ limit: 100, withVectors: true });
    expect(page.points).toHaveLength(20);
    const p = page.points[0]!;
    expect(p.payload.embeddings.robust.modelId).toBe('defect-cnn-fare4');
    expect(p.payload.embeddings.clean.preprocessHash).toBe(preprocessHash(encoders.clean.info.preprocess, 'fast'));
    expect(p.payload).toMatchObject({ format: 'png', width: 128, height: 128 });
    for (const using of ['robust', 'clean'] as const) {
      const hits = await store.search({ vector: p.vectors![using], using, k: 1, exact: true });
      expect(hits[0]!.id).toBe(p.id);
    }
  });

  it('decodes a file once per batch however often it is listed, and fails every copy of a broken file', async () => {
    const image = (n: number) => join(dir, `catalog/images/s4-00000${n}.png`);
    const twice = join(dir, 'catalog/images/copy-of-0.png');
    const broken = join(dir, 'catalog/images/truncated.png');
    // 9 items in chunks of 4: the copies fall in other chunks than their originals.
    const items = [image(0), image(1), broken, image(2), twice, image(1), image(3), broken, image(0)].map(
      (location) => ({ location }),
    );
    await store.delete([...new Set((await store.scroll({ limit: 100 })).points.map((p) => p.id))]);
    const preparer = new CountingPreparer();
    const run = await ingest('run-dups', { kind: 'items', items }, { preparer }, 9);
    expect(preparer.images).toBe(5);
    expect(run.done).toBe(4);
    expect(run.skipped).toBe(3);
    expect(run.failed.map((f) => f.location)).toEqual([broken, broken]);
    expect(new Set(run.ids).size).toBe(4);
    expect(await store.count()).toBe(4);
  });

  it('stores the same vectors whether images are preprocessed on the pool or on the main thread', async () => {
    const items = [0, 1, 2].map((n) => ({ location: join(dir, `catalog/images/s4-00000${n}.png`) }));
    await store.delete([...new Set((await store.scroll({ limit: 100 })).points.map((p) => p.id))]);
    const { ids } = await ingest('run-pool', { kind: 'items', items });
    const fromPool = await store.get(ids, { withVectors: true });
    await store.delete(ids);
    await ingest('run-main', { kind: 'items', items }, { preparer: new MainThreadPreparer() });
    const fromMain = await store.get(ids, { withVectors: true });
    expect(fromPool).toHaveLength(3);
    expect(fromMain).toHaveLength(3);
    for (const p of fromPool) {
      const q = fromMain.find((m) => m.id === p.id)!;
      for (const r of ['robust', 'clean'] as const)
        expect(Array.from(q.vectors![r])).toEqual(Array.from(p.vectors![r]));
      expect(q.payload).toMatchObject({ format: 'png', width: p.payload.width, height: p.payload.height });
    }
  });

  it('embeds the fast path pixels by default, and re-embeds when PREPROCESS changes', async () => {
    const items = [0, 1].map((n) => ({ location: join(dir, `large/images/s9-00000${n}.jpg`) }));
    await store.delete([...new Set((await store.scroll({ limit: 100 })).points.map((p) => p.id))]);
    const embedded = async (location: string, mode: 'fast' | 'exact') => {
      const spec = encoders.robust.info.preprocess;
      const pixels = await fromBytes(await readFile(location), spec, undefined, mode);
      const vectors = await Promise.all(
        (['robust', 'clean'] as const).map((r) =>
          encoders[r].embed({ data: pixels, n: 1, height: spec.size, width: spec.size }),
        ),
      );
      return { robust: vectors[0]![0]!, clean: vectors[1]![0]! };
    };
    const check = async (ids: string[], mode: 'fast' | 'exact') => {
      const points = await store.get(ids, { withVectors: true });
      expect(points).toHaveLength(2);
      for (const p of points) {
        const want = await embedded(p.payload.source, mode);
        const other = await embedded(p.payload.source, mode === 'fast' ? 'exact' : 'fast');
        for (const r of ['robust', 'clean'] as const) {
          expect(p.payload.embeddings[r].preprocessHash).toBe(preprocessHash(encoders[r].info.preprocess, mode));
          // The same pixels give the same vector (up to batching); the other path's differ measurably.
          expect(cosine(p.vectors![r], want[r])).toBeGreaterThan(1 - 1e-6);
          expect(Array.from(want[r])).not.toEqual(Array.from(other[r]));
        }
        expect(p.payload).toMatchObject({ format: 'jpeg', width: 400, height: 400 });
      }
    };
    const fast = await ingest('run-fast', { kind: 'items', items });
    expect(fast.done).toBe(2);
    await check(fast.ids, 'fast');
    // Switching to the exact path makes the stored vectors stale: the next ingest embeds them again.
    const exact = await ingest('run-exact', { kind: 'items', items }, { preprocess: 'exact' });
    expect(exact.done).toBe(2);
    await check(exact.ids, 'exact');
    expect((await ingest('run-exact-again', { kind: 'items', items }, { preprocess: 'exact' })).skipped).toBe(2);
  });
});

describe(pointOf.name, () => {
  const provenance = {
    robust: { modelId: 'r', preprocessHash: 'p' },
    clean: { modelId: 'c', preprocessHash: 'p' },
  };
  const vectors = { robust: Float32Array.of(1, 0), clean: Float32Array.of(0, 1) };
  const image = { format: 'png' as const, width: 30, height: 20, pixels: [] };
  const now = () => new Date('2026-12-01T00:00:00Z');

  it('stores what the item says, what decoding found, and which towers made the vectors', () => {
    const item = { location: '/c/a.png', id: 'sku-1', caption: 'a gear', labels: { part: 'gear' }, metadata: { k: 1 } };
    expect(pointOf({ item, id: 'h', size: 99, image, ingestedAt: undefined }, vectors, provenance, now)).toEqual({
      id: 'h',
      vectors,
      payload: {
        id: 'h',
        source: '/c/a.png',
        format: 'png',
        width: 30,
        height: 20,
        bytes: 99,
        caption: 'a gear',
        labels: { part: 'gear' },
        metadata: { k: 1, externalId: 'sku-1' },
        ingestedAt: '2026-12-01T00:00:00.000Z',
        embeddings: provenance,
      },
    });
  });

  it('leaves out what the item does not say, and keeps the first ingest time of a re-embedded image', () => {
    const first = '2025-01-02T03:04:05.000Z';
    const { payload } = pointOf(
      { item: { location: '/c/b.png' }, id: 'h', size: 1, image, ingestedAt: first },
      vectors,
      provenance,
      now,
    );
    expect(Object.keys(payload).sort()).toEqual(
      ['bytes', 'embeddings', 'format', 'height', 'id', 'ingestedAt', 'source', 'width'].sort(),
    );
    expect(payload.ingestedAt).toBe(first);
  });
});
