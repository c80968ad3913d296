/**
 * A two-component 1-D Gaussian mixture fitted by expectation–maximisation, as SafeCLIP fits one to image–caption
 * similarities: the high component holds the pairs whose caption says what the image shows, the low one the
 * mismatched or poisoned pairs. The low component can be fixed (its mean and spread known, e.g. measured on pairs of
 * an image and an unrelated caption), and EM then fits only the weights and the high component. The fit is
 * deterministic (fixed starts from quantiles of the data, no random draws), so every process that fits the same
 * similarities gets the same mixture.
 */

/** One Gaussian component: its weight in the mixture, its mean and its standard deviation. */
export interface Component {
  weight: number;
  mean: number;
  sd: number;
}

/** A fitted mixture: the low and the high component (by mean) and how the fit went. */
export interface Mixture {
  low: Component;
  high: Component;
  /** Log-likelihood of the data under the mixture. */
  logLikelihood: number;
  /** Log-likelihood of the data under one Gaussian (its mean and standard deviation). */
  singleLogLikelihood: number;
  /** EM iterations of the start that won. */
  iterations: number;
  converged: boolean;
  count: number;
  /** Free parameters: 5, or 3 with the low component fixed. */
  parameters: number;
}

/** Standard deviations never fall below this, so a component cannot collapse onto one value. */
export const MIN_SD = 1e-3;
const MAX_ITERATIONS = 500;
const TOLERANCE = 1e-10;
/** Where the low component starts, as quantiles of the data (the high one starts at the 75 % quantile). */
const LOW_STARTS = [0.01, 0.05, 0.25];

const LOG_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);

function logNormal(x: number, mean: number, sd: number): number {
  const z = (x - mean) / sd;
  return -0.5 * z * z - Math.log(sd) - LOG_SQRT_2PI;
}

function logSumExp(a: number, b: number): number {
  const m = Math.max(a, b);
  return m === -Infinity ? -Infinity : m + Math.log(Math.exp(a - m) + Math.exp(b - m));
}

function quantile(sorted: Float64Array, q: number): number {
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo);
}

interface Run {
  low: Component;
  high: Component;
  logLikelihood: number;
  iterations: number;
  converged: boolean;
}

function em(x: Float64Array, start: [Component, Component], fixedLow: boolean): Run {
  const n = x.length;
  let [a, b] = start;
  const r = new Float64Array(n);
  let previous = -Infinity;
  let logLikelihood = -Infinity;
  let iterations = 0;
  let converged = false;
  while (iterations < MAX_ITERATIONS) {
    iterations++;
    // E step: the responsibility of component b for each value.
    logLikelihood = 0;
    const la = Math.log(a.weight);
    const lb = Math.log(b.weight);
    for (let i = 0; i < n; i++) {
      const pa = la + logNormal(x[i]!, a.mean, a.sd);
      const pb = lb + logNormal(x[i]!, b.mean, b.sd);
      const total = logSumExp(pa, pb);
      r[i] = Math.exp(pb - total);
      logLikelihood += total;
    }
    // M step.
    let nb = 0;
    let sb = 0;
    let sa = 0;
    for (let i = 0; i < n; i++) {
      nb += r[i]!;
      sb += r[i]! * x[i]!;
      sa += (1 - r[i]!) * x[i]!;
    }
    const na = n - nb;
    // A component that lost every value keeps a sliver of weight at its old place; EM would otherwise divide by 0.
    const floor = 1e-9 * n;
    const meanA = na > floor ? sa / na : a.mean;
    const meanB = nb > floor ? sb / nb : b.mean;
    let va = 0;
    let vb = 0;
    for (let i = 0; i < n; i++) {
      const da = x[i]! - meanA;
      const db = x[i]! - meanB;
      va += (1 - r[i]!) * da * da;
      vb += r[i]! * db * db;
    }
    a = fixedLow
      ? { ...a, weight: Math.max(na, floor) / n }
      : {
          weight: Math.max(na, floor) / n,
          mean: meanA,
          sd: na > floor ? Math.max(MIN_SD, Math.sqrt(va / na)) : a.sd,
        };
    b = {
      weight: Math.max(nb, floor) / n,
      mean: meanB,
      sd: nb > floor ? Math.max(MIN_SD, Math.sqrt(vb / nb)) : b.sd,
    };
    if (Math.abs(logLikelihood - previous) <= TOLERANCE * Math.max(1, Math.abs(logLikelihood))) {
      converged = true;
      break;
    }
    previous = logLikelihood;
  }
  const [low, high] = fixedLow || a.mean <= b.mean ? [a, b] : [b, a];
  return { low, high, logLikelihood, iterations, converged };
}

/**
 * Fits a two-component mixture to `values` by EM from a few fixed starts (the low component at the 1 %, 5 % and 25 %
 * quantiles, the high one at the 75 % quantile, each with the data's standard deviation), keeping the start with the
 * highest log-likelihood. With `low` given, the low component keeps that mean and spread and starts at weights 1 %,
 * 5 % and 25 %. Needs at least two finite values.
 */
export function fitMixture(values: ArrayLike<number>, options: { low?: Omit<Component, 'weight'> } = {}): Mixture {
  const x = Float64Array.from(values);
  if (x.length < 2) throw new RangeError(`a mixture needs at least 2 values, got ${x.length}`);
  for (const v of x) if (!Number.isFinite(v)) throw new RangeError(`a mixture needs finite values, got ${v}`);
  const n = x.length;
  let sum = 0;
  for (const v of x) sum += v;
  const mean = sum / n;
  let ss = 0;
  for (const v of x) ss += (v - mean) ** 2;
  const sd = Math.max(MIN_SD, Math.sqrt(ss / n));
  let singleLogLikelihood = 0;
  for (const v of x) singleLogLikelihood += logNormal(v, mean, sd);
  const sorted = Float64Array.from(x).sort();
  const highStart = quantile(sorted, 0.75);
  let best: Run | undefined;
  const fixed = options.low;
  if (fixed) {
    if (!(Number.isFinite(fixed.mean) && fixed.sd > 0))
      throw new RangeError('a fixed component needs a mean and sd > 0');
    for (const w of LOW_STARTS) {
      const run = em(
        x,
        [
          { weight: w, mean: fixed.mean, sd: Math.max(MIN_SD, fixed.sd) },
          { weight: 1 - w, mean: highStart, sd },
        ],
        true,
      );
      if (!best || run.logLikelihood > best.logLikelihood) best = run;
    }
    return { ...best!, singleLogLikelihood, count: n, parameters: 3 };
  }
  for (const q of LOW_STARTS) {
    const lowStart = quantile(sorted, q);
    if (!(lowStart < highStart)) continue;
    const run = em(
      x,
      [
        { weight: 0.5, mean: lowStart, sd },
        { weight: 0.5, mean: highStart, sd },
      ],
      false,
    );
    if (!best || run.logLikelihood > best.logLikelihood) best = run;
  }
  // All the starts coincide (three quarters of the values equal): one Gaussian is the mixture.
  best ??= {
    low: { weight: 0.5, mean, sd },
    high: { weight: 0.5, mean, sd },
    logLikelihood: singleLogLikelihood,
    iterations: 0,
    converged: true,
  };
  return { ...best, singleLogLikelihood, count: n, parameters: 5 };
}

/** The probability that `x` comes from the high component. */
export function highPosterior(m: Pick<Mixture, 'low' | 'high'>, x: number): number {
  const pl = Math.log(m.low.weight) + logNormal(x, m.low.mean, m.low.sd);
  const ph = Math.log(m.high.weight) + logNormal(x, m.high.mean, m.high.sd);
  return Math.exp(ph - logSumExp(pl, ph));
}

/**
 * Ashman's D, how far apart the two components are: |μ₁ − μ₂| · √2 / √(σ₁² + σ₂²). Above 2 a mixture of two
 * Gaussians is bimodal enough that the components mean two populations, not one skewed one.
 */
export function separation(m: Pick<Mixture, 'low' | 'high'>): number {
  return (Math.abs(m.high.mean - m.low.mean) * Math.SQRT2) / Math.sqrt(m.low.sd ** 2 + m.high.sd ** 2);
}

/**
 * How much better two components explain the data than one, as the drop in the Bayesian information criterion
 * (the mixture's parameters against 2): positive when the second component is worth them; above 10 is strong
 * evidence.
 */
export function bicGain(m: Mixture): number {
  const ln = Math.log(m.count);
  return 2 * ln - 2 * m.singleLogLikelihood - (m.parameters * ln - 2 * m.logLikelihood);
}

/**
 * The similarity below which a value's high-component probability falls under `threshold`, searched between the two
 * means (where the posterior rises from low to high). The low mean when even it is trusted, the high mean when even
 * that is not.
 */
export function trustBoundary(m: Pick<Mixture, 'low' | 'high'>, threshold: number): number {
  let lo = m.low.mean;
  let hi = m.high.mean;
  if (highPosterior(m, lo) >= threshold) return lo;
  if (highPosterior(m, hi) < threshold) return hi;
  for (let i = 0; i < 100 && hi - lo > 1e-12; i++) {
    const mid = (lo + hi) / 2;
    if (highPosterior(m, mid) >= threshold) hi = mid;
    else lo = mid;
  }
  return hi;
}
