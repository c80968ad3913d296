import type { DuplicateAttackOutcome, QueryOutcome, TwoAfcOutcome } from '@lookalike/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  classOf,
  labelPrecision,
  overlapAtK,
  partDefectOf,
  precisionAtK,
  rankOf,
  summarize,
  summarizeDuplicates,
  summarizeTwoAfc,
} from './metrics.js';

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

describe(partDefectOf.name, () => {
  it('takes part and defect when both are there, and nothing otherwise', () => {
    expect(partDefectOf({ part: 'gear', defect: 'none', color: 'red' })).toEqual({ part: 'gear', defect: 'none' });
    expect(partDefectOf({ part: 'gear', defect: null })).toBeUndefined();
    expect(partDefectOf({ defect: 'crack' })).toBeUndefined();
    expect(partDefectOf(undefined)).toBeUndefined();
  });
});

describe(labelPrecision.name, () => {
  const gearCrack = { part: 'gear', defect: 'crack' };

  it('counts hits sharing the defect, and the part and defect, over k; unlabelled hits share nothing', () => {
    const hits = [
      gearCrack,
      { part: 'bolt', defect: 'crack' },
      { part: 'gear', defect: 'none' },
      undefined,
      { part: 'gear', defect: 'crack' },
      { part: 'nut', defect: 'crack' }, // beyond k
    ];
    expect(labelPrecision(gearCrack, hits, 5)).toEqual({ defect: 3 / 5, partDefect: 2 / 5, unlabelledHits: 1 });
    expect(labelPrecision({ part: 'gear', defect: 'none' }, hits, 5)).toEqual({
      defect: 1 / 5,
      partDefect: 1 / 5,
      unlabelledHits: 1,
    });
  });

  it('keeps k as the denominator when the gallery returns fewer hits', () => {
    expect(labelPrecision(gearCrack, [gearCrack], 4)).toEqual({ defect: 0.25, partDefect: 0.25, unlabelledHits: 0 });
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
    expect(m[0]!.labelCounts).toEqual({
      labelled: 0,
      defective: 0,
      unlabelled: 1,
      unlabelledHits: { clean: 0, attacked: 0 },
    });
  });

  it('averages same-defect precision over labelled and over defective queries, and counts what it left out', () => {
    // Four queries at one budget, k = 10; precisions as hit counts out of 10, by hand:
    //   q1 gear/crack   clean: 6 same defect, 4 same part+defect   attacked: 3 and 1
    //   q2 bolt/dent    clean: 2 and 2                             attacked: 0 and 0 (2 attacked hits unlabelled)
    //   q3 nut/none     clean: 9 and 5                             attacked: 7 and 3
    //   q4 no labels    left out
    const labelled = (part: string, defect: string, c: [number, number], a: [number, number], unlabelled = 0) => ({
      labels: { part, defect },
      defectPrecisionClean: c[0] / 10,
      precisionClean: c[1] / 10,
      defectPrecisionAttacked: a[0] / 10,
      precisionAttacked: a[1] / 10,
      unlabelledHits: { clean: 0, attacked: unlabelled },
    });
    const [m] = summarize(
      [
        outcome('robust', 4 / 255, 0.5, labelled('gear', 'crack', [6, 4], [3, 1])),
        outcome('robust', 4 / 255, 0.5, labelled('bolt', 'dent', [2, 2], [0, 0], 2)),
        outcome('robust', 4 / 255, 0.5, labelled('nut', 'none', [9, 5], [7, 3])),
        outcome('robust', 4 / 255, 0.5),
      ],
      10,
    );
    expect(m!.precisionAtK!.clean).toBeCloseTo((0.4 + 0.2 + 0.5) / 3, 12);
    expect(m!.precisionAtK!.attacked).toBeCloseTo((0.1 + 0 + 0.3) / 3, 12);
    expect(m!.defectPrecisionAtK!.clean).toBeCloseTo((0.6 + 0.2 + 0.9) / 3, 12);
    expect(m!.defectPrecisionAtK!.attacked).toBeCloseTo((0.3 + 0 + 0.7) / 3, 12);
    expect(m!.defectivePrecisionAtK!.clean).toBeCloseTo((0.6 + 0.2) / 2, 12);
    expect(m!.defectivePrecisionAtK!.attacked).toBeCloseTo((0.3 + 0) / 2, 12);
    expect(m!.labelCounts).toEqual({
      labelled: 3,
      defective: 2,
      unlabelled: 1,
      unlabelledHits: { clean: 0, attacked: 2 },
    });
  });

  it('leaves out the defective-only precision when every labelled query is flawless', () => {
    const [m] = summarize(
      [
        outcome('clean', 0, 1, {
          labels: { part: 'gear', defect: 'none' },
          precisionClean: 0.3,
          precisionAttacked: 0.3,
          defectPrecisionClean: 0.8,
          defectPrecisionAttacked: 0.8,
          unlabelledHits: { clean: 0, attacked: 0 },
        }),
      ],
      10,
    );
    expect(m!.defectPrecisionAtK).toEqual({ clean: 0.8, attacked: 0.8 });
    expect(m!.defectivePrecisionAtK).toBeUndefined();
    expect(m!.labelCounts).toMatchObject({ labelled: 1, defective: 0, unlabelled: 0 });
  });
});

describe(summarizeTwoAfc.name, () => {
  const o = (
    index: number,
    kind: TwoAfcOutcome['kind'],
    encoder: TwoAfcOutcome['encoder'],
    cleanMargin: number,
    attackedMargin: number,
  ): TwoAfcOutcome => ({ index, kind, encoder, norm: 'linf', epsilon: 4 / 255, cleanMargin, attackedMargin });

  it('counts a decision right only when the reference is strictly closer to its re-render, overall and by kind', () => {
    const [m] = summarizeTwoAfc([
      o(0, 'twin', 'robust', -0.1, 0.2),
      o(1, 'same part', 'robust', -0.3, -0.1),
      o(2, 'twin', 'robust', 0.05, 0.3),
      o(3, 'same part', 'robust', -0.2, 0),
    ]);
    expect(m).toEqual({
      encoder: 'robust',
      norm: 'linf',
      epsilon: 4 / 255,
      triplets: 4,
      clean: 0.75,
      attacked: 0.25,
      byKind: { twin: { triplets: 2, clean: 0.5, attacked: 0 }, 'same part': { triplets: 2, clean: 1, attacked: 0.5 } },
    });
  });

  it('keeps each tower and budget apart', () => {
    const rows = summarizeTwoAfc([
      o(0, 'twin', 'robust', -0.1, -0.1),
      o(0, 'twin', 'clean', -0.1, 0.1),
      { ...o(0, 'twin', 'robust', -0.1, 0.1), norm: 'l2', epsilon: 1.29 },
    ]);
    expect(rows.map((r) => [r.encoder, r.norm, r.attacked])).toEqual([
      ['robust', 'linf', 1],
      ['clean', 'linf', 0],
      ['robust', 'l2', 0],
    ]);
  });
});

describe(summarizeDuplicates.name, () => {
  const d = (encoder: 'robust' | 'clean', dup: [number, number], imp: [number, number]): DuplicateAttackOutcome => ({
    index: 0,
    encoder,
    threshold: 0.05,
    duplicate: { clean: dup[0], attacked: dup[1] },
    impostor: { clean: imp[0], attacked: imp[1] },
  });

  it('counts hidden duplicates among those the tower found, and forged ones among those it kept apart', () => {
    const [robust, clean] = summarizeDuplicates([
      d('robust', [0.02, 0.06], [0.3, 0.04]),
      d('robust', [0.04, 0.05], [0.04, 0.01]),
      d('robust', [0.09, 0.2], [0.2, 0.1]),
      d('clean', [0.01, 0.3], [0.5, 0.01]),
    ]);
    // Robust: two duplicates found (0.02, 0.04), one pushed over 0.05; two impostors kept apart (0.3, 0.2), one pulled in.
    expect(robust).toEqual({
      encoder: 'robust',
      epsilon: 4 / 255,
      threshold: 0.05,
      hide: { eligible: 2, succeeded: 1 },
      forge: { eligible: 2, succeeded: 1 },
    });
    expect(clean).toMatchObject({ hide: { eligible: 1, succeeded: 1 }, forge: { eligible: 1, succeeded: 1 } });
    expect(summarizeDuplicates([])).toEqual([]);
  });
});
