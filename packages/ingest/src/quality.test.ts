import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  scrollPoints,
  type CollectionSpec,
  type EncoderRole,
  type ImageEncoder,
  type StoredPoint,
} from '@lookalike/core';
import { ModelRegistry, OnnxImageEncoder, OnnxQualityModel } from '@lookalike/encoder';
import { MainThreadPreparer } from '@lookalike/imaging';
import { InProcessJobRunner, type IngestItem } from '@lookalike/queue';
import { EmbeddedVectorStore } from '@lookalike/store-embedded';
import { distortionRecipe, renderDistorted, renderImage, sampleSpec } from '@lookalike/synth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIngestHandlers, type BatchResult } from './processor.js';
import { getRunStatus, isRunStatus } from './run-status.js';
import { COMMITTED_MODELS } from './testing.js';

// The committed towers and the robust quality model, the embedded store, and photos of seed 12: even items as
// rendered, odd ones with one distortion at severity ≥ 0.6 (quality ≤ 0.4).
const ITEMS = 16;
let dir: string;
let encoders: Record<EncoderRole, ImageEncoder>;
let quality: OnnxQualityModel;
let n = 0;

const spec: CollectionSpec = {
  name: 'lookalike',
  dims: { robust: 128, clean: 128 },
  indexedFields: [{ path: 'quality.grade', type: 'keyword' }],
};

async function items(): Promise<IngestItem[]> {
  return Promise.all(
    Array.from({ length: ITEMS }, async (_, i) => {
      const s = sampleSpec(12, i);
      const file = join(dir, `item-${i}.png`);
      const bytes =
        i % 2 === 0
          ? await renderImage(s, 256, 'png')
          : await renderDistorted(s, 256, distortionRecipe(12, i, true), 12, i);
      await writeFile(file, bytes);
      return { location: file };
    }),
  );
}

async function ingest(store: EmbeddedVectorStore, list: IngestItem[], scorer: OnnxQualityModel | undefined) {
  const handlers = createIngestHandlers({
    store,
    encoders,
    roots: [dir],
    fetch: { maxBytes: 1 << 20, timeoutMs: 1000 },
    preparer: new MainThreadPreparer(),
    chunkSize: 4,
    ...(scorer ? { quality: scorer } : {}),
  });
  const runner = new InProcessJobRunner(handlers, { ingest: 1 });
  const results: BatchResult[] = [];
  runner.events.on('completed', (_id, name, result) => name === 'ingest-batch' && results.push(result as BatchResult));
  const runId = `quality-${n++}`;
  await runner.enqueue('ingest-run', { runId, source: { kind: 'items', items: list }, batchSize: 8 }, { jobId: runId });
  await runner.idle();
  const status = await getRunStatus(runner, runId);
  await runner.close();
  await handlers.close();
  return { results, status };
}

async function freshStore(): Promise<EmbeddedVectorStore> {
  const at = join(dir, `store-${n++}`);
  await mkdir(at);
  const store = await EmbeddedVectorStore.open(at);
  await store.ensureCollection(spec);
  return store;
}

async function stored(store: EmbeddedVectorStore): Promise<Map<number, StoredPoint>> {
  const byItem = new Map<number, StoredPoint>();
  for await (const p of scrollPoints(store)) byItem.set(Number(/item-(\d+)\.png$/.exec(p.payload.source)![1]), p);
  return byItem;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'quality-'));
  const registry = await ModelRegistry.open(COMMITTED_MODELS);
  encoders = {
    robust: await OnnxImageEncoder.load(registry, 'defect-cnn-fare4'),
    clean: await OnnxImageEncoder.load(registry, 'defect-cnn-clean'),
  };
  quality = await OnnxQualityModel.load(registry, 'robust', 'defect-cnn-fare4');
});
afterAll(async () => {
  await Promise.all([...Object.values(encoders ?? {}), quality].map((e) => e?.close()));
  await rm(dir, { recursive: true, force: true });
});

describe('quality scoring at ingest', () => {
  it('scores every image, grades it against the threshold, and the run counts the low ones', async () => {
    const store = await freshStore();
    try {
      const { results, status } = await ingest(store, await items(), quality);
      const points = await stored(store);
      expect(points.size).toBe(ITEMS);
      const { threshold, id } = quality.info;
      for (const p of points.values()) {
        const q = p.payload.quality!;
        expect(q).toMatchObject({ model: id, tower: 'robust', threshold });
        expect(q.grade).toBe(q.score < threshold ? 'low' : 'ok');
      }
      // The distorted photos score lower than the originals, and most of them fall under the gate.
      const scores = (odd: boolean) =>
        [...points].filter(([i]) => i % 2 === (odd ? 1 : 0)).map(([, p]) => p.payload.quality!.score);
      const mean = (xs: number[]) => xs.reduce((s, v) => s + v, 0) / xs.length;
      expect(mean(scores(true))).toBeLessThan(mean(scores(false)) - 0.3);
      const low = [...points.values()].filter((p) => p.payload.quality!.grade === 'low');
      expect(low.length).toBeGreaterThanOrEqual(ITEMS / 2 - 2);
      // What the batches and the run report.
      expect(results.reduce((s, r) => s + r.quality.scored, 0)).toBe(ITEMS);
      expect(results.reduce((s, r) => s + r.quality.low, 0)).toBe(low.length);
      if (!status || !isRunStatus(status)) throw new Error('no run status');
      expect(status.quality).toEqual({ scored: ITEMS, low: low.length });
      expect(status.lowQuality.map((x) => x.id).sort()).toEqual(low.map((p) => p.id).sort());
      // The filter on the grade.
      const ok = await store.search({
        vector:
          points.get(0)!.vectors?.robust ??
          (await store.get([points.get(0)!.id], { withVectors: true }))[0]!.vectors!.robust,
        using: 'robust',
        k: ITEMS,
        filter: { mustNot: [{ field: 'quality.grade', match: 'low' }] },
      });
      expect(ok.map((h) => h.id).sort()).toEqual(
        [...points.values()]
          .filter((p) => p.payload.quality!.grade === 'ok')
          .map((p) => p.id)
          .sort(),
      );
    } finally {
      await store.close();
    }
  });

  it('stores no score without a quality model, and the run says none were scored', async () => {
    const store = await freshStore();
    try {
      const { status } = await ingest(store, (await items()).slice(0, 4), undefined);
      for (const p of (await stored(store)).values()) expect(p.payload.quality).toBeUndefined();
      if (!status || !isRunStatus(status)) throw new Error('no run status');
      expect(status.quality).toEqual({ scored: 0, low: 0 });
    } finally {
      await store.close();
    }
  });
});
