import type { QueryOutcome } from '@lookalike/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classOf, overlapAtK, precisionAtK, rankOf, summarize } from './metrics.js';

describe(overlapAtK.name, () => {
  it('counts shared ids among the first k of each ranking', () => {
    expect(overlapAtK(['a', 'b', 'c', 'x'], ['c', 'a', 'z', 'b'], 3)).toBeCloseTo(2 / 3);
    expect(overlapAtK(['a'], ['b'], 1)).toBe(0);
  });

  it('is symmetric, in [0,1], and 1 for a ranking against itself', () => {
    const ids = fc.uniqueArray(fc.constantFrom(...'abcdefghij'.split('')), { minLength: 5, maxLength: 10 });
    fc.assert(
      fc.property(ids, ids, fc.integer({ min: 1, max: 5 }), (a, b, k) => {
        const o = overlapAtK(a, b, k);
        expect(o).toBe(overlapAtK(b, a, k));
        expect(o).toBeGreaterThanOrEqual(0);
        expect(o).toBeLessThanOrEqual(1);
        expect(overlapAtK(a, a, k)).toBe(1);
      }),
    );
  });
});

describe(rankOf.name, () => {
  it('is 1-based and one past the depth when absent', () => {
    expect(rankOf('b', ['a', 'b'])).toBe(2);
    expect(rankOf('z', ['a', 'b'])).toBe(3);
    expect(rankOf(undefined, ['a'])).toBe(2);
  });
});

describe(precisionAtK.name, () => {
  it('measures same-class neighbours and needs a labelled query', () => {
    const q = classOf({ part: 'gear', defect: 'crack' });
    expect(precisionAtK(q, ['gear|crack', 'gear|none', undefined, 'gear|crack'], 4)).toBe(0.5);
    expect(precisionAtK(classOf({ part: 'gear' }), ['gear|crack'], 1)).toBeUndefined();
  });
});

describe(summarize.name, () => {
  const outcome = (encoder: 'robust' | 'clean', epsilon: number, overlap: number, extra: Partial<QueryOutcome> = {}) =>
    ({
      queryId: `${encoder}${epsilon}${overlap}`,
      encoder,
      epsilon,
      loss: 0,
      cosineDrift: 1 - overlap,
      cleanTopK: [],
      attackedTopK: [],
      overlapAtK: overlap,
      top1Retained: overlap > 0.5,
      rankOfCleanTop1: overlap > 0.5 ? 1 : 11,
      ...extra,
    }) satisfies QueryOutcome;

  it('averages per encoder and budget, robust first, ε ascending', () => {
    const m = summarize(
      [
        outcome('clean', 4 / 255, 0.2),
        outcome('robust', 4 / 255, 0.8, { precisionClean: 0.5, precisionAttacked: 0.4 }),
        outcome('robust', 4 / 255, 0.6, { precisionClean: 0.3, precisionAttacked: 0.2 }),
        outcome('robust', 0, 1),
        outcome('clean', 4 / 255, 0.4, { targeted: { targetId: 't', success: true, rank: 1, cosine: 0.9 } }),
      ],
      10,
    );
    expect(m.map((x) => [x.encoder, x.epsilon])).toEqual([
      ['robust', 0],
      ['robust', 4 / 255],
      ['clean', 4 / 255],
    ]);
    expect(m[1]!.overlapAtK).toBeCloseTo(0.7);
    expect(m[1]!.top1Retention).toBe(1);
    expect(m[1]!.precisionAtK).toEqual({ clean: 0.4, attacked: expect.closeTo(0.3) as number });
    expect(m[2]!.meanRankOfCleanTop1).toBe(11);
    expect(m[2]!.targetedSuccessAtK).toBe(1);
    expect(m[0]!.precisionAtK).toBeUndefined();
  });
});
