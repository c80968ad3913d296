import { describe, expect, it } from 'vitest';
import { gaussian, seededRandom } from '@lookalike/attacks';
import type { CaptionScreening } from '@lookalike/core';
import { fitScreen, fitsPolicy, judge, rejudge, screeningModelSchema, type ScreeningPolicy } from './screen.js';

const policy: ScreeningPolicy = { tower: 'robust', threshold: 0.9, minCount: 100, textModel: 't', imageModel: 'r' };
const now = new Date('2026-12-02T00:00:00Z');

function catalog(seed: number, clean: number, swapped: number): { x: number[]; bad: boolean[] } {
  const random = seededRandom(seed);
  const z = () => gaussian(random);
  const x = [
    ...Array.from({ length: clean }, () => 0.58 + 0.07 * z()),
    ...Array.from({ length: swapped }, () => -0.04 + 0.18 * z()),
  ];
  return { x, bad: x.map((_, i) => i >= clean) };
}

/** Similarities of unrelated pairs: an image and another image's caption. */
function unrelated(seed: number, n: number): number[] {
  const random = seededRandom(seed);
  return Array.from({ length: n }, () => -0.04 + 0.18 * gaussian(random));
}

/** A clean population that is not one Gaussian (as the towers' are): 76 % at 0.55 ± 0.066, 24 % at 0.65 ± 0.037. */
function skewed(seed: number, n: number): number[] {
  const random = seededRandom(seed);
  return Array.from({ length: n }, (_, i) =>
    i % 25 < 19 ? 0.55 + 0.066 * gaussian(random) : 0.65 + 0.037 * gaussian(random),
  );
}

describe('fitScreen and judge', () => {
  it('flags most swapped captions and few of the others', () => {
    const { x, bad } = catalog(5, 1980, 20);
    const model = fitScreen(x, policy, now);
    expect(screeningModelSchema.parse(model)).toEqual(model);
    expect(model).toMatchObject({ separates: true, lowFrom: 'free', unrelatedPairs: 0 });
    const flagged = x.map((v) => judge(model, v, policy.minCount).verdict === 'suspicious');
    const tp = flagged.filter((f, i) => f && bad[i]).length;
    const fp = flagged.filter((f, i) => f && !bad[i]).length;
    expect(tp / 20).toBeGreaterThanOrEqual(0.9);
    expect(fp / 1980).toBeLessThan(0.01);
    const suspicious = judge(model, -0.1, policy.minCount);
    expect(suspicious.verdict).toBe('suspicious');
    expect(suspicious.reason).toMatch(/below the trust boundary/);
    expect(suspicious.probability).toBeLessThan(0.9);
  });

  it('finds rare swaps in a clean population that is not one Gaussian with the low component measured', () => {
    const swaps = catalog(12, 0, 20).x;
    const x = [...skewed(11, 1980), ...swaps];
    const measured = fitScreen(x, policy, now, unrelated(13, 1000));
    expect(measured).toMatchObject({ separates: true, lowFrom: 'unrelated', unrelatedPairs: 1000 });
    const flagged = x.map((v) => judge(measured, v, policy.minCount).verdict === 'suspicious');
    expect(flagged.slice(1980).filter(Boolean).length).toBeGreaterThanOrEqual(18);
    expect(flagged.slice(0, 1980).filter(Boolean).length).toBeLessThanOrEqual(10);
    // On the same population without swaps, hardly anything is flagged.
    const clean = skewed(14, 2000);
    const quiet = fitScreen(clean, policy, now, unrelated(15, 1000));
    expect(clean.filter((v) => judge(quiet, v, policy.minCount).verdict === 'suspicious').length).toBeLessThanOrEqual(
      10,
    );
  });

  it('trusts every pair when the tower does not separate matching from unrelated captions', () => {
    const x = catalog(16, 500, 0).x;
    const model = fitScreen(x, policy, now, catalog(17, 500, 0).x);
    expect(model).toMatchObject({ separates: false, boundary: null });
    expect(judge(model, 0.1, policy.minCount)).toMatchObject({
      verdict: 'trusted',
      reason: expect.stringMatching(/does not separate/),
    });
  });

  it('trusts every pair of a collection without a separate low component', () => {
    const { x } = catalog(6, 2000, 0);
    const model = fitScreen(x, policy, now);
    expect(model.separates).toBe(false);
    expect(model.boundary).toBeNull();
    const low = judge(model, Math.min(...x), policy.minCount);
    expect(low.verdict).toBe('trusted');
    expect(low.reason).toMatch(/no separate low component/);
  });

  it('leaves pairs pending without a model, and gives pairs above the clean mean its probability', () => {
    expect(judge(undefined, 0.3, 100)).toMatchObject({ verdict: 'pending', reason: expect.stringMatching(/100/) });
    const model = fitScreen(catalog(7, 990, 10).x, policy, now);
    expect(judge(model, 5, 100).probability).toBe(judge(model, model.high.mean, 100).probability);
  });

  it('refits under another tower, text model or threshold', () => {
    const model = fitScreen(catalog(8, 200, 5).x, policy, now);
    expect(fitsPolicy(model, policy)).toBe(true);
    expect(fitsPolicy(model, { ...policy, tower: 'clean' })).toBe(false);
    expect(fitsPolicy(model, { ...policy, textModel: 'other' })).toBe(false);
    expect(fitsPolicy(model, { ...policy, threshold: 0.8 })).toBe(false);
  });
});

describe('rejudge', () => {
  const pending: CaptionScreening = {
    similarity: { robust: -0.2, clean: 0.5 },
    tower: 'robust',
    textModel: 't',
    verdict: 'pending',
    reason: 'not judged yet',
  };
  const model = fitScreen(catalog(9, 990, 10).x, policy, now);

  it('judges a pending pair with the new model in the policy tower', () => {
    expect(rejudge(pending, model, policy).verdict).toBe('suspicious');
    expect(rejudge(pending, model, { ...policy, tower: 'clean' })).toMatchObject({
      tower: 'clean',
      verdict: 'trusted',
    });
  });

  it('keeps what a person decided', () => {
    const accepted: CaptionScreening = { ...pending, verdict: 'trusted', review: 'accepted', reviewedAt: 'x' };
    expect(rejudge(accepted, model, policy)).toBe(accepted);
  });
});
