import { mkdtemp, readdir, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CollectionSpec, Filter, Point } from '@lookalike/core';
import { contractPoint } from '@lookalike/store-contract';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedVectorStore } from './lance-store.js';
import { VectorIndex } from './vector-index.js';

const dim = 32;
const spec: CollectionSpec = {
  name: 'lookalike',
  dims: { robust: dim, clean: dim },
  indexedFields: [
    { path: 'labels.part', type: 'keyword' },
    { path: 'width', type: 'integer' },
  ],
};

/** Point i of a 1 % / 10 % / 50 % / rest split of `labels.part`, independent of the vectors' clusters. */
function point(i: number): Point {
  const p = contractPoint(i, dim);
  const bucket = (i * 7919) % 100;
  const part = bucket < 1 ? 'rare' : bucket < 11 ? 'some' : bucket < 61 ? 'half' : 'other';
  return { ...p, payload: { ...p.payload, labels: { part } } };
}

async function open(dir: string): Promise<EmbeddedVectorStore> {
  const store = await EmbeddedVectorStore.open(dir, 'lookalike', { optimizeEvery: 0, optimizeIdleMs: 0 });
  await store.ensureCollection(spec);
  return store;
}

/** Runs `body` with two handles on one new folder, a writer and a reader; closes both and removes the folder after. */
async function withWriterAndReader(
  prefix: string,
  body: (writer: EmbeddedVectorStore, reader: EmbeddedVectorStore, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const writer = await open(dir);
  const reader = await open(dir);
  try {
    await body(writer, reader, dir);
  } finally {
    await writer.close();
    await reader.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function recall(store: EmbeddedVectorStore, filter: Filter | undefined, queries = 40): Promise<number> {
  let hits = 0;
  let total = 0;
  for (let q = 0; q < queries; q++) {
    const vector = contractPoint(900_000 + q, dim).vectors.robust;
    const exact = await store.search({ vector, using: 'robust', k: 10, filter, exact: true });
    const ann = await store.search({ vector, using: 'robust', k: 10, filter });
    const truth = new Set(exact.map((h) => h.id));
    hits += ann.filter((h) => truth.has(h.id)).length;
    total += exact.length;
  }
  return hits / total;
}

describe(`${EmbeddedVectorStore.name} vector index`, () => {
  const n = 20_000;
  const points = Array.from({ length: n }, (_, i) => point(i));
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vindex-'));
    const store = await open(dir);
    for (let i = 0; i < n; i += 2000) await store.upsert(points.slice(i, i + 2000));
    await store.close();
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const filters: [string, Filter, number][] = [
    ['1 % (posting list)', { must: [{ field: 'labels.part', match: 'rare' }] }, 0.01],
    ['10 % (posting list)', { must: [{ field: 'labels.part', match: 'some' }] }, 0.1],
    ['50 % (posting list)', { must: [{ field: 'labels.part', match: 'half' }] }, 0.5],
    ['1 % (range, no posting list)', { must: [{ field: 'width', range: { gte: 5100, lt: 5300 } }] }, 0.01],
    ['50 % (mustNot)', { mustNot: [{ field: 'labels.part', any: ['half'] }] }, 0.5],
  ];

  for (const built of ['inserted batch by batch', 'rebuilt in one pass from the table']) {
    it(`keeps recall@10 ≥ 0.95 unfiltered and at every filter selectivity, ${built}`, async () => {
      if (built.startsWith('rebuilt')) await rm(join(dir, 'lookalike.vindex'), { recursive: true, force: true });
      const reasons: string[] = [];
      const store = await EmbeddedVectorStore.open(dir, 'lookalike', {
        optimizeEvery: 0,
        optimizeIdleMs: 0,
        onIndex: (e) => reasons.push(e.rebuilding),
      });
      try {
        await store.ensureCollection(spec);
        expect(reasons).toEqual(built.startsWith('rebuilt') ? ['no snapshot'] : []);
        expect(await recall(store, undefined)).toBeGreaterThanOrEqual(0.95);
        for (const [, filter, share] of filters) {
          expect(await store.count(filter)).toBeCloseTo(n * share, -2);
          expect(await recall(store, filter)).toBeGreaterThanOrEqual(0.95);
        }
      } finally {
        await store.close();
      }
    });
  }

  it('returns only points that pass the filter, with cosine scores equal to the exact ones', async () => {
    const store = await open(dir);
    try {
      const vector = points[3]!.vectors.robust;
      const hits = await store.search({ vector, using: 'robust', k: 10, filter: filters[0]![1] });
      const exact = await store.search({ vector, using: 'robust', k: 10, filter: filters[0]![1], exact: true });
      expect(hits).toHaveLength(10);
      for (const h of hits) expect(h.payload.labels!.part).toBe('rare');
      expect(hits[0]!.score).toBeCloseTo(exact[0]!.score, 5);
    } finally {
      await store.close();
    }
  });
});

describe(`${EmbeddedVectorStore.name} crash safety of the vector index`, () => {
  it('catches up after a crash: writes after the last snapshot are found, deletes are gone, nothing phantom', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vindex-crash-'));
    try {
      const writer = await open(dir);
      await writer.upsert(Array.from({ length: 300 }, (_, i) => point(i)));
      expect(await writer.optimize()).toMatchObject({ indexed: true, saved: true });
      // After the snapshot: new points, a changed vector, deletes. The writer is then abandoned without close().
      await writer.upsert(Array.from({ length: 50 }, (_, i) => point(300 + i)));
      const moved = { ...point(5), vectors: point(10_005).vectors };
      await writer.upsert([moved]);
      await writer.delete([point(0).id, point(301).id]);

      const after = await open(dir);
      try {
        expect(await after.count()).toBe(348);
        const self = await after.search({ vector: point(320).vectors.clean, using: 'clean', k: 1 });
        expect(self[0]!.id).toBe(point(320).id);
        const movedHit = await after.search({ vector: moved.vectors.robust, using: 'robust', k: 1 });
        expect(movedHit[0]).toMatchObject({ id: moved.id });
        expect(movedHit[0]!.score).toBeCloseTo(1, 4);
        const all = await after.search({ vector: point(0).vectors.robust, using: 'robust', k: 1000, exact: true });
        const ann = await after.search({ vector: point(0).vectors.robust, using: 'robust', k: 1000 });
        for (const hits of [all, ann]) {
          expect(hits.map((h) => h.id)).not.toContain(point(0).id);
          expect(hits.map((h) => h.id)).not.toContain(point(301).id);
        }
        expect(new Set(all.map((h) => h.id)).size).toBe(348);
      } finally {
        await after.close();
        await writer.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('rebuilds from the table when the snapshot is torn', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vindex-torn-'));
    try {
      const writer = await open(dir);
      await writer.upsert(Array.from({ length: 200 }, (_, i) => point(i)));
      await writer.close();
      const files = await readdir(join(dir, 'lookalike.vindex'));
      const vectors = files.find((f) => f.endsWith('.robust.f32'))!;
      await truncate(join(dir, 'lookalike.vindex', vectors), 100);
      const reasons: string[] = [];
      const store = await EmbeddedVectorStore.open(dir, 'lookalike', { onIndex: (e) => reasons.push(e.rebuilding) });
      try {
        await store.ensureCollection(spec);
        expect(reasons).toEqual(['snapshot robust vectors are incomplete']);
        const hit = await store.search({ vector: point(150).vectors.robust, using: 'robust', k: 1 });
        expect(hit[0]!.id).toBe(point(150).id);
      } finally {
        await store.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('shows a reader that is already open what another handle upserts and deletes, in search', async () => {
    await withWriterAndReader('vindex-reader-', async (writer, reader) => {
      await writer.upsert([point(1), point(2), point(3)]);
      expect((await reader.search({ vector: point(2).vectors.robust, using: 'robust', k: 1 }))[0]!.id).toBe(
        point(2).id,
      );
      await writer.delete([point(2).id]);
      const hits = await reader.search({ vector: point(2).vectors.robust, using: 'robust', k: 5 });
      expect(hits.map((h) => h.id).sort()).toEqual([point(1).id, point(3).id].sort());
    });
  });

  it('shows a reader whose check has settled (no commit for 2 s, a stat only) the next commit at once', async () => {
    await withWriterAndReader('vindex-settled-', async (writer, reader) => {
      await writer.upsert([point(1), point(2)]);
      await new Promise((resolve) => setTimeout(resolve, 2_300));
      // Two reads after the pause: the first reads the version and trusts the folder's stamp, the second stats only.
      expect((await reader.get([point(2).id])).map((p) => p.id)).toEqual([point(2).id]);
      expect((await reader.get([point(2).id])).map((p) => p.id)).toEqual([point(2).id]);
      await writer.upsert([point(3)]);
      const hit = await reader.search({ vector: point(3).vectors.robust, using: 'robust', k: 1 });
      expect(hit[0]!.id).toBe(point(3).id);
      await new Promise((resolve) => setTimeout(resolve, 2_300));
      await reader.get([point(1).id]);
      await reader.get([point(1).id]);
      await writer.delete([point(1).id]);
      expect(await reader.get([point(1).id])).toEqual([]);
      const all = await reader.search({ vector: point(1).vectors.robust, using: 'robust', k: 10, exact: true });
      expect(all.map((h) => h.id).sort()).toEqual([point(2).id, point(3).id].sort());
    });
  });

  it("serves get from the index: vectors as upserted (not unit length), payloads, other handles' writes, reloads", async () => {
    const scaled = (p: Point, by: number): Point => ({
      ...p,
      vectors: { robust: p.vectors.robust.map((x) => x * by), clean: p.vectors.clean.map((x) => -x * by * 3) },
    });
    await withWriterAndReader('vindex-get-', async (writer, reader, dir) => {
      await writer.upsert([scaled(point(1), 2.5), scaled(point(2), 0.01), point(3)]);
      const expectStored = async (store: EmbeddedVectorStore, p: Point) => {
        const [got] = await store.get([p.id], { withVectors: true });
        expect(got).toMatchObject({ id: p.id, payload: { source: p.payload.source, labels: p.payload.labels } });
        for (const r of ['robust', 'clean'] as const)
          for (let k = 0; k < dim; k++) expect(got!.vectors![r][k]).toBeCloseTo(p.vectors[r][k]!, 6);
      };
      // The reader's index was loaded before these writes: its get catches up as its search does.
      await expectStored(reader, scaled(point(1), 2.5));
      await expectStored(reader, scaled(point(2), 0.01));
      expect((await reader.get([point(3).id, 'f'.repeat(64), point(1).id])).map((p) => p.id)).toEqual([
        point(3).id,
        point(1).id,
      ]);
      // Re-scaling a vector keeps its direction (and graph node) but changes what get returns.
      await writer.upsert([scaled(point(1), 7)]);
      await writer.delete([point(3).id]);
      await expectStored(reader, scaled(point(1), 7));
      expect(await reader.get([point(3).id])).toEqual([]);
      await writer.close();
      const reopened = await open(dir);
      try {
        await expectStored(reopened, scaled(point(1), 7));
        await expectStored(reopened, scaled(point(2), 0.01));
      } finally {
        await reopened.close();
      }
    });
  });
});

describe(VectorIndex.name, () => {
  it('keeps one node per id when the same points are upserted again, changed or not', () => {
    const index = new VectorIndex(spec, 1);
    const pts = Array.from({ length: 50 }, (_, i) => point(i));
    const indexed = (p: Point) => ({ id: p.id, payload: JSON.stringify(p.payload), vectors: p.vectors });
    index.upsert(pts.map(indexed));
    index.upsert(pts.map(indexed));
    index.upsert([indexed({ ...pts[4]!, vectors: point(77).vectors })]);
    expect(index.size).toBe(50);
    const hits = index.search(point(77).vectors.robust, 'robust', 50);
    expect(new Set(hits.map((h) => h.id)).size).toBe(50);
    expect(hits[0]!.id).toBe(pts[4]!.id);
  });

  it('leaves out what a mustNot filter excludes at the unfiltered cost, and answers as unfiltered when it excludes nothing', () => {
    const index = new VectorIndex(spec, 1);
    const pts = Array.from({ length: 3000 }, (_, i) => point(i));
    index.upsert(pts.map((p) => ({ id: p.id, payload: JSON.stringify(p.payload), vectors: p.vectors })));
    const none: Filter = { mustNot: [{ field: 'labels.part', match: 'absent' }] };
    const rare: Filter = { mustNot: [{ field: 'labels.part', match: 'rare' }] };
    const isRare = new Set(pts.filter((p) => p.payload.labels?.part === 'rare').map((p) => p.id));
    expect(isRare.size).toBeGreaterThan(0);
    let found = 0;
    for (const q of pts.slice(0, 40)) {
      const v = q.vectors.robust;
      expect(index.search(v, 'robust', 10, none)).toEqual(index.search(v, 'robust', 10));
      const hits = index.search(v, 'robust', 10, rare);
      expect(hits).toHaveLength(10);
      expect(hits.some((h) => isRare.has(h.id))).toBe(false);
      const truth = new Set(index.search(v, 'robust', 10, rare, true).map((h) => h.id));
      found += hits.filter((h) => truth.has(h.id)).length;
    }
    // The approximate walk finds nearly all of the exact nearest that are left.
    expect(found / 400).toBeGreaterThan(0.9);
  });

  it('searches exactly past deleted slots, even when the deleted points were the nearest', () => {
    const index = new VectorIndex(spec, 1);
    const pts = Array.from({ length: 200 }, (_, i) => point(i));
    index.upsert(pts.map((p) => ({ id: p.id, payload: JSON.stringify(p.payload), vectors: p.vectors })));
    const query = pts[0]!.vectors.robust;
    const dot = (p: Point) => p.vectors.robust.reduce((s, x, i) => s + x * query[i]!, 0);
    const byNearness = [...pts].sort((a, b) => dot(b) - dot(a));
    index.delete(byNearness.slice(0, 150).map((p) => p.id));
    const hits = index.search(query, 'robust', 10, undefined, true);
    expect(hits.map((h) => h.id)).toEqual(byNearness.slice(150, 160).map((p) => p.id));
    for (const [i, h] of hits.entries()) expect(h.score).toBeCloseTo(dot(byNearness[150 + i]!), 5);
  });
});
