/**
 * An image tower seen by an attacker: [0,1] pixels in, loss and ∂loss/∂pixels out, through the VJP model of the
 * tower's ONNX file. The pixels are normalised with the tower's own mean/std by the same code search uses
 * (`@lookalike/imaging`'s `normalize`), and the gradient is chained through it (÷ std per channel), so attacks
 * perturb exactly what a query image becomes before the encoder sees it. Both sessions run on worker threads of
 * their own, so an attack never holds the event loop of the process that runs it (a BullMQ worker renewing its job
 * locks, an API answering requests).
 */
import type { PreprocessSpec } from '@lookalike/core';
import { loadVjpModel, VjpSession } from '@lookalike/autodiff';
import { normalize } from '@lookalike/imaging';
import { openModelSession, type ModelSession } from '@lookalike/onnx-session';

/**
 * What an attack maximises, per query. For an image tower: `untargeted` pushes the embedding away from its anchor,
 * loss `1 − cos(φ(x+δ), anchor)`; `targeted` pulls it toward the anchor (another image's embedding), loss
 * `cos(φ(x+δ), anchor)`. For a score model (a quality model: one number per image): `raise` maximises the score,
 * `lower` its negative; their anchors are ignored.
 */
export type AttackGoal = 'untargeted' | 'targeted' | 'raise' | 'lower';

/** Whether a goal is about a score model's output rather than an embedding. */
const isScoreGoal = (goal: AttackGoal): goal is 'raise' | 'lower' => goal === 'raise' || goal === 'lower';

/** Loss, gradient and embedding of a batch. */
export interface Evaluation {
  /** `[n]` the loss each query maximises. */
  loss: Float32Array;
  /** `[n, 3, S, S]` ∂loss/∂pixels. Absent when only the loss was asked for. */
  grad?: Float32Array;
  /** `[n, D]` L2-normalised embeddings. */
  embedding: Float32Array;
}

/** Options of {@link PixelSpaceModel.open}. */
export interface PixelSpaceModelOptions {
  /** Where built gradient graphs are cached (keyed by the model file's sha256). */
  cacheDir: string;
  /** onnxruntime intra-op threads; 0 lets onnxruntime choose. */
  threads?: number;
  /** Whether the model's output is already L2-normalised (its manifest says so). */
  outputNormalized: boolean;
  /**
   * `embedding` (the default): an image tower, whose output is compared by cosine; `score`: a model with one output
   * per image (a quality model), attacked with the goals `raise` and `lower` and never normalised.
   */
  output?: 'embedding' | 'score';
  /** Run the sessions on worker threads of their own (default `true`); `false` runs them on the calling thread. */
  worker?: boolean;
}

/** A tower's forward and VJP sessions behind one pixel-space interface. */
export class PixelSpaceModel {
  /** Forward and gradient evaluations run so far, counted per image. */
  evaluations = { forward: 0, gradient: 0 };

  private constructor(
    readonly id: string,
    readonly spec: PreprocessSpec,
    private readonly vjp: VjpSession,
    private readonly forwardSession: ModelSession,
    readonly dim: number,
    private readonly outputNormalized: boolean,
    /** `embedding` for an image tower, `score` for a model of one output per image. */
    readonly output: 'embedding' | 'score',
  ) {}

  /** Opens the model file's VJP model (built on first use, then cached) and a forward session. */
  static async open(
    id: string,
    modelPath: string,
    spec: PreprocessSpec,
    options: PixelSpaceModelOptions,
  ): Promise<PixelSpaceModel> {
    const { path } = await loadVjpModel(modelPath, options.cacheDir);
    const settings = { threads: options.threads ?? 0, worker: options.worker ?? true };
    const vjp = await VjpSession.open(path, settings);
    let forward: ModelSession | undefined;
    try {
      if (vjp.shape.channels !== 3 || vjp.shape.height !== spec.size || vjp.shape.width !== spec.size)
        throw new Error(
          `${id}: the model takes [N, ${vjp.shape.channels}, ${vjp.shape.height}, ${vjp.shape.width}] inputs but its preprocessing makes 3 × ${spec.size} × ${spec.size}`,
        );
      forward = await openModelSession(modelPath, settings);
      let dim = vjp.dim;
      if (dim <= 0) {
        const input = forward.inputNames[0]!;
        const output = forward.outputNames[0]!;
        const probe = await forward.run(
          {
            [input]: {
              type: 'float32',
              data: new Float32Array(3 * spec.size * spec.size),
              dims: [1, 3, spec.size, spec.size],
            },
          },
          [output],
        );
        dim = probe[output]!.dims[1] ?? 0;
      }
      const output = options.output ?? 'embedding';
      if (output === 'score' && dim !== 1) throw new Error(`${id}: a score model has one output per image, not ${dim}`);
      return new PixelSpaceModel(id, spec, vjp, forward, dim, options.outputNormalized, output);
    } catch (error) {
      await vjp.release();
      await forward?.release();
      throw error;
    }
  }

  /** Side of the square input. */
  get size(): number {
    return this.spec.size;
  }

  /** Embeds `[n, 3, S, S]` pixels in [0,1]; returns `[n, D]` unit vectors (a score model: its `[n]` scores). */
  async embed(pixels: Float32Array, n: number): Promise<Float32Array> {
    const z = await this.forward(normalize(pixels, this.spec, new Float32Array(pixels.length)), n, true);
    return this.output === 'score' ? z : unitRows(z, n, this.dim);
  }

  /**
   * The tower's raw output `[n, D]` for normalised inputs, in a buffer of the caller's. With `transfer`, `input`
   * moves to the session's thread and must not be used afterwards.
   */
  private async forward(input: Float32Array, n: number, transfer: boolean): Promise<Float32Array> {
    const name = this.forwardSession.inputNames[0]!;
    const output = this.forwardSession.outputNames[0]!;
    const out = await this.forwardSession.run(
      { [name]: { type: 'float32', data: input, dims: [n, 3, this.size, this.size] } },
      [output],
      { transfer },
    );
    this.evaluations.forward += n;
    return out[output]!.data as Float32Array;
  }

  /**
   * Loss of each query and its gradient with respect to the pixels.
   * @param pixels `[n, 3, S, S]` in [0,1].
   * @param anchors `[n, D]` unit vectors: the clean embeddings (untargeted) or the targets (targeted).
   */
  async evaluate(pixels: Float32Array, n: number, anchors: Float32Array, goal: AttackGoal): Promise<Evaluation> {
    const D = this.dim;
    if (anchors.length !== n * D) throw new RangeError(`anchors hold ${anchors.length} values; [${n}, ${D}] expected`);
    this.checkGoal(goal);
    const input = normalize(pixels, this.spec, new Float32Array(pixels.length));
    if (isScoreGoal(goal)) {
      // loss = ±score: the cotangent is ±1 for every image.
      const sign = goal === 'raise' ? 1 : -1;
      const { embedding: score, grad } = await this.vjp.run(input, n, new Float32Array(n).fill(sign), {
        transfer: true,
      });
      this.evaluations.gradient += n;
      divideByStd(grad, n, this.size * this.size, this.spec.std);
      return { loss: score.map((v) => sign * v), grad, embedding: score };
    }
    const sign = goal === 'untargeted' ? -1 : 1;
    // loss = c + sign · cos(ẑ, t). With z unit already, ∂cos/∂z = t; otherwise ∂cos/∂z = (t − cos·ẑ)/‖z‖, which
    // needs z first: one extra forward pass.
    let cotangent: Float32Array;
    if (this.outputNormalized) {
      cotangent = anchors.map((t) => sign * t);
    } else {
      cotangent = cosineCotangent(await this.forward(input, n, false), anchors, n, D, sign);
    }
    // Both buffers are this call's own: they move to the session's thread, and the outputs move back.
    const { embedding, grad } = await this.vjp.run(input, n, cotangent, { transfer: true });
    this.evaluations.gradient += n;
    const unit = unitRows(embedding, n, D);
    const loss = lossOf(unit, anchors, n, D, goal);
    // Chain through normalisation: ∂/∂pixel = ∂/∂input ÷ std of the channel (in place: the buffer is this call's).
    divideByStd(grad, n, this.size * this.size, this.spec.std);
    return { loss, grad, embedding: unit };
  }

  /** Loss only (one forward pass). */
  async lossOf(pixels: Float32Array, n: number, anchors: Float32Array, goal: AttackGoal): Promise<Evaluation> {
    this.checkGoal(goal);
    const embedding = await this.embed(pixels, n);
    return { loss: lossOf(embedding, anchors, n, this.dim, goal), embedding };
  }

  /** A score model is attacked by `raise` and `lower` only, an image tower by the other goals only. */
  private checkGoal(goal: AttackGoal): void {
    if (isScoreGoal(goal) !== (this.output === 'score'))
      throw new RangeError(
        `${this.id}: the goal ${goal} does not apply to ${this.output === 'score' ? 'a score model' : 'an image tower'}`,
      );
  }

  async release(): Promise<void> {
    await this.vjp.release();
    await this.forwardSession.release();
  }
}

/** sign · ∂cos(z, t)/∂z = sign · (t − cos·ẑ)/‖z‖ per row of `[n, D]` (t unit). */
function cosineCotangent(z: Float32Array, anchors: Float32Array, n: number, D: number, sign: number): Float32Array {
  const out = new Float32Array(n * D);
  for (let q = 0; q < n; q++) {
    const row = q * D;
    let zz = 0;
    let zt = 0;
    for (let j = 0; j < D; j++) {
      zz += z[row + j]! * z[row + j]!;
      zt += z[row + j]! * anchors[row + j]!;
    }
    const norm = Math.sqrt(zz) || 1;
    const cos = zt / norm;
    for (let j = 0; j < D; j++) out[row + j] = (sign * (anchors[row + j]! - (cos * z[row + j]!) / norm)) / norm;
  }
  return out;
}

/** Divides `[n, 3, plane]` values by the float32 std of their channel, in place. */
function divideByStd(values: Float32Array, n: number, plane: number, std: readonly number[]): void {
  for (let q = 0; q < n; q++)
    for (let c = 0; c < 3; c++) {
      const inv = 1 / Math.fround(std[c]!);
      const start = (q * 3 + c) * plane;
      for (let i = start; i < start + plane; i++) values[i] = values[i]! * inv;
    }
}

/** Normalises each of the `n` rows of `[n, D]` in place. */
export function unitRows(z: Float32Array, n: number, D: number): Float32Array {
  for (let q = 0; q < n; q++) {
    let s = 0;
    for (let j = 0; j < D; j++) s += z[q * D + j]! * z[q * D + j]!;
    const inv = 1 / Math.max(Math.sqrt(s), 1e-12);
    for (let j = 0; j < D; j++) z[q * D + j] = z[q * D + j]! * inv;
  }
  return z;
}

/** The loss of each row given unit embeddings and anchors. */
export function lossOf(
  unit: Float32Array,
  anchors: Float32Array,
  n: number,
  D: number,
  goal: AttackGoal,
): Float32Array {
  const loss = new Float32Array(n);
  if (isScoreGoal(goal)) {
    for (let q = 0; q < n; q++) loss[q] = (goal === 'raise' ? 1 : -1) * unit[q]!;
    return loss;
  }
  for (let q = 0; q < n; q++) {
    let cos = 0;
    for (let j = 0; j < D; j++) cos += unit[q * D + j]! * anchors[q * D + j]!;
    loss[q] = goal === 'untargeted' ? 1 - cos : cos;
  }
  return loss;
}
