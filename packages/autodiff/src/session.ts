import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { openModelSession, type ModelSession, type ModelSource } from '@lookalike/onnx-session';
import { buildVjpModel } from './vjp.js';

/**
 * Version of the gradient-graph builder, part of every cache file name so that a builder fix never serves a VJP
 * model built by an older one.
 */
export const VJP_BUILDER_VERSION = 2;

/** One VJP evaluation: the embeddings and ∂⟨embedding, cotangent⟩/∂input. */
export interface VjpResult {
  /** `[N, D]` */
  embedding: Float32Array;
  /** Same layout as the input, `[N, C, H, W]`. */
  grad: Float32Array;
}

/** Options for {@link VjpSession.open}. */
export interface VjpSessionOptions {
  /** onnxruntime intra-op threads; 0 (default) lets onnxruntime choose. */
  threads?: number;
  /**
   * Run the session on a worker thread of its own (default `true`): one VJP evaluation of a ViT-B/32 batch holds
   * its thread for seconds, which must not be a thread that serves requests or renews job locks.
   */
  worker?: boolean;
}

/**
 * An onnxruntime-node session over a VJP model built by {@link buildVjpModel}. Inputs are whatever the forward model
 * takes (for Lookalike's towers: normalised pixels); the caller chains any preprocessing (e.g. ÷ std for pixel-space
 * attacks).
 */
export class VjpSession {
  private constructor(
    private readonly session: ModelSession,
    private readonly names: { input: string; cotangent: string; embedding: string; grad: string },
    /** The fixed image dimensions `[C, H, W]` of the input `[N, C, H, W]`. */
    readonly shape: { channels: number; height: number; width: number },
    /** Embedding width D of the output `[N, D]` (0 where the model leaves it symbolic). */
    readonly dim: number,
  ) {}

  /** Opens a VJP model (its file or its bytes), on a worker thread unless `worker` is false. */
  static async open(vjpModel: ModelSource, options: VjpSessionOptions = {}): Promise<VjpSession> {
    const session = await openModelSession(vjpModel, { threads: options.threads ?? 0, worker: options.worker ?? true });
    try {
      // buildVjpModel appends the cotangent input after the image and puts the gradient after the embedding.
      const [input, cotangent] = session.inputNames;
      const [embedding, grad] = session.outputNames;
      if (!input || !cotangent || !embedding || !grad || session.inputNames.length !== 2)
        throw new Error('not a VJP model: expected inputs (image, cotangent) and outputs (embedding, grad)');
      const dims = session.inputShapes.find((m) => m.name === input)?.shape;
      const cot = session.inputShapes.find((m) => m.name === cotangent)?.shape;
      const [, c, h, w] = (dims ?? []).map(Number);
      if (!c || !h || !w) throw new Error(`the VJP model's input ${input} must be [N, C, H, W] with fixed C, H, W`);
      const d = Number(cot?.[1]);
      return new VjpSession(
        session,
        { input, cotangent, embedding, grad },
        { channels: c, height: h, width: w },
        Number.isFinite(d) && d > 0 ? d : 0,
      );
    } catch (error) {
      await session.release();
      throw error;
    }
  }

  /**
   * Runs the forward and backward pass for `n` inputs.
   * @param input `[n, C, H, W]` row-major.
   * @param cotangent `[n, D]`: the vector u in ∂⟨embedding, u⟩/∂input.
   * @param options `transfer`: move `input`'s and `cotangent`'s buffers to the session's thread (the caller must not
   *   use them afterwards) instead of copying them.
   */
  async run(
    input: Float32Array,
    n: number,
    cotangent: Float32Array,
    options: { transfer?: boolean } = {},
  ): Promise<VjpResult> {
    const { channels, height, width } = this.shape;
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`batch size must be a positive integer; got ${n}`);
    if (input.length !== n * channels * height * width)
      throw new RangeError(`input has ${input.length} values; [${n}, ${channels}, ${height}, ${width}] needs more`);
    const d = cotangent.length / n;
    if (!Number.isInteger(d) || (this.dim > 0 && d !== this.dim))
      throw new RangeError(`cotangent has ${cotangent.length} values; expected [${n}, ${this.dim || 'D'}]`);
    const out = await this.session.run(
      {
        [this.names.input]: { type: 'float32', data: input, dims: [n, channels, height, width] },
        [this.names.cotangent]: { type: 'float32', data: cotangent, dims: [n, d] },
      },
      [this.names.embedding, this.names.grad],
      options,
    );
    return {
      embedding: out[this.names.embedding]!.data as Float32Array,
      grad: out[this.names.grad]!.data as Float32Array,
    };
  }

  /** Frees the onnxruntime session (and its thread). */
  release(): Promise<void> {
    return this.session.release();
  }
}

/**
 * The VJP model of a forward ONNX file, built once and cached in `cacheDir` under the sha256 of the forward file
 * (a changed model gets a new gradient graph; an unchanged one is never rebuilt). The file is written atomically
 * (temporary name, then rename), so concurrent builders never read a partial file.
 */
export async function loadVjpModel(
  modelPath: string,
  cacheDir: string,
): Promise<{ bytes: Uint8Array; cached: boolean; path: string }> {
  const forward = await readFile(modelPath);
  const key = createHash('sha256').update(forward).digest('hex');
  const path = join(cacheDir, `${key}.vjp${VJP_BUILDER_VERSION}.onnx`);
  try {
    return { bytes: await readFile(path), cached: true, path };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const bytes = await buildVjpModel(forward);
  await mkdir(cacheDir, { recursive: true });
  await writeFileAtomic(path, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  return { bytes, cached: false, path };
}

/**
 * Opens a {@link VjpSession} for a forward ONNX file, building its VJP model on first use and caching it in
 * `cacheDir` keyed by the sha256 of the model file (see {@link loadVjpModel}).
 */
export async function loadVjp(
  modelPath: string,
  cacheDir: string,
  options: VjpSessionOptions = {},
): Promise<VjpSession> {
  const { path } = await loadVjpModel(modelPath, cacheDir);
  return VjpSession.open(path, options);
}
