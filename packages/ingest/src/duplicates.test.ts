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
import { ModelRegistry, OnnxImageEncoder } from '@lookalike/encoder';
import { MainThreadPreparer } from '@lookalike/imaging';
import { InProcessJobRunner, type IngestItem } from '@lookalike/queue';
import { EmbeddedVectorStore } from '@lookalike/store-embedded';
import { renderImage, sampleSpec } from '@lookalike/synth';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { groupDuplicates, type DuplicatePolicy } from './duplicates.js';
import { createIngestHandlers, type BatchResult } from './processor.js';
import { COMMITTED_MODELS } from './testing.js';

// The committed towers and the embedded store; the duplicates are exact: one item rendered as PNG and again as a
// high-quality JPEG (other bytes, other id, the same picture), so the test does not lean on a tower's quality.
const POLICY = { tower: 'robust' as const, threshold: 0.02 };
let dir: string;
let encoders: Record<EncoderRole, ImageEncoder>;
let store: EmbeddedVectorStore;
let n = 0;

const spec: CollectionSpec = {
  name: 'lookalike',
  dims: { robust: 128, clean: 128 },
  indexedFields: [
    { path: 'duplicates.group', type: 'keyword' },
    { path: 'duplicates.distance', type: 'float' },
  ],
};

/** Writes item `index` of seed 5 as PNG and as JPEG; returns their file names. */
async function item(index: number): Promise<{ png: string; jpeg: string }> {
  const s = sampleSpec(5, index);
  const png = join(dir, `item-${index}.png`);
  const jpeg = join(dir, `item-${index}.jpg`);
  await writeFile(png, await renderImage(s, 128, 'png'));
  await writeFile(jpeg, await renderImage(s, 128, 'jpeg', 97));
  return { png, jpeg };
}

async function ingest(files: string[], duplicates: DuplicatePolicy = POLICY): Promise<BatchResult[]> {
  const handlers = createIngestHandlers({
    store,
    encoders,
    roots: [dir],
    fetch: { maxBytes: 1 << 20, timeoutMs: 1000 },
    preparer: new MainThreadPreparer(),
    chunkSize: 4,
    duplicates,
  });
  const runner = new InProcessJobRunner(handlers, { ingest: 2 });
  const results: BatchResult[] = [];
  runner.events.on('completed', (_id, name, result) => name === 'ingest-batch' && results.push(result as BatchResult));
  const items: IngestItem[] = files.map((location) => ({ location }));
  await runner.enqueue('ingest-run', { runId: `dup-${n++}`, source: { kind: 'items', items }, batchSize: 8 });
  await runner.idle();
  await runner.close();
  await handlers.close();
  return results;
}

async function payloadOf(file: string): Promise<StoredPoint['payload']> {
  for await (const p of scrollPoints(store)) if (p.payload.source === file) return p.payload;
  throw new Error(`${file} is not stored`);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'duplicates-'));
  const registry = await ModelRegistry.open(COMMITTED_MODELS);
  encoders = {
    robust: await OnnxImageEncoder.load(registry, 'defect-cnn-fare4'),
    clean: await OnnxImageEncoder.load(registry, 'defect-cnn-clean'),
  };
});
beforeEach(async () => {
  await store?.close();
  const at = join(dir, `store-${n++}`);
  await mkdir(at);
  store = await EmbeddedVectorStore.open(at);
  await store.ensureCollection(spec);
});
afterAll(async () => {
  await Promise.all(Object.values(encoders ?? {}).map((e) => e.close()));
  await store?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('near-duplicate grouping at ingest', () => {
  it('puts a copy ingested later into the group of the stored image, and leaves other items alone', async () => {
    const a = await item(0);
    const b = await item(1);
    const c = await item(2);
    const [first] = await ingest([a.png, b.png, c.png]);
    expect(first!.duplicates).toEqual([]);
    expect((await payloadOf(a.png)).duplicates).toBeUndefined();

    const [second] = await ingest([a.jpeg]);
    const original = await payloadOf(a.png);
    const copy = await payloadOf(a.jpeg);
    // The stored image became the first of the group; the copy joined it, nearest to it.
    expect(original.duplicates).toMatchObject({ group: original.id, distance: 0, tower: 'robust' });
    expect(copy.duplicates).toMatchObject({ group: original.id, nearest: original.id, tower: 'robust' });
    expect(copy.duplicates!.distance).toBeGreaterThanOrEqual(0);
    expect(copy.duplicates!.distance).toBeLessThanOrEqual(POLICY.threshold);
    expect(second!.duplicates).toEqual([
      { id: copy.id, location: a.jpeg, group: original.id, nearest: original.id, distance: copy.duplicates!.distance },
    ]);
    expect((await payloadOf(b.png)).duplicates).toBeUndefined();
    expect((await payloadOf(c.png)).duplicates).toBeUndefined();

    // Ingesting the same files again finds nothing new and keeps the groups as they are.
    const again = await ingest([a.png, a.jpeg, b.png]);
    expect(again.flatMap((r) => r.duplicates)).toEqual([]);
    expect((await payloadOf(a.jpeg)).duplicates).toEqual(copy.duplicates);
    expect(await store.count({ must: [{ field: 'duplicates.group', match: original.id }] })).toBe(2);
  });

  it('groups copies that arrive in the same chunk, and a third copy joins the same group', async () => {
    const a = await item(3);
    const other = await item(4);
    const [batch] = await ingest([a.png, other.png, a.jpeg]);
    const first = await payloadOf(a.png);
    expect(first.duplicates).toMatchObject({ group: first.id, distance: 0 });
    expect(batch!.duplicates.map((d) => d.location)).toEqual([a.jpeg]);
    expect((await payloadOf(other.png)).duplicates).toBeUndefined();

    // A third rendering (another JPEG quality) in a later run joins the existing group, not a new one.
    const third = join(dir, 'item-3-q90.jpg');
    await writeFile(third, await renderImage(sampleSpec(5, 3), 128, 'jpeg', 90));
    const [later] = await ingest([third]);
    expect(later!.duplicates).toHaveLength(1);
    expect(later!.duplicates[0]!.group).toBe(first.id);
    expect(await store.count({ must: [{ field: 'duplicates.group', match: first.id }] })).toBe(3);
  });

  it('never grows a group by chaining: a member must be within the threshold of the group’s first image', async () => {
    const at = join(dir, `store-chain-${n++}`);
    const small = await EmbeddedVectorStore.open(at);
    await small.ensureCollection({ ...spec, dims: { robust: 2, clean: 2 } });
    // Points on the unit circle: 1 − cos of an angle θ; the threshold 0.02 is θ ≈ 0.200.
    const point = (name: string, theta: number) => {
      const v = new Float32Array([Math.cos(theta), Math.sin(theta)]);
      const id = name.repeat(64).slice(0, 64);
      return {
        id,
        vectors: { robust: v, clean: v },
        payload: {
          id,
          source: `${name}.png`,
          format: 'png',
          width: 1,
          height: 1,
          bytes: 1,
          ingestedAt: '2026-12-01T00:00:00.000Z',
          embeddings: {
            robust: { modelId: 'm', preprocessHash: 'p' },
            clean: { modelId: 'm', preprocessHash: 'p' },
          },
        },
      };
    };
    try {
      const a = point('a', 0);
      await small.upsert([a]);
      const b = point('b', 0.17);
      const first = await groupDuplicates([b], small, POLICY, () => true, ['b.png']);
      expect(first.joined.map((j) => j.group)).toEqual([a.id]);
      expect(first.founders.map((f) => f.id)).toEqual([a.id]);
      await small.upsert([b, ...first.founders]);
      // c is within the threshold of b (θ 0.17) but not of a (θ 0.34): it stays out of a's group.
      const c = point('c', 0.34);
      const second = await groupDuplicates([c], small, POLICY, () => true, ['c.png']);
      expect(second.joined).toEqual([]);
      expect(c.payload).not.toHaveProperty('duplicates');
      // d, within the threshold of both, joins; e, a copy of c in the same chunk, makes a group with c.
      const d = point('d', 0.1);
      const e = point('e', 0.345);
      const third = await groupDuplicates([c, d, e], small, POLICY, (p) => p.id !== c.id, ['c', 'd', 'e']);
      expect(third.joined.map((j) => [j.location, j.group])).toEqual([
        ['d', a.id],
        ['e', c.id],
      ]);
      expect(c.payload).toHaveProperty('duplicates.group', c.id);
    } finally {
      await small.close();
    }
  });

  it('groups nothing when the threshold is below every distance', async () => {
    const a = await item(6);
    const [result] = await ingest([a.png, a.jpeg], { tower: 'clean', threshold: 1e-9 });
    expect(result!.done).toBe(2);
    expect(result!.duplicates).toEqual([]);
    expect((await payloadOf(a.jpeg)).duplicates).toBeUndefined();
  });
});
