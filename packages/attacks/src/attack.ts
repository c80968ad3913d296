/**
 * White-box attacks in [0,1] pixel space: ℓ∞ and ℓ2 PGD with random start (Madry et al. 2018) and APGD (Croce &
 * Hein 2020, as in the AutoAttack reference `autopgd_base.py`: step size 2ε halved at checkpoints when the loss
 * oscillates or stalls, momentum 0.75, restarts from the best point). Batched: every array is `[n, 3, S, S]`
 * with per-query state, and each query keeps its best iterate (highest loss) across steps and restarts.
 */
import type { AttackGoal, Evaluation, PixelSpaceModel } from './model.js';
import { gaussian, seededRandom } from './random.js';

/** How to attack. */
export interface AttackConfig {
  name: 'pgd' | 'apgd';
  norm: 'linf' | 'l2';
  /** Radius of the ball in [0,1] pixel units (e.g. 4/255 for ℓ∞). */
  epsilon: number;
  /** Gradient steps per restart. */
  steps: number;
  /** PGD's step size; default 2.5·ε/steps (Madry et al.). APGD sets its own (2ε, then halved). */
  stepSize?: number;
  /** Independent random starts; each query keeps its best. Default 1. */
  restarts?: number;
  /** Start from a uniform point of the ball (default) or from the clean image. */
  randomStart?: boolean;
  seed?: number;
}

/** What an attack returns for each of the `n` queries. */
export interface AttackResult {
  /** `[n, 3, S, S]` in [0,1], within ε of the input. */
  adversarial: Float32Array;
  /** `[n]` the loss at `adversarial` (the best found). */
  loss: Float32Array;
  /** `[n, D]` unit embeddings of `adversarial`. */
  embedding: Float32Array;
  /** Mean best loss after each step of the last restart (for convergence plots and checks). */
  trace: number[];
  /** Gradient (forward + backward) evaluations per query. */
  gradientEvaluations: number;
}

/** Validates a config and fills in defaults. */
export function resolveConfig(config: AttackConfig): Required<AttackConfig> {
  const { epsilon, steps } = config;
  if (!(epsilon >= 0) || !Number.isFinite(epsilon)) throw new RangeError(`ε must be ≥ 0, got ${epsilon}`);
  if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`steps must be a positive integer, got ${steps}`);
  const restarts = config.restarts ?? 1;
  if (!Number.isInteger(restarts) || restarts < 1) throw new RangeError(`restarts must be ≥ 1, got ${restarts}`);
  return {
    name: config.name,
    norm: config.norm,
    epsilon,
    steps,
    stepSize: config.stepSize ?? (2.5 * epsilon) / steps,
    restarts,
    randomStart: config.randomStart ?? true,
    seed: config.seed ?? 0,
  };
}

/** What an attack works on: `n` queries of a model's pixel input, each with the anchor its loss is measured against. */
export interface AttackProblem {
  model: PixelSpaceModel;
  /** `[n, 3, S, S]` clean pixels in [0,1]. */
  x: Float32Array;
  n: number;
  /** `[n, D]` unit vectors: each query's clean embedding (untargeted) or its target (targeted). */
  anchors: Float32Array;
  goal: AttackGoal;
}

/** Attacks the problem's `n` queries at once. */
export async function runAttack(problem: AttackProblem, config: AttackConfig): Promise<AttackResult> {
  const { model, x, n, anchors, goal } = problem;
  const c = resolveConfig(config);
  const per = x.length / n;
  if (!Number.isInteger(per) || per !== 3 * model.size * model.size)
    throw new RangeError(`x holds ${x.length} values; [${n}, 3, ${model.size}, ${model.size}] expected`);
  if (c.epsilon === 0) {
    // Nothing to search: the clean image is the only point of the ball.
    const ev = await model.lossOf(x, n, anchors, goal);
    return {
      adversarial: x.slice(),
      loss: ev.loss,
      embedding: ev.embedding,
      trace: [],
      gradientEvaluations: 0,
    };
  }
  const best = new Best(x, n, model.dim);
  const random = seededRandom(c.seed);
  let trace: number[] = [];
  for (let r = 0; r < c.restarts; r++) {
    const start = x.slice();
    if (c.randomStart) randomPoint(start, x, n, c, random);
    trace = c.name === 'apgd' ? await apgd(problem, start, c, best) : await pgd(problem, start, c, best);
  }
  return {
    adversarial: best.x,
    loss: best.loss,
    embedding: best.embedding,
    trace,
    gradientEvaluations: c.restarts * (c.name === 'apgd' ? c.steps + 1 : c.steps),
  };
}

/** Per-query best iterate. */
class Best {
  readonly x: Float32Array;
  readonly loss: Float32Array;
  readonly embedding: Float32Array;
  private readonly per: number;

  constructor(
    x: Float32Array,
    private readonly n: number,
    private readonly dim: number,
  ) {
    this.x = x.slice();
    this.loss = new Float32Array(n).fill(-Infinity);
    this.embedding = new Float32Array(n * dim);
    this.per = x.length / n;
  }

  /** Takes the iterates that beat the best so far; returns which did. */
  update(xAdv: Float32Array, ev: Evaluation): boolean[] {
    const improved: boolean[] = [];
    for (let q = 0; q < this.n; q++) {
      const better = ev.loss[q]! > this.loss[q]!;
      improved.push(better);
      if (!better) continue;
      this.loss[q] = ev.loss[q]!;
      this.x.set(xAdv.subarray(q * this.per, (q + 1) * this.per), q * this.per);
      this.embedding.set(ev.embedding.subarray(q * this.dim, (q + 1) * this.dim), q * this.dim);
    }
    return improved;
  }

  mean(): number {
    let s = 0;
    for (const l of this.loss) s += l;
    return s / this.n;
  }
}

/** Projects `xAdv` onto {‖xAdv − x‖ ≤ ε} ∩ [0,1] per query, in place. */
export function project(xAdv: Float32Array, x: Float32Array, n: number, norm: 'linf' | 'l2', eps: number): void {
  const per = x.length / n;
  if (norm === 'linf') {
    clampInto(xAdv, boxOf(x, eps));
    return;
  }
  for (let q = 0; q < n; q++) {
    const start = q * per;
    let s = 0;
    for (let i = start; i < start + per; i++) s += (xAdv[i]! - x[i]!) ** 2;
    const norm2 = Math.sqrt(s);
    const scale = norm2 > eps ? eps / norm2 : 1;
    for (let i = start; i < start + per; i++) {
      const v = x[i]! + (xAdv[i]! - x[i]!) * scale;
      xAdv[i] = v < 0 ? 0 : v > 1 ? 1 : v;
    }
  }
}

/** The ℓ∞ ball around `x` intersected with [0,1], as per-value bounds (what ℓ∞ projection clamps to). */
interface Box {
  lo: Float64Array;
  hi: Float64Array;
}

const boxes = new WeakMap<Float32Array, { eps: number; box: Box }>();

/** The box of `x` and ε, computed once per clean batch and budget (projection runs twice per step). */
function boxOf(x: Float32Array, eps: number): Box {
  const cached = boxes.get(x);
  if (cached?.eps === eps) return cached.box;
  const lo = new Float64Array(x.length);
  const hi = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    lo[i] = Math.max(0, x[i]! - eps);
    hi[i] = Math.min(1, x[i]! + eps);
  }
  const box = { lo, hi };
  boxes.set(x, { eps, box });
  return box;
}

function clampInto(values: Float32Array, { lo, hi }: Box): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    const a = lo[i]!;
    const b = hi[i]!;
    values[i] = v < a ? a : v > b ? b : v;
  }
}

/** A uniform point of the ℓ∞ box, or a point on the ℓ2 sphere in a random direction, clipped to [0,1]. */
function randomPoint(
  out: Float32Array,
  x: Float32Array,
  n: number,
  c: Required<AttackConfig>,
  random: () => number,
): void {
  if (c.norm === 'linf') {
    for (let i = 0; i < x.length; i++) out[i] = x[i]! + c.epsilon * (2 * random() - 1);
  } else {
    const per = x.length / n;
    for (let q = 0; q < n; q++) {
      const dir = new Float32Array(per);
      let s = 0;
      for (let i = 0; i < per; i++) {
        dir[i] = gaussian(random);
        s += dir[i]! * dir[i]!;
      }
      const scale = c.epsilon / Math.sqrt(s);
      for (let i = 0; i < per; i++) out[q * per + i] = x[q * per + i]! + dir[i]! * scale;
    }
  }
  project(out, x, n, c.norm, c.epsilon);
}

/** `xAdv += step_q · direction(g)` per query: sign(g) for ℓ∞, g/‖g‖₂ for ℓ2. */
function ascend(xAdv: Float32Array, grad: Float32Array, n: number, norm: 'linf' | 'l2', step: ArrayLike<number>): void {
  const per = xAdv.length / n;
  for (let q = 0; q < n; q++) {
    const start = q * per;
    const a = step[q]!;
    if (norm === 'linf') {
      for (let i = start; i < start + per; i++) xAdv[i] = xAdv[i]! + a * Math.sign(grad[i]!);
    } else {
      let s = 0;
      for (let i = start; i < start + per; i++) s += grad[i]! * grad[i]!;
      const k = a / (Math.sqrt(s) + 1e-12);
      for (let i = start; i < start + per; i++) xAdv[i] = xAdv[i]! + k * grad[i]!;
    }
  }
}

/** PGD from `xAdv` (updated in place): fixed steps of the gradient's direction, projected back into the ball. */
async function pgd(
  { model, x, n, anchors, goal }: AttackProblem,
  xAdv: Float32Array,
  c: Required<AttackConfig>,
  best: Best,
): Promise<number[]> {
  const trace: number[] = [];
  const step = new Float32Array(n).fill(c.stepSize);
  for (let s = 0; s < c.steps; s++) {
    const ev = await model.evaluate(xAdv, n, anchors, goal);
    best.update(xAdv, ev);
    trace.push(best.mean());
    ascend(xAdv, ev.grad!, n, c.norm, step);
    project(xAdv, x, n, c.norm, c.epsilon);
  }
  best.update(xAdv, await model.lossOf(xAdv, n, anchors, goal));
  trace[trace.length - 1] = best.mean();
  return trace;
}

/**
 * `out = x_k + α(z − x_k) + (1 − α)(x_k − x_{k−1})`; `out` may be `old`'s buffer. Element loops live in plain
 * functions: V8 does not optimise a loop inside an async function that awaits between its runs, and there they ran
 * about ten times slower.
 */
function momentumStep(out: Float32Array, x: Float32Array, z: Float32Array, old: Float32Array, alpha: number): void {
  for (let j = 0; j < x.length; j++) out[j] = x[j]! + alpha * (z[j]! - x[j]!) + (1 - alpha) * (x[j]! - old[j]!);
}

/** APGD's checkpoints as AutoAttack computes them: first after 22 % of the steps, then ever closer. */
function checkpointLengths(steps: number): { first: number; decrease: number; min: number } {
  return {
    first: Math.max(Math.floor(0.22 * steps), 1),
    decrease: Math.max(Math.floor(0.03 * steps), 1),
    min: Math.max(Math.floor(0.06 * steps), 1),
  };
}

/**
 * APGD (Croce & Hein 2020) from `start`: momentum steps whose size halves per query at checkpoints where the loss
 * oscillates or stalls, restarting that query from its best point. The three iterates (x_{k−1}, x_k, z) live in
 * buffers allocated once per restart and rotated.
 */
async function apgd(
  { model, x, n, anchors, goal }: AttackProblem,
  start: Float32Array,
  c: Required<AttackConfig>,
  best: Best,
): Promise<number[]> {
  const per = x.length / n;
  const eps = c.epsilon;
  const RHO = 0.75;
  let xAdv: Float32Array = start;
  let ev = await model.evaluate(xAdv, n, anchors, goal);
  // This restart's own best (the shared `best` spans restarts).
  const local = new Best(xAdv, n, model.dim);
  local.update(xAdv, ev);
  best.update(xAdv, ev);
  let grad: Float32Array = ev.grad!;
  const gradBest = grad.slice();
  const step = new Float32Array(n).fill(2 * eps);
  let xOld: Float32Array = xAdv.slice();
  const z = new Float32Array(xAdv.length);
  const { first, decrease, min } = checkpointLengths(c.steps);
  let window = first;
  let sinceCheck = 0;
  // Loss after each step, for the oscillation test; index 0 is the start.
  const history: Float32Array[] = [ev.loss.slice()];
  let bestAtLastCheck = local.loss.slice();
  let reducedAtLastCheck = new Uint8Array(n).fill(1);
  const trace: number[] = [];
  for (let i = 0; i < c.steps; i++) {
    const momentum = i > 0 ? 0.75 : 1;
    z.set(xAdv);
    ascend(z, grad, n, c.norm, step);
    project(z, x, n, c.norm, eps);
    // x_{k+1} = P(x_k + α(z_{k+1} − x_k) + (1 − α)(x_k − x_{k−1})), written over x_{k−1}, which is needed no more.
    const next = xOld;
    momentumStep(next, xAdv, z, xOld, momentum);
    project(next, x, n, c.norm, eps);
    xOld = xAdv;
    xAdv = next;
    ev = await model.evaluate(xAdv, n, anchors, goal);
    grad = ev.grad!;
    history.push(ev.loss.slice());
    const improved = local.update(xAdv, ev);
    best.update(xAdv, ev);
    for (let q = 0; q < n; q++) if (improved[q]) gradBest.set(grad.subarray(q * per, (q + 1) * per), q * per);
    trace.push(best.mean());
    if (++sinceCheck === window) {
      const reduced = new Uint8Array(n);
      for (let q = 0; q < n; q++) {
        // Condition 1: the loss rose in at most ρ of the window's steps (oscillation).
        let rises = 0;
        const last = history.length - 1;
        for (let k = 0; k < window; k++) if (history[last - k]![q]! > history[last - k - 1]![q]!) rises++;
        const oscillating = rises <= window * RHO;
        // Condition 2: the step was not reduced last time and the best loss has not improved since.
        const stalled = !reducedAtLastCheck[q] && bestAtLastCheck[q]! >= local.loss[q]!;
        reduced[q] = oscillating || stalled ? 1 : 0;
      }
      reducedAtLastCheck = reduced;
      bestAtLastCheck = local.loss.slice();
      if (reduced.some((r) => r === 1)) {
        grad = grad.slice();
        for (let q = 0; q < n; q++) {
          if (!reduced[q]) continue;
          step[q] = step[q]! / 2;
          // Restart from the best point, with its gradient.
          xAdv.set(local.x.subarray(q * per, (q + 1) * per), q * per);
          grad.set(gradBest.subarray(q * per, (q + 1) * per), q * per);
        }
      }
      window = Math.max(window - decrease, min);
      sinceCheck = 0;
    }
  }
  return trace;
}
