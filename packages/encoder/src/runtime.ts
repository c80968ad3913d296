import { availableParallelism } from 'node:os';
import { ModelError, ValidationError, type PixelBatch } from '@lookalike/core';
import { normalize } from '@lookalike/imaging';
import { openModelSession, type ModelSession } from '@lookalike/onnx-session';

/** Runtime knobs shared by the image and text encoders. */
export interface EncoderRuntimeOptions {
  /**
   * Intra-op threads of the onnxruntime session. 0 or undefined: for an image tower {@link imageTowerThreads}
   * (half the cores, because ingest runs both towers at once), for the text tower onnxruntime's choice (every core).
   */
  threads?: number;
  /** Most inputs run in one session call. */
  maxBatch?: number;
  /** How long a lone request waits for others to share its batch, in ms. */
  maxWaitMs?: number;
  /**
   * Run the session on a worker thread of its own (default), so that a model run never holds the event loop; false
   * runs it on the calling thread.
   */
  worker?: boolean;
}

/**
 * Defaults chosen for interactive search on a small CPU: batches of 32, at most 5 ms of added latency, the session
 * off the event loop.
 */
export const DEFAULT_RUNTIME_OPTIONS: Required<EncoderRuntimeOptions> = {
  threads: 0,
  maxBatch: 32,
  maxWaitMs: 5,
  worker: true,
};

/**
 * Intra-op threads per image tower when ENCODER_THREADS is 0: half the cores, at least one, because ingest and the
 * audit run both towers at once. Measured on 2 cores with the tiny towers: letting onnxruntime give each tower every
 * core (2 + 2 spinning threads on 2 cores) doubled the towers' CPU time per image (16 ms instead of 7.5) and halved
 * their throughput. 8 cores: 4 per tower; 32 cores: 16.
 */
export function imageTowerThreads(cores = availableParallelism()): number {
  return Math.max(1, Math.floor(cores / 2));
}

/**
 * Opens an onnxruntime-node CPU session for `file` (on its own worker thread unless `worker` is false) and checks
 * that it has the named input and output. Sequential execution with one inter-op thread: our graphs are chains, and
 * the batcher already runs one call at a time.
 */
export async function openSession(
  file: string,
  io: { input: string; output: string },
  options: { threads?: number; worker: boolean; spinning?: boolean },
): Promise<ModelSession> {
  let session: ModelSession;
  try {
    session = await openModelSession(file, {
      threads: options.threads ?? 0,
      worker: options.worker,
      ...(options.spinning === undefined ? {} : { spinning: options.spinning }),
    });
  } catch (error) {
    throw new ModelError(`onnxruntime could not load ${file}: ${(error as Error).message}`, { cause: error });
  }
  if (!session.inputNames.includes(io.input) || !session.outputNames.includes(io.output)) {
    const found = `inputs [${session.inputNames.join(', ')}], outputs [${session.outputNames.join(', ')}]`;
    await session.release();
    throw new ModelError(`${file} should have input "${io.input}" and output "${io.output}"; it has ${found}.`);
  }
  return session;
}

/**
 * Splits a flat `[n, dim]` output into one vector per row, L2-normalising each unless the graph already did.
 * Rows are copied so callers may keep them after the output buffer is reused.
 */
export function splitRows(data: Float32Array, n: number, dim: number, normalize: boolean): Float32Array[] {
  if (data.length !== n * dim) throw new ModelError(`model returned ${data.length} values, expected ${n} × ${dim}`);
  const rows: Float32Array[] = [];
  for (let r = 0; r < n; r++) {
    const row = data.slice(r * dim, (r + 1) * dim);
    if (normalize) {
      let sum = 0;
      for (let i = 0; i < dim; i++) sum += row[i]! * row[i]!;
      const scale = sum > 0 ? 1 / Math.sqrt(sum) : 0;
      for (let i = 0; i < dim; i++) row[i]! *= scale;
    }
    rows.push(row);
  }
  return rows;
}

/** The input a model's manifest declares: its tensor's name, side and normalisation. */
interface ModelInput {
  name: string;
  size: number;
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
}

/**
 * A batch of [0,1] pixels split into its images (views, not copies), after checking it is `size × size` and holds
 * whole images; a batch that does not fit throws a {@link ValidationError} naming model `id`.
 */
export function pixelRows(batch: PixelBatch, size: number, id: string): Float32Array[] {
  if (batch.height !== size || batch.width !== size)
    throw new ValidationError(`${id} takes ${size} × ${size} inputs, got ${batch.width} × ${batch.height}`);
  const stride = 3 * size * size;
  if (batch.data.length !== batch.n * stride)
    throw new ValidationError(
      `pixel batch holds ${batch.data.length} values, expected ${batch.n} × 3 × ${size} × ${size}`,
    );
  const images: Float32Array[] = [];
  for (let i = 0; i < batch.n; i++) images.push(batch.data.subarray(i * stride, (i + 1) * stride));
  return images;
}

/**
 * The session feed for `images`: one new `[N, 3, S, S]` tensor, normalised in place with the manifest's mean and std
 * (imaging's torch-exact float32 arithmetic), so it can be moved to the session's thread.
 */
export function pixelFeed(images: Float32Array[], input: ModelInput) {
  const stride = 3 * input.size * input.size;
  const pixels = new Float32Array(images.length * stride);
  images.forEach((image, i) => pixels.set(image, i * stride));
  const tensor = {
    type: 'float32',
    data: normalize(pixels, input),
    dims: [images.length, 3, input.size, input.size],
  } as const;
  return { [input.name]: tensor };
}
