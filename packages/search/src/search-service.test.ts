import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ImageRejectedError,
  NotFoundError,
  ValidationError,
  type EncoderRole,
  type ImageEncoder,
  type TextEncoder,
} from '@lookalike/core';
import { ModelRegistry, OnnxImageEncoder, OnnxTextEncoder } from '@lookalike/encoder';
import { PreprocessPool, type ImagePreparer } from '@lookalike/imaging';
import { createIngestHandlers } from '@lookalike/ingest';
import { InProcessJobRunner, type JobPayload } from '@lookalike/queue';
import { EmbeddedVectorStore } from '@lookalike/store-embedded';
import { generateCatalog, type ManifestRecord } from '@lookalike/synth';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SearchService } from './search-service.js';

// Real parts end to end: the committed tiny towers, a 40-image synthetic catalog ingested into the embedded store.
const MODELS = fileURLToPath(new URL('../../../models/', import.meta.url));
let dir: string;
let store: EmbeddedVectorStore;
let encoders: Record<EncoderRole, ImageEncoder>;
let text: TextEncoder;
let records: ManifestRecord[];
let service: SearchService;

async function ingest(payload: JobPayload<'ingest-run'>): Promise<void> {
  const handlers = createIngestHandlers({
    store,
    encoders,
    roots: [dir],
    fetch: { maxBytes: 1 << 20, timeoutMs: 1000 },
  });
  const runner = new InProcessJobRunner(handlers, { ingest: 2 });
  await runner.enqueue('ingest-run', payload);
  await runner.idle();
  await runner.close();
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'search-'));
  const registry = await ModelRegistry.open(MODELS);
  encoders = {
    robust: await OnnxImageEncoder.load(registry, 'defect-cnn-fare4'),
    clean: await OnnxImageEncoder.load(registry, 'defect-cnn-clean'),
  };
  text = await OnnxTextEncoder.load(registry, 'defect-cnn-text');
  const catalog = join(dir, 'catalog');
  await generateCatalog({ count: 40, seed: 11, outDir: catalog, size: 96 });
  records = (await readFile(join(catalog, 'manifest.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as ManifestRecord);
  store = await EmbeddedVectorStore.open(join(dir, 'store'));
  await store.ensureCollection({
    name: 'lookalike',
    dims: { robust: encoders.robust.info.dim, clean: encoders.clean.info.dim },
    indexedFields: [
      { path: 'labels.part', type: 'keyword' },
      { path: 'labels.defect', type: 'keyword' },
    ],
  });
  await ingest({
    runId: 'seed',
    source: { kind: 'manifest', location: join(catalog, 'manifest.jsonl') },
    batchSize: 16,
  });
  service = new SearchService({ store, encoders, text, decode: { maxPixels: 1_000_000 } });
});

afterAll(async () => {
  await Promise.all([...Object.values(encoders ?? {}), text].map((e) => e?.close()));
  await store?.close();
  await rm(dir, { recursive: true, force: true });
});

const imageBytes = (r: ManifestRecord) => readFile(join(dir, 'catalog', r.file));

describe(SearchService.name, () => {
  it('finds an uploaded catalog image as its own best hit with either tower', async () => {
    const query = records[3]!;
    for (const encoder of ['robust', 'clean'] as const) {
      const result = await service.byImage(await imageBytes(query), { encoder, k: 5 });
      expect(result.encoder).toBe(encoder);
      expect(result.hits).toHaveLength(5);
      expect(result.hits[0]!.payload.caption).toBe(query.caption);
      expect(result.hits[0]!.score).toBeGreaterThan(0.999);
      const scores = result.hits.map((h) => h.score);
      expect(scores).toEqual([...scores].sort((a, b) => b - a));
      expect(result.timings.embedMs).toBeGreaterThan(0);
      expect(result.timings.searchMs).toBeGreaterThan(0);
    }
  });

  it('searches by id with the stored vector of the chosen tower and leaves the query image out', async () => {
    const { points } = await store.scroll({ limit: 1 });
    const id = points[0]!.id;
    for (const encoder of ['robust', 'clean'] as const) {
      const result = await service.byId(id, { encoder, k: 7 });
      expect(result.k).toBe(7);
      expect(result.hits).toHaveLength(7);
      expect(result.hits.map((h) => h.id)).not.toContain(id);
      expect(result.timings.embedMs).toBe(0);
    }
    const similar = await service.similar(id, { k: 3 });
    expect(similar.encoder).toBe('robust');
    expect(similar.hits).toHaveLength(3);
  });

  it('applies a filter to every kind of query', async () => {
    const part = records[0]!.labels.part;
    const filter = { must: [{ field: 'labels.part', match: part }] };
    const expected = records.filter((r) => r.labels.part === part).length;
    const byImage = await service.byImage(await imageBytes(records[1]!), { filter, k: 100 });
    const byText = await service.byText(`a ${part} with a crack`, { filter, k: 100, encoder: 'clean' });
    const { points } = await store.scroll({ limit: 1, filter });
    const byId = await service.byId(points[0]!.id, { filter, k: 100 });
    for (const result of [byImage, byText]) {
      expect(result.hits).toHaveLength(expected);
      expect(result.hits.every((h) => h.payload.labels?.part === part)).toBe(true);
    }
    expect(byId.hits).toHaveLength(expected - 1);
    expect(byId.hits.every((h) => h.payload.labels?.part === part)).toBe(true);
  });

  it('ranks images of the named part first for a text query', async () => {
    const part = records[0]!.labels.part;
    const withPart = records.filter((r) => r.labels.part === part).length;
    const result = await service.byText(`a photo of a ${part}`, { k: withPart });
    const share = result.hits.filter((h) => h.payload.labels?.part === part).length / withPart;
    // Chance would give withPart / 40; the trained text tower does far better on its own vocabulary.
    expect(share).toBeGreaterThan(0.5);
  });

  it('refuses bad options, unknown ids and bytes that are not an image with typed errors', async () => {
    await expect(service.byId('f'.repeat(64))).rejects.toBeInstanceOf(NotFoundError);
    await expect(service.byText('gear', { k: 0 })).rejects.toBeInstanceOf(ValidationError);
    await expect(service.byText('gear', { k: 101 })).rejects.toBeInstanceOf(ValidationError);
    await expect(service.byText('   ')).rejects.toBeInstanceOf(ValidationError);
    await expect(service.byText('x'.repeat(5000))).rejects.toBeInstanceOf(ValidationError);
    const notImage = service.byImage(Buffer.from('hello, this is text'));
    await expect(notImage).rejects.toBeInstanceOf(ImageRejectedError);
    await expect(notImage).rejects.toMatchObject({ code: 'IMAGE_NOT_AN_IMAGE' });
  });

  it('decodes uploads in a preprocessing pool with the same results, and refuses bad bytes there with the same codes', async () => {
    const pool = new PreprocessPool({ threads: 1 });
    const pooled = new SearchService({
      store,
      encoders,
      text,
      decode: { maxPixels: 1_000_000 },
      preparer: pool,
      poolMinPixels: 0,
    });
    try {
      // Concurrent uploads queue for the one thread and all come back right.
      const queries = records.slice(0, 8);
      const results = await Promise.all(queries.map(async (r) => pooled.byImage(await imageBytes(r), { k: 5 })));
      for (const [i, result] of results.entries()) {
        const direct = await service.byImage(await imageBytes(queries[i]!), { k: 5 });
        expect(result.hits.map((h) => h.id)).toEqual(direct.hits.map((h) => h.id));
        for (const [j, hit] of result.hits.entries()) expect(hit.score).toBeCloseTo(direct.hits[j]!.score, 6);
      }
      const notImage = pooled.byImage(Buffer.from('hello, this is text'));
      await expect(notImage).rejects.toBeInstanceOf(ImageRejectedError);
      await expect(notImage).rejects.toMatchObject({ code: 'IMAGE_NOT_AN_IMAGE' });
      // 2000 × 2000 declares 4 MP, over this service's 1 MP limit: refused from the header, in the thread.
      const big = await sharp({ create: { width: 2000, height: 2000, channels: 3, background: '#888' } })
        .png()
        .toBuffer();
      await expect(pooled.byImage(big)).rejects.toMatchObject({
        code: 'IMAGE_TOO_MANY_PIXELS',
        details: { width: 2000, height: 2000 },
      });
    } finally {
      await pool.close();
    }
  });

  it('sends only uploads that declare more than poolMinPixels to the preparer', async () => {
    const pool = new PreprocessPool({ threads: 1 });
    let pooledImages = 0;
    const preparer: ImagePreparer = {
      prepare: (images, specs, limits) => ((pooledImages += images.length), pool.prepare(images, specs, limits)),
      close: () => pool.close(),
    };
    const split = new SearchService({ store, encoders, text, preparer, poolMinPixels: 200 * 200 });
    try {
      const small = await imageBytes(records[2]!); // 96 × 96
      const large = await sharp(small).resize(400, 400).png().toBuffer();
      const a = await split.byImage(small, { k: 3 });
      expect(pooledImages).toBe(0);
      const b = await split.byImage(large, { k: 3 });
      expect(pooledImages).toBe(1);
      expect(a.hits[0]!.payload.caption).toBe(records[2]!.caption);
      expect(b.hits[0]!.payload.caption).toBe(records[2]!.caption);
      // Bytes without a readable header are decoded here, where they get their typed code.
      await expect(split.byImage(Buffer.from('not an image'))).rejects.toMatchObject({ code: 'IMAGE_NOT_AN_IMAGE' });
      expect(pooledImages).toBe(1);
    } finally {
      await preparer.close();
    }
  });

  it('embeds uploads on the fast path by default, the pixels ingest embedded, and exactly when asked to', async () => {
    // Large enough (≥ 2 × the towers' side) for the fast path to resize in libvips; ingested with the default, fast.
    const large = await sharp(await imageBytes(records[5]!))
      .resize(480, 480, { kernel: 'lanczos3' })
      .jpeg({ quality: 92 })
      .toBuffer();
    await writeFile(join(dir, 'large-5.jpg'), large);
    await ingest({
      runId: 'large',
      source: { kind: 'items', items: [{ location: join(dir, 'large-5.jpg') }] },
      batchSize: 1,
    });
    const exact = new SearchService({ store, encoders, text, preprocess: 'exact' });
    const fast = await service.byImage(Buffer.from(large), { encoder: 'clean', k: 1 });
    const slow = await exact.byImage(Buffer.from(large), { encoder: 'clean', k: 1 });
    expect(fast.hits[0]!.payload.source).toBe(join(dir, 'large-5.jpg'));
    expect(slow.hits[0]!.payload.source).toBe(join(dir, 'large-5.jpg'));
    expect(1 - fast.hits[0]!.score).toBeLessThan(1e-6);
    expect(1 - slow.hits[0]!.score).toBeGreaterThan(1e-5);
  });

  it('lists the label facets and sees new values only after invalidate()', async () => {
    const facets = await service.facets();
    expect(facets['labels.part']).toEqual([...new Set(records.map((r) => r.labels.part))].sort());
    expect(facets['labels.defect']).toEqual([...new Set(records.map((r) => r.labels.defect))].sort());
    expect(Object.keys(await service.facets(['labels.color']))).toEqual(['labels.color']);

    // A new image with a new part value: cached facets do not change until invalidated.
    await generateCatalog({ count: 1, seed: 12, outDir: join(dir, 'extra'), size: 96 });
    const extra = join(dir, 'extra', 'images', 's12-000000.png');
    await ingest({
      runId: 'extra',
      source: { kind: 'items', items: [{ location: extra, labels: { part: 'zz-new-part' } }] },
    });
    expect((await service.facets())['labels.part']).not.toContain('zz-new-part');
    service.invalidate();
    expect((await service.facets())['labels.part']).toContain('zz-new-part');
  });
});
