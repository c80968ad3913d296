import {
  ENCODER_ROLES,
  exactNearest,
  filterSchema,
  type CollectionSpec,
  type Filter,
  type Point,
  type VectorStore,
} from '@lookalike/core';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** A store under test, fresh and empty, with its own collection; `dispose` removes what it made. */
export interface StoreUnderTest {
  store: VectorStore;
  dispose(): Promise<void>;
  /** Reopens the same collection from scratch (a process restart), when the store persists. */
  reopen?(): Promise<VectorStore>;
}

const PARTS = ['bolt', 'nut', 'gear', 'tile'] as const;
const DEFECTS = ['none', 'crack', 'dent'] as const;

/** Deterministic unit vectors in `dim` dimensions, clustered by part so that search has structure. */
function vector(i: number, dim: number, salt: number): Float32Array {
  const v = new Float32Array(dim);
  let s = (i * 2654435761 + salt * 97) >>> 0;
  for (let k = 0; k < dim; k++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    v[k] = (s / 2 ** 32 - 0.5) * 0.6 + (k % PARTS.length === i % PARTS.length ? 1 : 0);
  }
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

/** Point `i` of the contract's data set: sha256 id, labels cycling through parts and defects. */
export function contractPoint(i: number, dim: number): Point {
  const id = createHash('sha256').update(`contract-${i}`).digest('hex');
  return {
    id,
    vectors: { robust: vector(i, dim, 1), clean: vector(i, dim, 2) },
    payload: {
      id,
      source: `contract/${i}.png`,
      format: 'png',
      width: 100 + i,
      height: 100,
      bytes: 1000 + i,
      caption: `item ${i}`,
      labels: { part: PARTS[i % PARTS.length]!, defect: DEFECTS[i % DEFECTS.length]! },
      metadata: { line: i % 5, score: (i % 10) / 10 },
      ingestedAt: '2026-11-23T00:00:00.000Z',
      embeddings: {
        robust: { modelId: 'robust-model', preprocessHash: 'p1' },
        clean: { modelId: 'clean-model', preprocessHash: 'p1' },
      },
    },
  };
}

/**
 * The `VectorStore` contract. Every adapter runs it against a real engine:
 * `describeVectorStoreContract('EmbeddedVectorStore', () => makeStore())`.
 */
export function describeVectorStoreContract(
  name: string,
  make: (spec: CollectionSpec) => Promise<StoreUnderTest>,
): void {
  const dim = 16;
  const n = 120;
  const spec: CollectionSpec = {
    name: 'contract',
    dims: { robust: dim, clean: dim },
    indexedFields: [
      { path: 'labels.part', type: 'keyword' },
      { path: 'labels.defect', type: 'keyword' },
      { path: 'width', type: 'integer' },
      { path: 'metadata.score', type: 'float' },
    ],
  };
  const points = Array.from({ length: n }, (_, i) => contractPoint(i, dim));

  describe(`${name} (VectorStore contract)`, () => {
    let sut: StoreUnderTest;
    let store: VectorStore;
    beforeAll(async () => {
      sut = await make(spec);
      store = sut.store;
      await store.ensureCollection(spec);
      await store.ensureCollection(spec); // idempotent
      await store.upsert(points);
    });
    afterAll(async () => {
      await sut?.dispose();
    });

    it('answers ping and counts every point once, also after upserting the same points again', async () => {
      await store.ping();
      expect(await store.count()).toBe(n);
      await store.upsert(points.slice(0, 30));
      expect(await store.count()).toBe(n);
    });

    it('refuses a collection spec with other dimensions', async () => {
      await expect(store.ensureCollection({ ...spec, dims: { robust: dim + 1, clean: dim } })).rejects.toThrow(
        /dimension|size/i,
      );
    });

    it('gets points in the order asked, leaving missing ids out, with vectors on request', async () => {
      const ids = [points[7]!.id, 'f'.repeat(64), points[3]!.id];
      const got = await store.get(ids);
      expect(got.map((p) => p.id)).toEqual([points[7]!.id, points[3]!.id]);
      expect(got[0]!.payload).toMatchObject({ source: 'contract/7.png', labels: { part: 'tile' } });
      expect(got[0]!.vectors).toBeUndefined();
      const [withVectors] = await store.get([points[7]!.id], { withVectors: true });
      for (const role of ENCODER_ROLES) {
        const v = withVectors!.vectors![role];
        expect(v.length).toBe(dim);
        for (let k = 0; k < dim; k++) expect(v[k]).toBeCloseTo(points[7]!.vectors[role][k]!, 5);
      }
    });

    it('finds the exact nearest neighbours by cosine in each named space, ANN and exact', async () => {
      for (const using of ENCODER_ROLES) {
        const query = vector(1000, dim, using === 'robust' ? 1 : 2);
        const matrix = new Float32Array(n * dim);
        points.forEach((p, i) => matrix.set(p.vectors[using], i * dim));
        const truth = exactNearest(query, matrix, dim, 10).map((h) => points[h.index]!.id);
        for (const exact of [true, false]) {
          const hits = await store.search({ vector: query, using, k: 10, exact });
          expect(hits).toHaveLength(10);
          if (exact) expect(hits.map((h) => h.id)).toEqual(truth);
          else expect(hits.filter((h) => truth.includes(h.id)).length).toBeGreaterThanOrEqual(9);
          for (let i = 1; i < hits.length; i++) expect(hits[i - 1]!.score).toBeGreaterThanOrEqual(hits[i]!.score);
          expect(hits[0]!.payload.labels).toBeDefined();
        }
        const self = await store.search({ vector: points[11]!.vectors[using], using, k: 1, exact: true });
        expect(self[0]!.id).toBe(points[11]!.id);
        expect(self[0]!.score).toBeCloseTo(1, 4);
      }
    });

    it('filters by match, any, range, should and mustNot', async () => {
      const cases: [Filter, (p: Point) => boolean][] = [
        [{ must: [{ field: 'labels.part', match: 'gear' }] }, (p) => p.payload.labels!.part === 'gear'],
        [{ must: [{ field: 'labels.defect', any: ['crack', 'dent'] }] }, (p) => p.payload.labels!.defect !== 'none'],
        [
          { must: [{ field: 'width', range: { gte: 150, lt: 170 } }] },
          (p) => p.payload.width >= 150 && p.payload.width < 170,
        ],
        [
          { must: [{ field: 'labels.part', match: 'bolt' }], mustNot: [{ field: 'labels.defect', match: 'none' }] },
          (p) => p.payload.labels!.part === 'bolt' && p.payload.labels!.defect !== 'none',
        ],
        [
          {
            should: [
              { field: 'labels.part', match: 'nut' },
              { field: 'metadata.score', range: { gte: 0.85 } },
            ],
          },
          (p) => p.payload.labels!.part === 'nut' || (p.payload.metadata!.score as number) >= 0.85,
        ],
      ];
      for (const [filter, keep] of cases) {
        const expected = points.filter(keep).length;
        expect(await store.count(filter)).toBe(expected);
        const hits = await store.search({
          vector: points[0]!.vectors.robust,
          using: 'robust',
          k: 200,
          filter,
          exact: true,
        });
        expect(hits.length).toBe(expected);
        const ids = new Set(points.filter(keep).map((p) => p.id));
        for (const h of hits) expect(ids.has(h.id)).toBe(true);
        const annHits = await store.search({ vector: points[0]!.vectors.robust, using: 'robust', k: 5, filter });
        for (const h of annHits) expect(ids.has(h.id)).toBe(true);
      }
    });

    it('treats hostile filter strings as plain values', async () => {
      for (const value of [
        '" OR 1=1 --',
        "gear' OR '1'='1",
        "x') OR (1=1",
        '%',
        '*',
        '\\',
        'gear; DELETE FROM points',
      ]) {
        const filter = filterSchema.parse({ must: [{ field: 'labels.part', match: value }] });
        expect(await store.count(filter)).toBe(0);
        expect(await store.search({ vector: points[0]!.vectors.robust, using: 'robust', k: 5, filter })).toEqual([]);
      }
      expect(await store.count()).toBe(n);
    });

    it('scrolls through every point exactly once', async () => {
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await store.scroll({ limit: 25, ...(cursor ? { cursor } : {}) });
        seen.push(...page.points.map((p) => p.id));
        cursor = page.next;
      } while (cursor);
      expect(seen.length).toBe(n);
      expect(new Set(seen).size).toBe(n);
      const filtered = await store.scroll({ limit: 500, filter: { must: [{ field: 'labels.part', match: 'tile' }] } });
      expect(filtered.points.length).toBe(n / 4);
    });

    it('deletes by id and keeps the rest', async () => {
      await store.delete([points[0]!.id, points[1]!.id, 'e'.repeat(64)]);
      expect(await store.count()).toBe(n - 2);
      expect(await store.get([points[0]!.id])).toEqual([]);
      await store.upsert(points.slice(0, 2));
      expect(await store.count()).toBe(n);
    });

    it('keeps everything across a reopen, when the store persists', async (ctx) => {
      if (!sut.reopen) {
        ctx.skip();
        return;
      }
      store = await sut.reopen();
      expect(await store.count()).toBe(n);
      const hits = await store.search({ vector: points[5]!.vectors.clean, using: 'clean', k: 1, exact: true });
      expect(hits[0]!.id).toBe(points[5]!.id);
    });
  });
}
