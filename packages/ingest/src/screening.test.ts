import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  cosine,
  scrollPoints,
  type CollectionSpec,
  type EncoderRole,
  type ImageEncoder,
  type StoredPoint,
  type TextEncoder,
} from '@lookalike/core';
import { ModelRegistry, OnnxImageEncoder, OnnxTextEncoder } from '@lookalike/encoder';
import { MainThreadPreparer } from '@lookalike/imaging';
import { InProcessJobRunner, type IngestItem } from '@lookalike/queue';
import { CaptionScreen, screeningModelSchema, type ScreeningModel } from '@lookalike/screening';
import { EmbeddedVectorStore } from '@lookalike/store-embedded';
import { captionOf, renderImage, sampleSpec } from '@lookalike/synth';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createIngestHandlers, type BatchResult } from './processor.js';
import { COMMITTED_MODELS } from './testing.js';

// The committed towers (robust, clean and their text tower) and the embedded store. 36 items of seed 11 with their
// own captions, 4 of them captioned as an item of another part with another defect: swapped captions.
const MIN_COUNT = 20;
const SWAPPED = new Set([3, 11, 19, 27]);
const ITEMS = 36;
let dir: string;
let encoders: Record<EncoderRole, ImageEncoder>;
let text: TextEncoder;
let store: EmbeddedVectorStore;
let kept: unknown;
let screen: CaptionScreen;
let n = 0;

const spec: CollectionSpec = {
  name: 'lookalike',
  dims: { robust: 128, clean: 128 },
  indexedFields: [{ path: 'screening.verdict', type: 'keyword' }],
};

/** Item `i` of seed 11 on disk, with its caption (another item's for the swapped ones). */
async function items(range: readonly number[]): Promise<IngestItem[]> {
  return Promise.all(
    range.map(async (i) => {
      const s = sampleSpec(11, i);
      const file = join(dir, `item-${i}.png`);
      await writeFile(file, await renderImage(s, 128, 'png'));
      let caption = captionOf(s.labels);
      if (SWAPPED.has(i)) {
        // The first later item of another part and another defect.
        for (let j = i + 1; ; j++) {
          const other = sampleSpec(11, j).labels;
          if (other.part !== s.labels.part && other.defect !== s.labels.defect) {
            caption = captionOf(other);
            break;
          }
        }
      }
      return { location: file, caption };
    }),
  );
}

async function ingest(list: IngestItem[]): Promise<BatchResult[]> {
  const handlers = createIngestHandlers({
    store,
    encoders,
    roots: [dir],
    fetch: { maxBytes: 1 << 20, timeoutMs: 1000 },
    preparer: new MainThreadPreparer(),
    chunkSize: 8,
    screening: { screen, text },
  });
  const runner = new InProcessJobRunner(handlers, { ingest: 1 });
  const results: BatchResult[] = [];
  runner.events.on('completed', (_id, name, result) => name === 'ingest-batch' && results.push(result as BatchResult));
  await runner.enqueue('ingest-run', { runId: `screen-${n++}`, source: { kind: 'items', items: list }, batchSize: 8 });
  await runner.idle();
  await runner.close();
  await handlers.close();
  return results;
}

async function stored(): Promise<Map<number, StoredPoint>> {
  const byItem = new Map<number, StoredPoint>();
  for await (const p of scrollPoints(store, { withVectors: true }))
    byItem.set(Number(/item-(\d+)\.png$/.exec(p.payload.source)![1]), p);
  return byItem;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'screening-'));
  const registry = await ModelRegistry.open(COMMITTED_MODELS);
  encoders = {
    robust: await OnnxImageEncoder.load(registry, 'defect-cnn-fare4'),
    clean: await OnnxImageEncoder.load(registry, 'defect-cnn-clean'),
  };
  text = await OnnxTextEncoder.load(registry, 'defect-cnn-text');
});
beforeEach(async () => {
  await store?.close();
  const at = join(dir, `store-${n++}`);
  await mkdir(at);
  store = await EmbeddedVectorStore.open(at);
  await store.ensureCollection(spec);
  kept = undefined;
  screen = new CaptionScreen(
    store,
    text,
    {
      read: () => Promise.resolve(kept),
      write: (model: ScreeningModel) => {
        kept = model;
        return Promise.resolve();
      },
    },
    {
      tower: 'robust',
      threshold: 0.9,
      minCount: MIN_COUNT,
      textModel: text.info.id,
      imageModel: encoders.robust.info.id,
    },
    { cacheMs: 0 },
  );
});
afterAll(async () => {
  await Promise.all([...Object.values(encoders ?? {}), text].map((e) => e?.close()));
  await store?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('caption screening at ingest', () => {
  it('stores each caption’s similarity in both towers, pending until the collection is large enough', async () => {
    const results = await ingest(await items([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
    expect(results.reduce((s, r) => s + r.captions.pending, 0)).toBe(10);
    expect(kept).toBeUndefined();
    const points = await stored();
    const [caption] = await text.embed([points.get(2)!.payload.caption!]);
    const screening = points.get(2)!.payload.screening!;
    expect(screening).toMatchObject({ tower: 'robust', textModel: text.info.id, verdict: 'pending' });
    expect(screening.reason).toMatch(/20 captioned images/);
    // The similarities are the cosines of the stored vectors with the caption's text vector.
    for (const role of ['robust', 'clean'] as const)
      expect(screening.similarity[role]).toBeCloseTo(cosine(points.get(2)!.vectors![role], caption!), 5);
  });

  it('fits the mixture once enough captions are stored, rejudges the pending ones and flags the swapped captions', async () => {
    await ingest(await items(Array.from({ length: 12 }, (_, i) => i)));
    const results = await ingest(await items(Array.from({ length: ITEMS - 12 }, (_, i) => i + 12)));
    const model = screeningModelSchema.parse(kept);
    expect(model.count).toBeGreaterThanOrEqual(MIN_COUNT);
    expect(model).toMatchObject({ separates: true, lowFrom: 'unrelated', unrelatedPairs: expect.any(Number) });
    // The last refit happened at most 10 % of the collection ago; judge everything against the model now.
    await screen.refit();
    const points = await stored();
    const verdicts = new Map([...points].map(([i, p]) => [i, p.payload.screening!.verdict]));
    expect([...verdicts.values()].filter((v) => v === 'pending')).toEqual([]);
    for (const i of SWAPPED) {
      expect(verdicts.get(i)).toBe('suspicious');
      expect(points.get(i)!.payload.screening!.reason).toMatch(/below the trust boundary/);
    }
    const falseFlags = [...verdicts].filter(([i, v]) => v === 'suspicious' && !SWAPPED.has(i));
    expect(falseFlags.length).toBeLessThanOrEqual(1);
    // The run reported what it flagged when it stored it.
    const reported = results.flatMap((r) => r.suspicious);
    expect(reported.every((r) => r.reason.length > 0 && r.caption.length > 0)).toBe(true);
    // (the ones stored before the first fit were pending then): swapped captions, and only those.
    expect(reported.length).toBeGreaterThan(0);
    const swappedFiles = [...SWAPPED].map((i) => join(dir, `item-${i}.png`));
    for (const r of reported) expect(swappedFiles).toContain(r.location);
  });

  it('keeps a review: a rejected caption is withdrawn, stays withdrawn through a refit, and an accept restores it', async () => {
    await ingest(await items(Array.from({ length: 24 }, (_, i) => i)));
    await screen.refit();
    const swapped = (await stored()).get(3)!;
    const rejected = await screen.review(swapped.id, 'rejected');
    expect(rejected.payload.caption).toBeUndefined();
    expect(rejected.payload.screening).toMatchObject({ verdict: 'withdrawn', review: 'rejected' });
    const caption = rejected.payload.screening.withdrawnCaption!;
    expect(caption.length).toBeGreaterThan(0);
    // A refit leaves what a person decided alone.
    await screen.refit();
    expect((await store.get([swapped.id]))[0]!.payload.screening!.verdict).toBe('withdrawn');
    // Re-embedding (a change of towers) brings the same caption again: it stays withdrawn; another caption is judged.
    const [again] = await text.embed([caption]);
    const previous = { screening: rejected.payload.screening };
    const [same, other] = await screen.screen([
      { vectors: swapped.vectors!, caption, text: again!, previous },
      { vectors: swapped.vectors!, caption: 'a new caption', text: again!, previous },
    ]);
    expect(same).toMatchObject({ verdict: 'withdrawn', review: 'rejected', withdrawnCaption: caption });
    expect(other!.review).toBeUndefined();
    expect(other!.verdict).toBe('suspicious');
    const summary = await screen.summary();
    expect(summary.counts.withdrawn).toBe(1);
    expect(summary.counts.trusted + summary.counts.suspicious + summary.counts.withdrawn).toBe(24);
    const listed = await screen.list({ verdict: 'suspicious', limit: 10 });
    expect(listed.images.map((i) => i.id)).not.toContain(swapped.id);
    const sims = listed.images.map((i) => i.payload.screening.similarity.robust);
    expect(sims).toEqual([...sims].sort((a, b) => a - b));

    const accepted = await screen.review(swapped.id, 'accepted');
    expect(accepted.payload.caption).toBe(caption);
    expect(accepted.payload.screening).toMatchObject({ verdict: 'trusted', review: 'accepted' });
    expect(accepted.payload.screening.withdrawnCaption).toBeUndefined();
  });

  it('refuses to review an image without a screened caption, and an unknown id', async () => {
    const file = join(dir, 'plain.png');
    await writeFile(file, await renderImage(sampleSpec(11, 99), 128, 'png'));
    await ingest([{ location: file }]);
    const [plain] = (await store.scroll({ limit: 10 })).points;
    expect(plain!.payload.screening).toBeUndefined();
    await expect(screen.review(plain!.id, 'accepted')).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    await expect(screen.review('f'.repeat(64), 'accepted')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
