/**
 * The audit's perceptual part: the towers used as a metric (`1 − cos`) on 2AFC triplets the generator renders — a
 * reference, a re-render of the same item, and its edited twin or another item of the same part — clean and with
 * the reference attacked by the binary margin loss of Croce et al. (fra31/perceptual-metrics): the attack maximises
 * cos(φ(ref + δ), φ(other)) − cos(φ(ref + δ), φ(same)), a targeted attack whose anchor is φ(other) − φ(same), and
 * the decision flips when that margin turns positive. Budgets: ℓ∞ 4/255 and ℓ2 3·S/224 (the paper's ε = 3 at 224
 * px, at the same size per pixel). The duplicate decision is attacked too, at ℓ∞ 4/255: can an upload hide an
 * existing duplicate (the re-render pushed away from the reference past the tower's calibrated threshold) or be
 * grouped with an image it is not (the other image pulled under it)?
 */
import {
  ENCODER_ROLES,
  dot,
  type DuplicateAttackOutcome,
  type EncoderRole,
  type PreprocessMode,
  type TwoAfcExample,
  type TwoAfcOutcome,
} from '@lookalike/core';
import { runAttack, type AttackConfig, type PixelSpaceModel } from '@lookalike/attacks';
import { renderTriplet, triplets as tripletsOf } from '@lookalike/distance';
import { fromBytes, type DecodeLimits } from '@lookalike/imaging';
import type { AuditOptions } from '@lookalike/queue';
import { pixelsToPng } from './png.js';

/** Side of the rendered triplet images (the catalog's default; each tower resizes them as ingest would). */
export const TRIPLET_SIZE = 256;

/** The 2AFC budgets for a tower of input side `size`. */
export function twoAfcBudgets(size: number): { norm: 'linf' | 'l2'; epsilon: number }[] {
  return [
    { norm: 'linf', epsilon: 4 / 255 },
    { norm: 'l2', epsilon: (3 * size) / 224 },
  ];
}

/** What the perceptual part needs: the towers as an attacker sees them, and each one's duplicate threshold. */
export interface PerceptualDeps {
  models: Record<EncoderRole, PixelSpaceModel>;
  /** Each tower's calibrated `same item` threshold, or why it has none. */
  duplicateThresholds: Record<EncoderRole, number | string>;
  decode?: DecodeLimits;
  preprocess?: PreprocessMode;
}

/** What one batch's share of the triplets returns. */
export interface PerceptualBatchOutcome {
  twoAfc: TwoAfcOutcome[];
  duplicates: DuplicateAttackOutcome[];
  examples: TwoAfcExample[];
  gradientEvaluations: number;
  seconds: number;
}

/** Rows `[n, D]` of a − b. */
function difference(a: Float32Array, b: Float32Array): Float32Array {
  return a.map((v, i) => v - b[i]!);
}

/** Runs triplets `first` … `first + count − 1` of the audit's seeded sequence against both towers. */
export async function perceptualBatch(
  deps: PerceptualDeps,
  range: { first: number; count: number },
  options: AuditOptions,
): Promise<PerceptualBatchOutcome> {
  const started = performance.now();
  const list = tripletsOf(options.perceptual.seed, range.first, range.count);
  const images = await Promise.all(list.map((t) => renderTriplet(t, TRIPLET_SIZE)));
  const n = list.length;
  const out: PerceptualBatchOutcome = { twoAfc: [], duplicates: [], examples: [], gradientEvaluations: 0, seconds: 0 };
  for (const encoder of ENCODER_ROLES) {
    const model = deps.models[encoder];
    const S = model.size;
    const per = 3 * S * S;
    const D = model.dim;
    const pixelsOf = async (which: 0 | 1 | 2): Promise<Float32Array> => {
      const x = new Float32Array(n * per);
      const decoded = await Promise.all(
        images.map((t) => fromBytes(t[which], model.spec, deps.decode, deps.preprocess)),
      );
      decoded.forEach((p, i) => x.set(p, i * per));
      return x;
    };
    const [xRef, xSame, xOther] = [await pixelsOf(0), await pixelsOf(1), await pixelsOf(2)];
    const [eRef, eSame, eOther] = [
      await model.embed(xRef, n),
      await model.embed(xSame, n),
      await model.embed(xOther, n),
    ];
    const row = (x: Float32Array, i: number, width: number) => x.subarray(i * width, (i + 1) * width);
    // cos(ref, other) − cos(ref, same) per triplet (unit rows): negative when the decision is right.
    const clean = list.map((_, i) => dot(row(eRef, i, D), row(eOther, i, D)) - dot(row(eRef, i, D), row(eSame, i, D)));
    const examplesLeft = { count: options.perceptual.examples };
    for (const [b, budget] of twoAfcBudgets(S).entries()) {
      const config: AttackConfig = {
        name: options.attack,
        norm: budget.norm,
        epsilon: budget.epsilon,
        steps: options.steps,
        restarts: options.restarts,
        // The same seed for both towers: identical random starts.
        seed: (options.perceptual.seed + range.first * 7919 + b * 104729) >>> 0,
      };
      // A targeted attack on the anchor φ(other) − φ(same) maximises exactly the margin (the loss is linear in it).
      const attacked = await runAttack(
        { model, x: xRef, n, anchors: difference(eOther, eSame), goal: 'targeted' },
        config,
      );
      out.gradientEvaluations += attacked.gradientEvaluations * n;
      for (let i = 0; i < n; i++) {
        const t = list[i]!;
        const attackedMargin = attacked.loss[i]!;
        out.twoAfc.push({
          index: t.index,
          kind: t.kind,
          encoder,
          norm: budget.norm,
          epsilon: budget.epsilon,
          cleanMargin: clean[i]!,
          attackedMargin,
        });
        if (budget.norm === 'linf' && clean[i]! < 0 && attackedMargin >= 0 && examplesLeft.count > 0) {
          examplesLeft.count--;
          const image = (x: Float32Array) => row(x, i, per);
          out.examples.push({
            index: t.index,
            kind: t.kind,
            encoder,
            norm: budget.norm,
            epsilon: budget.epsilon,
            reference: await pixelsToPng(image(xRef), S),
            adversarial: await pixelsToPng(image(attacked.adversarial), S),
            same: await pixelsToPng(image(xSame), S),
            other: await pixelsToPng(image(xOther), S),
            cleanMargin: clean[i]!,
            attackedMargin,
          });
        }
      }
    }
    const threshold = deps.duplicateThresholds[encoder];
    if (typeof threshold === 'number') {
      const config: AttackConfig = {
        name: options.attack,
        norm: 'linf',
        epsilon: 4 / 255,
        steps: options.steps,
        restarts: options.restarts,
        seed: (options.perceptual.seed + range.first * 7919 + 3 * 104729) >>> 0,
      };
      // Hide: the re-render pushed away from the reference (loss 1 − cos, the distance itself).
      const hide = await runAttack({ model, x: xSame, n, anchors: eRef, goal: 'untargeted' }, config);
      // Forge: the other image pulled toward the reference (loss cos; distance 1 − loss).
      const forge = await runAttack({ model, x: xOther, n, anchors: eRef, goal: 'targeted' }, config);
      out.gradientEvaluations += (hide.gradientEvaluations + forge.gradientEvaluations) * n;
      for (let i = 0; i < n; i++) {
        const cos = (a: Float32Array, b: Float32Array) => dot(row(a, i, D), row(b, i, D));
        out.duplicates.push({
          index: list[i]!.index,
          encoder,
          threshold,
          duplicate: { clean: 1 - cos(eSame, eRef), attacked: hide.loss[i]! },
          impostor: { clean: 1 - cos(eOther, eRef), attacked: 1 - forge.loss[i]! },
        });
      }
    }
  }
  out.seconds = (performance.now() - started) / 1000;
  return out;
}
