import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { buildVjpModel } from './vjp.js';

/** One VJP evaluation: the embeddings and ∂⟨embedding, cotangent⟩/∂input. */
export interface VjpResult {
  /** `[N, D]` */
  embedding: Float32Array;
  /** Same layout as the input, `[N, C, H, W]`. */
  grad: Float32Array;
}

/**
 * An onnxruntime-node session over a VJP model. Inputs are whatever the forward model takes (for Lookalike's towers:
 * normalised pixels); the caller chains any preprocessing (e.g. ÷ std for pixel-space attacks).
 */
export class VjpSession {
  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly inputName: string,
    readonly shape: { channels: number; height: number; width: number },
    readonly dim: number,
  ) {}

  static async open(vjpModel: Uint8Array, options: { threads?: number } = {}): Promise<VjpSession> {
    const session = await ort.InferenceSession.create(vjpModel, {
      intraOpNumThreads: options.threads ?? 0,
      graphOptimizationLevel: 'all',
    });
    const inputName = session.inputNames.find((n) => n !== 'cotangent');
    if (!inputName) throw new Error('the VJP model has no image input');
    const meta = session.inputMetadata as unknown as { name: string; shape?: (number | string)[] }[] | undefined;
    const dims = Array.isArray(meta) ? meta.find((m) => m.name === inputName)?.shape : undefined;
    const cot = Array.isArray(meta) ? meta.find((m) => m.name === 'cotangent')?.shape : undefined;
    const [, c, h, w] = (dims ?? []).map(Number);
    return new VjpSession(
      session,
      inputName,
      { channels: c ?? 3, height: h ?? 0, width: w ?? 0 },
      Number(cot?.[1] ?? 0),
    );
  }

  /** Runs the forward and backward pass for `n` inputs and their cotangents. */
  async run(input: Float32Array, n: number, cotangent: Float32Array): Promise<VjpResult> {
    const { channels, height, width } = this.shape;
    const feeds = {
      [this.inputName]: new ort.Tensor('float32', input, [n, channels, height, width]),
      cotangent: new ort.Tensor('float32', cotangent, [n, cotangent.length / n]),
    };
    const out = await this.session.run(feeds);
    return { embedding: out.embedding!.data as Float32Array, grad: out.grad!.data as Float32Array };
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

/**
 * The VJP model of a forward ONNX file, built once and cached in `cacheDir` under the sha256 of the forward file
 * (a changed model gets a new gradient graph; an unchanged one is never rebuilt).
 */
export async function loadVjpModel(
  modelPath: string,
  cacheDir: string,
): Promise<{ bytes: Uint8Array; cached: boolean }> {
  const forward = await readFile(modelPath);
  const key = createHash('sha256').update(forward).digest('hex');
  const path = join(cacheDir, `${key}.vjp.onnx`);
  try {
    return { bytes: await readFile(path), cached: true };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const bytes = await buildVjpModel(forward);
  await mkdir(cacheDir, { recursive: true });
  const tmp = `${path}.${process.pid}.part`;
  await writeFile(tmp, bytes);
  await rename(tmp, path);
  return { bytes, cached: false };
}
