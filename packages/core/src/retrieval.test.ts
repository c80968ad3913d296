import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  cosine,
  dot,
  exactNearest,
  l2Norm,
  l2Normalize,
  overlapAtK,
  precisionAtK,
  rankOf,
  recallAtK,
  topK,
} from './retrieval.js';

const vector = (length: number) =>
  fc.array(fc.float({ min: -100, max: 100, noNaN: true, noDefaultInfinity: true }), {
    minLength: length,
    maxLength: length,
  });
const pairOfVectors = fc.integer({ min: 1, max: 32 }).chain((n) => fc.tuple(vector(n), vector(n)));

/** Reference top-k: a full stable sort, best first, ties to the lower index. */
function topKBySort(scores: number[], k: number): number[] {
  return scores
    .map((s, i) => [s, i] as const)
    .filter(([s]) => !Number.isNaN(s))
    .sort((x, y) => y[0] - x[0] || x[1] - y[1])
    .slice(0, k)
    .map(([, i]) => i);
}

describe('cosine', () => {
  it('is symmetric, bounded and invariant to positive scaling', () => {
    fc.assert(
      fc.property(pairOfVectors, fc.double({ min: 0.01, max: 100, noNaN: true }), ([a, b], s) => {
        const c = cosine(a, b);
        expect(c).toBeGreaterThanOrEqual(-1);
        expect(c).toBeLessThanOrEqual(1);
        expect(cosine(b, a)).toBeCloseTo(c, 12);
        expect(
          cosine(
            a.map((x) => x * s),
            b,
          ),
        ).toBeCloseTo(c, 9);
      }),
    );
  });

  it('is 1 for a vector with itself, −1 with its negation, 0 with the zero vector', () => {
    expect(cosine([3, 4], [3, 4])).toBeCloseTo(1, 12);
    expect(cosine([3, 4], [-3, -4])).toBeCloseTo(-1, 12);
    expect(cosine([3, 4], [0, 0])).toBe(0);
    expect(cosine([1, 0], [0, 1])).toBe(0);
  });

  it('refuses vectors of different lengths', () => {
    expect(() => dot([1, 2], [1])).toThrow(RangeError);
  });
});

describe(l2Normalize.name, () => {
  it('gives unit vectors whose dot product is the cosine', () => {
    fc.assert(
      fc.property(pairOfVectors, ([a, b]) => {
        fc.pre(l2Norm(a) > 1e-3 && l2Norm(b) > 1e-3);
        const na = l2Normalize(a);
        expect(l2Norm(na)).toBeCloseTo(1, 5);
        expect(dot(na, l2Normalize(b))).toBeCloseTo(cosine(a, b), 5);
      }),
    );
  });
});

describe(topK.name, () => {
  it('agrees with a full sort, including ties and NaN', () => {
    const score = fc.oneof(fc.integer({ min: -5, max: 5 }), fc.constant(Number.NaN), fc.double({ noNaN: true }));
    fc.assert(
      fc.property(fc.array(score, { maxLength: 200 }), fc.integer({ min: 0, max: 250 }), (scores, k) => {
        expect(topK(scores, k)).toEqual(topKBySort(scores, k));
      }),
    );
  });

  it('rejects a negative or fractional k', () => {
    expect(() => topK([1], -1)).toThrow(RangeError);
    expect(() => topK([1], 1.5)).toThrow(RangeError);
  });
});

describe(exactNearest.name, () => {
  it('ranks rows by cosine similarity to the query', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 8 })
          .chain((dim) =>
            fc.tuple(fc.constant(dim), vector(dim), fc.array(vector(dim), { minLength: 1, maxLength: 30 })),
          ),
        fc.integer({ min: 1, max: 10 }),
        ([dim, query, rows], k) => {
          const hits = exactNearest(query, rows.flat(), dim, k);
          const expected = topKBySort(
            rows.map((r) => cosine(query, r)),
            k,
          );
          expect(hits.map((h) => h.index)).toEqual(expected);
          for (const hit of hits) expect(hit.score).toBeCloseTo(cosine(query, rows[hit.index]!), 9);
        },
      ),
    );
  });
});

describe('ranking metrics', () => {
  const ids = fc.uniqueArray(fc.integer({ min: 0, max: 40 }), { maxLength: 30 });

  it('overlap@k is symmetric, in [0,1], and 1 for identical rankings of at least k items', () => {
    fc.assert(
      fc.property(ids, ids, fc.integer({ min: 1, max: 20 }), (a, b, k) => {
        const o = overlapAtK(a, b, k);
        expect(o).toBeGreaterThanOrEqual(0);
        expect(o).toBeLessThanOrEqual(1);
        expect(overlapAtK(b, a, k)).toBe(o);
        if (a.length >= k) expect(overlapAtK(a, a, k)).toBe(1);
      }),
    );
    expect(overlapAtK(['a', 'b', 'c'], ['c', 'x', 'a'], 3)).toBeCloseTo(2 / 3, 12);
  });

  it('recall@k never decreases as k grows and reaches 1 once every relevant item is retrieved', () => {
    fc.assert(
      fc.property(ids, ids, (retrieved, relevant) => {
        fc.pre(relevant.length > 0);
        let previous = 0;
        for (let k = 1; k <= retrieved.length + 1; k++) {
          const r = recallAtK(retrieved, relevant, k);
          expect(r).toBeGreaterThanOrEqual(previous);
          previous = r;
        }
        expect(recallAtK([...relevant, ...retrieved], relevant, relevant.length)).toBe(1);
      }),
    );
    expect(() => recallAtK([1], [], 1)).toThrow(/undefined/);
  });

  it('precision@k counts missing slots as misses', () => {
    expect(precisionAtK(['a', 'b'], (x) => x === 'a', 4)).toBe(0.25);
    fc.assert(
      fc.property(ids, fc.integer({ min: 1, max: 40 }), (retrieved, k) => {
        const p = precisionAtK(retrieved, (x) => x % 2 === 0, k);
        const expected = retrieved.slice(0, k).filter((x) => x % 2 === 0).length / k;
        expect(p).toBe(expected);
      }),
    );
  });

  it('rankOf is 1-based and undefined for absent items', () => {
    expect(rankOf(['a', 'b'], 'b')).toBe(2);
    expect(rankOf(['a', 'b'], 'z')).toBeUndefined();
  });
});
