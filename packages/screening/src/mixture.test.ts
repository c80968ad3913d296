import { describe, expect, it } from 'vitest';
import { gaussian, seededRandom } from '@lookalike/attacks';
import { bicGain, fitMixture, highPosterior, separation, trustBoundary } from './mixture.js';

function sample(seed: number, parts: { n: number; mean: number; sd: number }[]): number[] {
  const random = seededRandom(seed);
  const z = () => gaussian(random);
  return parts.flatMap((p) => Array.from({ length: p.n }, () => p.mean + p.sd * z()));
}

describe('fitMixture', () => {
  it('recovers two components of known weight, mean and spread', () => {
    const x = sample(1, [
      { n: 1800, mean: 0.6, sd: 0.07 },
      { n: 200, mean: 0.0, sd: 0.1 },
    ]);
    const m = fitMixture(x);
    expect(m.converged).toBe(true);
    expect(m.high.mean).toBeCloseTo(0.6, 2);
    expect(m.low.mean).toBeCloseTo(0.0, 1);
    expect(m.low.weight).toBeGreaterThan(0.08);
    expect(m.low.weight).toBeLessThan(0.12);
    expect(m.high.sd).toBeGreaterThan(0.06);
    expect(m.high.sd).toBeLessThan(0.08);
    expect(separation(m)).toBeGreaterThan(4);
    expect(bicGain(m)).toBeGreaterThan(100);
  });

  it('finds a 1 % low component among 5,000 values', () => {
    const x = sample(2, [
      { n: 4950, mean: 0.58, sd: 0.07 },
      { n: 50, mean: -0.04, sd: 0.18 },
    ]);
    const m = fitMixture(x);
    expect(m.low.weight).toBeGreaterThan(0.005);
    expect(m.low.weight).toBeLessThan(0.02);
    expect(m.low.mean).toBeLessThan(0.1);
  });

  it('is deterministic and ignores the order of the values', () => {
    const x = sample(3, [
      { n: 500, mean: 0.5, sd: 0.1 },
      { n: 50, mean: 0.1, sd: 0.1 },
    ]);
    const a = fitMixture(x);
    const b = fitMixture([...x].reverse());
    expect(b.low.mean).toBeCloseTo(a.low.mean, 8);
    expect(b.high.sd).toBeCloseTo(a.high.sd, 8);
    expect(fitMixture(x)).toEqual(a);
  });

  it('keeps components apart on one Gaussian: little separation, no BIC gain worth a second component', () => {
    const m = fitMixture(sample(4, [{ n: 3000, mean: 0.6, sd: 0.07 }]));
    expect(separation(m) < 2 || bicGain(m) < 10).toBe(true);
  });

  it('handles constant values without dividing by zero', () => {
    const m = fitMixture([0.5, 0.5, 0.5, 0.5]);
    expect(Number.isFinite(m.logLikelihood)).toBe(true);
    expect(m.low.sd).toBeGreaterThan(0);
  });

  it('refuses fewer than two values and values that are not finite', () => {
    expect(() => fitMixture([0.3])).toThrow(RangeError);
    expect(() => fitMixture([0.3, Number.NaN])).toThrow(/finite/);
  });
});

describe('fitMixture with the low component fixed', () => {
  it('keeps its mean and spread and fits the weights and the high component', () => {
    const x = sample(21, [
      { n: 1900, mean: 0.6, sd: 0.07 },
      { n: 100, mean: 0.0, sd: 0.15 },
    ]);
    const m = fitMixture(x, { low: { mean: 0.0, sd: 0.15 } });
    expect(m.parameters).toBe(3);
    expect(m.low.mean).toBe(0);
    expect(m.low.sd).toBe(0.15);
    expect(m.low.weight).toBeCloseTo(0.05, 2);
    expect(m.high.mean).toBeCloseTo(0.6, 2);
    expect(() => fitMixture(x, { low: { mean: 0, sd: 0 } })).toThrow(RangeError);
  });
});

describe('trustBoundary', () => {
  it('is where the clean posterior crosses the threshold, between the means', () => {
    const m = {
      low: { weight: 0.1, mean: 0, sd: 0.1 },
      high: { weight: 0.9, mean: 0.6, sd: 0.07 },
    };
    const b = trustBoundary(m, 0.9);
    expect(b).toBeGreaterThan(0);
    expect(b).toBeLessThan(0.6);
    expect(highPosterior(m, b)).toBeCloseTo(0.9, 6);
    expect(highPosterior(m, b - 0.01)).toBeLessThan(0.9);
    expect(trustBoundary(m, 0.99)).toBeGreaterThan(b);
  });
});
