/**
 * Judging captions with a collection's mixture (SafeCLIP): fit two Gaussians to the screening tower's image–caption
 * similarities, trust a pair when its clean-component probability is at least the threshold, and flag the rest as
 * suspicious.
 *
 * The low component is measured rather than found: it is the distribution of the similarity of an image to an
 * unrelated caption (the collection's images paired with other images' captions), and EM fits only its weight and
 * the clean component. A free two-component fit splits a skewed clean population in two when mismatches are rare
 * (on the held-out catalog a 1 % swap was found by neither tower that way, and a clean catalog's lower tail came
 * close to being flagged); the measured one cannot. Without unrelated pairs (fewer than {@link MIN_UNRELATED}) the
 * fit is free. When the clean component and the low one overlap (Ashman's D below {@link MIN_SEPARATION}), the tower
 * cannot tell a matching caption from an unrelated one, and screening trusts every pair rather than guess.
 */
import { z } from 'zod';
import { ENCODER_ROLES, type CaptionScreening, type EncoderRole } from '@lookalike/core';
import { bicGain, fitMixture, highPosterior, separation, trustBoundary, type Mixture } from './mixture.js';

/** The components must be at least this far apart (Ashman's D) for the low one to mean a second population. */
export const MIN_SEPARATION = 2;
/** A free fit's two components must beat one by this much BIC (strong evidence) for the low one to count. */
export const MIN_BIC_GAIN = 10;
/** Unrelated pairs needed to measure the low component. */
export const MIN_UNRELATED = 20;

/** How a collection screens: its tower, threshold and minimum count, and the towers whose similarities it reads. */
export interface ScreeningPolicy {
  tower: EncoderRole;
  /** Clean-component probability a pair needs to be trusted (SafeCLIP: 0.9). */
  threshold: number;
  /** Captioned images the collection must hold before anything is judged. */
  minCount: number;
  /** The text tower and the screening image tower: a mixture fitted with other ones is refitted. */
  textModel: string;
  imageModel: string;
}

const component = z.strictObject({ weight: z.number(), mean: z.number(), sd: z.number().positive() });

/** A collection's fitted screen, as kept in the collection's metadata (key `screening`). */
export const screeningModelSchema = z.strictObject({
  tower: z.enum(ENCODER_ROLES),
  textModel: z.string(),
  imageModel: z.string(),
  threshold: z.number().gt(0).lt(1),
  fittedAt: z.string(),
  /** Captioned images the mixture was fitted to. */
  count: z.number().int().nonnegative(),
  low: component,
  high: component,
  separation: z.number(),
  bicGain: z.number(),
  /**
   * How the low component was had: `unrelated`, measured on this many pairs of an image and another image's
   * caption; `free`, fitted (too few unrelated pairs).
   */
  lowFrom: z.enum(['unrelated', 'free']),
  unrelatedPairs: z.number().int().nonnegative(),
  /** How many captioned images the collection held when the unrelated pairs were measured (0: free). */
  unrelatedMeasuredAt: z.number().int().nonnegative(),
  /** Whether the tower separates matching from unrelated captions here; when not, every pair is trusted. */
  separates: z.boolean(),
  /** The similarity below which a pair is suspicious; null when it does not separate. */
  boundary: z.number().nullable(),
});
/** A collection's fitted screen. */
export type ScreeningModel = z.infer<typeof screeningModelSchema>;

/** Mean and standard deviation. */
function moments(values: ArrayLike<number>): { mean: number; sd: number } {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i]!;
  const mean = sum / values.length;
  let ss = 0;
  for (let i = 0; i < values.length; i++) ss += (values[i]! - mean) ** 2;
  return { mean, sd: Math.sqrt(ss / values.length) };
}

/** The low component as measured before: its mean and spread, on how many pairs, at what collection size. */
export interface UnrelatedMoments {
  mean: number;
  sd: number;
  pairs: number;
  measuredAt: number;
}

/**
 * Fits the screen of a collection from its screening tower's similarities (at least two values) and, for the low
 * component, the similarities of unrelated pairs (an image and another image's caption) or their moments as measured
 * at an earlier fit.
 */
export function fitScreen(
  similarities: ArrayLike<number>,
  policy: ScreeningPolicy,
  now: Date,
  unrelated: ArrayLike<number> | UnrelatedMoments = [],
): ScreeningModel {
  const low: UnrelatedMoments | undefined =
    'measuredAt' in unrelated
      ? unrelated
      : unrelated.length >= MIN_UNRELATED
        ? { ...moments(unrelated), pairs: unrelated.length, measuredAt: similarities.length }
        : undefined;
  const measured = low !== undefined;
  const mixture: Mixture = fitMixture(similarities, low ? { low: { mean: low.mean, sd: low.sd } } : {});
  const d = separation(mixture);
  const gain = bicGain(mixture);
  const separates = measured
    ? d >= MIN_SEPARATION && mixture.high.mean > mixture.low.mean
    : d >= MIN_SEPARATION && gain >= MIN_BIC_GAIN && mixture.low.weight < 0.5;
  return {
    tower: policy.tower,
    textModel: policy.textModel,
    imageModel: policy.imageModel,
    threshold: policy.threshold,
    fittedAt: now.toISOString(),
    count: mixture.count,
    low: mixture.low,
    high: mixture.high,
    separation: d,
    bicGain: gain,
    lowFrom: measured ? 'unrelated' : 'free',
    unrelatedPairs: low?.pairs ?? 0,
    unrelatedMeasuredAt: low?.measuredAt ?? 0,
    separates,
    boundary: separates ? trustBoundary(mixture, policy.threshold) : null,
  };
}

/** Whether `model` was fitted under `policy` (same tower, towers' models and threshold). */
export function fitsPolicy(model: ScreeningModel, policy: ScreeningPolicy): boolean {
  return (
    model.tower === policy.tower &&
    model.textModel === policy.textModel &&
    model.imageModel === policy.imageModel &&
    model.threshold === policy.threshold
  );
}

const fmt = (x: number): string => x.toFixed(3);

/** The verdict part of a screening: what the model (or its absence) says of one similarity. */
export type Judgement = Pick<CaptionScreening, 'verdict' | 'probability' | 'boundary' | 'reason' | 'fittedAt'>;

/**
 * Judges one pair's similarity in the screening tower: pending without a model (fewer than `minCount` captioned
 * images so far), trusted at or above the boundary, suspicious below it. Pairs above the clean mean get the clean
 * mean's probability: a caption closer to its image than usual is not the mismatch the screen looks for.
 */
export function judge(model: ScreeningModel | undefined, similarity: number, minCount: number): Judgement {
  if (!model)
    return {
      verdict: 'pending',
      reason: `not judged yet: screening starts once the collection holds ${minCount} captioned images`,
    };
  const probability = highPosterior(model, Math.min(similarity, model.high.mean));
  if (model.boundary === null)
    return {
      verdict: 'trusted',
      probability,
      fittedAt: model.fittedAt,
      reason:
        model.lowFrom === 'unrelated'
          ? `the ${model.tower} tower does not separate matching captions from unrelated ones here (Ashman's D ${model.separation.toFixed(2)} < ${MIN_SEPARATION})`
          : `the collection's similarities show no separate low component (Ashman's D ${model.separation.toFixed(2)}, BIC gain ${model.bicGain.toFixed(1)})`,
    };
  const base = { probability, boundary: model.boundary, fittedAt: model.fittedAt };
  if (similarity >= model.boundary) return { verdict: 'trusted', ...base };
  return {
    verdict: 'suspicious',
    ...base,
    reason:
      `the caption's similarity to the image, ${fmt(similarity)} (${model.tower} tower), is below the trust ` +
      `boundary ${fmt(model.boundary)}: clean-component probability ${probability.toFixed(3)} < ${model.threshold} ` +
      `(the collection's captions: ${fmt(model.high.mean)} ± ${fmt(model.high.sd)}; ` +
      `${model.lowFrom === 'unrelated' ? 'unrelated captions' : 'a low component'}: ${fmt(model.low.mean)} ± ` +
      `${fmt(model.low.sd)}, ${(model.low.weight * 100).toFixed(1)} % of the pairs)`,
  };
}

/**
 * A screening as rejudged under a new model: a reviewed one keeps its verdict (a person decided), any other takes
 * the new judgement of its stored similarity in the policy's tower.
 */
export function rejudge(
  s: CaptionScreening,
  model: ScreeningModel | undefined,
  policy: ScreeningPolicy,
): CaptionScreening {
  if (s.review) return s;
  const { verdict: _v, probability: _p, boundary: _b, reason: _r, fittedAt: _f, ...rest } = s;
  return { ...rest, tower: policy.tower, ...judge(model, s.similarity[policy.tower], policy.minCount) };
}

/**
 * Whether a rejudged screening has the verdict (and tower) it had: a refit rewrites only the pairs whose verdict
 * changes, so a pair's probability and boundary are those of the fit that last changed its verdict (rewriting every
 * stored pair at each refit cost ingest two thirds of its throughput at 1,000 images).
 */
export function sameVerdict(a: CaptionScreening, b: CaptionScreening): boolean {
  return a.verdict === b.verdict && a.tower === b.tower;
}
