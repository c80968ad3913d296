/** Test support: a model's pixel-space gradient against the loss it reports (not used by the package). */
import type { AttackGoal, PixelSpaceModel } from './model.js';

/**
 * Per query, the analytic directional derivative of its loss at `at`, ⟨grad, dir⟩ along a random ±1 direction, and
 * the central finite difference of `lossOf` along it with h = 1e-3.
 */
export async function directionalDerivatives(
  model: PixelSpaceModel,
  at: Float32Array,
  n: number,
  anchors: Float32Array,
  goal: AttackGoal,
  grad: Float32Array,
  random: () => number,
): Promise<{ analytic: number; numeric: number }[]> {
  const dir = Float32Array.from(at, () => (random() < 0.5 ? -1 : 1));
  const h = 1e-3;
  const plus = await model.lossOf(
    Float32Array.from(at, (v, i) => v + h * dir[i]!),
    n,
    anchors,
    goal,
  );
  const minus = await model.lossOf(
    Float32Array.from(at, (v, i) => v - h * dir[i]!),
    n,
    anchors,
    goal,
  );
  const per = at.length / n;
  return Array.from({ length: n }, (_, q) => {
    let analytic = 0;
    for (let i = q * per; i < (q + 1) * per; i++) analytic += grad[i]! * dir[i]!;
    return { analytic, numeric: (plus.loss[q]! - minus.loss[q]!) / (2 * h) };
  });
}
