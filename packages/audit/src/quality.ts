/**
 * The audit's quality part: each tower's quality model (PerceptCLIP-style, made from the tower) as a gate that grades
 * photos `low` under its threshold, attacked in pixel space. Seeded photos of the catalog generator — half as
 * rendered, half with one distortion at severity ≥ 0.6 (quality ≤ 0.4: unusable) — are scored clean, then attacked
 * with the audit's attack and steps at ℓ∞ 4/255: a good photo's score pushed down (`lower`), a bad one's pushed up
 * (`raise`). A decision flips when a photo the gate graded right crosses the threshold. A gate that one crafted photo
 * can fool is not a gate: this is the number that says how far to trust it.
 */
import {
  ENCODER_ROLES,
  type EncoderRole,
  type PreprocessMode,
  type QualityAttackExample,
  type QualityAttackMetrics,
  type QualityAttackOutcome,
} from '@lookalike/core';
import { runAttack, type AttackConfig, type PixelSpaceModel } from '@lookalike/attacks';
import { fromBytes, type DecodeLimits } from '@lookalike/imaging';
import type { AuditOptions } from '@lookalike/queue';
import { distortionRecipe, renderDistorted, renderImage, sampleSpec, type DistortionRecipe } from '@lookalike/synth';
import { pixelsToPng } from './png.js';

/** Side of the rendered photos (the catalog's default; each model resizes them as ingest would). */
export const QUALITY_IMAGE_SIZE = 256;

/** The budget the quality gate is attacked at. */
export const QUALITY_EPSILON = 4 / 255;

/** A tower's quality model as an attacker sees it, and the threshold of its gate. */
export interface QualityGate {
  model: PixelSpaceModel;
  threshold: number;
}

/** What the quality part needs: each tower's gate, or why it has none. */
export interface QualityDeps {
  gates: Record<EncoderRole, QualityGate | string>;
  decode?: DecodeLimits;
  preprocess?: PreprocessMode;
}

/** What one batch's share of the photos returns. */
export interface QualityBatchOutcome {
  outcomes: QualityAttackOutcome[];
  examples: QualityAttackExample[];
  gradientEvaluations: number;
  seconds: number;
}

/** Photo `index` of the audit's seeded sequence: even indices as rendered, odd ones distorted hard. */
export function qualityPhoto(seed: number, index: number): { kind: 'good' | 'bad'; recipe: DistortionRecipe } {
  return index % 2 === 0
    ? { kind: 'good', recipe: { distortions: [], quality: 1 } }
    : { kind: 'bad', recipe: distortionRecipe(seed, index, true) };
}

/** Attacks photos `first` … `first + count − 1` of the audit's seeded sequence against each tower's gate. */
export async function qualityBatch(
  deps: QualityDeps,
  range: { first: number; count: number },
  options: AuditOptions,
): Promise<QualityBatchOutcome> {
  const started = performance.now();
  const { seed } = options.quality;
  const photos = Array.from({ length: range.count }, (_, i) => {
    const index = range.first + i;
    return { index, ...qualityPhoto(seed, index) };
  });
  const bytes = await Promise.all(
    photos.map(({ index, kind, recipe }) => {
      const spec = sampleSpec(seed, index);
      return kind === 'good'
        ? renderImage(spec, QUALITY_IMAGE_SIZE, 'png')
        : renderDistorted(spec, QUALITY_IMAGE_SIZE, recipe, seed, index);
    }),
  );
  const out: QualityBatchOutcome = { outcomes: [], examples: [], gradientEvaluations: 0, seconds: 0 };
  for (const encoder of ENCODER_ROLES) {
    const gate = deps.gates[encoder];
    if (typeof gate === 'string') continue;
    const { model, threshold } = gate;
    const per = 3 * model.size * model.size;
    const pixelsOf = async (which: readonly number[]): Promise<Float32Array> => {
      const x = new Float32Array(which.length * per);
      const decoded = await Promise.all(
        which.map((i) => fromBytes(bytes[i]!, model.spec, deps.decode, deps.preprocess)),
      );
      decoded.forEach((p, k) => x.set(p, k * per));
      return x;
    };
    const examplesLeft = { count: options.quality.examples };
    for (const kind of ['good', 'bad'] as const) {
      const which = photos.flatMap((p, i) => (p.kind === kind ? [i] : []));
      if (which.length === 0) continue;
      const n = which.length;
      const x = await pixelsOf(which);
      const clean = await model.embed(x, n);
      const config: AttackConfig = {
        name: options.attack,
        norm: 'linf',
        epsilon: QUALITY_EPSILON,
        steps: options.steps,
        restarts: options.restarts,
        // The same seed for both towers: identical random starts.
        seed: (seed + range.first * 7919 + (kind === 'good' ? 0 : 104729)) >>> 0,
      };
      const goal = kind === 'good' ? 'lower' : 'raise';
      const attacked = await runAttack({ model, x, n, anchors: new Float32Array(n), goal }, config);
      out.gradientEvaluations += attacked.gradientEvaluations * n;
      for (let k = 0; k < n; k++) {
        const photo = photos[which[k]!]!;
        const cleanScore = clean[k]!;
        const attackedScore = attacked.embedding[k]!;
        out.outcomes.push({
          index: photo.index,
          kind,
          distortions: photo.recipe.distortions.map((d) => ({ kind: d.kind, severity: d.severity })),
          target: photo.recipe.quality,
          encoder,
          epsilon: QUALITY_EPSILON,
          threshold,
          cleanScore,
          attackedScore,
        });
        if (flipped(kind, cleanScore, attackedScore, threshold) && examplesLeft.count > 0) {
          examplesLeft.count--;
          const image = (v: Float32Array) => v.subarray(k * per, (k + 1) * per);
          out.examples.push({
            index: photo.index,
            kind,
            encoder,
            clean: await pixelsToPng(image(x), model.size),
            adversarial: await pixelsToPng(image(attacked.adversarial), model.size),
            cleanScore,
            attackedScore,
            threshold,
          });
        }
      }
    }
  }
  out.seconds = (performance.now() - started) / 1000;
  return out;
}

/** Whether the gate graded the photo right before the attack. */
export function gradedRight(kind: 'good' | 'bad', score: number, threshold: number): boolean {
  return kind === 'good' ? score >= threshold : score < threshold;
}

/** Whether a right decision became wrong under attack. */
export function flipped(kind: 'good' | 'bad', clean: number, attacked: number, threshold: number): boolean {
  return gradedRight(kind, clean, threshold) && !gradedRight(kind, attacked, threshold);
}

/** Per tower: right decisions, flipped ones, and the mean score shift. */
export function summarizeQuality(
  outcomes: readonly QualityAttackOutcome[],
  models: Partial<Record<EncoderRole, string>>,
): QualityAttackMetrics[] {
  return ENCODER_ROLES.flatMap((encoder) => {
    const mine = outcomes.filter((o) => o.encoder === encoder);
    if (mine.length === 0) return [];
    const count = (kind: 'good' | 'bad') => {
      const of = mine.filter((o) => o.kind === kind);
      const right = of.filter((o) => gradedRight(kind, o.cleanScore, o.threshold));
      return {
        images: of.length,
        correct: right.length,
        flipped: right.filter((o) => !gradedRight(kind, o.attackedScore, o.threshold)).length,
      };
    };
    const good = count('good');
    const bad = count('bad');
    const correct = good.correct + bad.correct;
    return [
      {
        encoder,
        model: models[encoder] ?? '',
        epsilon: mine[0]!.epsilon,
        threshold: mine[0]!.threshold,
        good,
        bad,
        flippedShare: correct ? (good.flipped + bad.flipped) / correct : 0,
        meanShift: mine.reduce((s, o) => s + Math.abs(o.attackedScore - o.cleanScore), 0) / mine.length,
      },
    ];
  });
}
