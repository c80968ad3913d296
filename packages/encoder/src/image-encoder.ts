import { ValidationError, type ImageEncoder, type ImageEncoderInfo, type PixelBatch } from '@lookalike/core';
import { normalize, preprocessHash } from '@lookalike/imaging';
import { MicroBatcher } from './batcher.js';
import type { ImageModelManifest } from './manifest.js';
import type { ModelRegistry } from './registry.js';
import {
  DEFAULT_RUNTIME_OPTIONS,
  imageTowerThreads,
  openSession,
  splitRows,
  type EncoderRuntimeOptions,
} from './runtime.js';
import type { ModelSession } from '@lookalike/onnx-session';

/**
 * An image tower served by onnxruntime-node. Takes [0,1] pixels, normalises them with the manifest's mean/std into
 * the model input, and batches concurrent calls.
 */
export class OnnxImageEncoder implements ImageEncoder {
  readonly info: ImageEncoderInfo;
  private readonly batcher: MicroBatcher<Float32Array, Float32Array>;
  private readonly plane: number;

  private constructor(
    private readonly session: ModelSession,
    private readonly manifest: ImageModelManifest,
    options: Required<EncoderRuntimeOptions>,
  ) {
    const { size, mean, std, interpolation, resize } = manifest.input;
    const preprocess = { size, mean, std, interpolation, resize } as const;
    this.info = {
      id: manifest.id,
      role: manifest.role,
      dim: manifest.output.dim,
      preprocess,
      preprocessHash: preprocessHash(preprocess),
    };
    this.plane = size * size;
    this.batcher = new MicroBatcher((images) => this.run(images), {
      maxBatch: options.maxBatch,
      maxWaitMs: options.maxWaitMs,
    });
  }

  /** Verifies the model's checksum and opens its session. */
  static async load(
    registry: ModelRegistry,
    id: string,
    options: EncoderRuntimeOptions = {},
  ): Promise<OnnxImageEncoder> {
    const manifest = registry.image(id);
    await registry.verify(id);
    const resolved = { ...DEFAULT_RUNTIME_OPTIONS, ...options };
    // Two towers share the cores with each other and with the image decoders: no spinning, half the cores each.
    const session = await openSession(
      registry.file(id, manifest.files.model),
      { input: manifest.input.name, output: manifest.output.name },
      { ...resolved, threads: resolved.threads || imageTowerThreads(), spinning: false },
    );
    return new OnnxImageEncoder(session, manifest, resolved);
  }

  embed(batch: PixelBatch): Promise<Float32Array[]> {
    const { size } = this.manifest.input;
    if (batch.height !== size || batch.width !== size) {
      return Promise.reject(
        new ValidationError(`${this.info.id} takes ${size} × ${size} inputs, got ${batch.width} × ${batch.height}`),
      );
    }
    const stride = 3 * this.plane;
    if (batch.data.length !== batch.n * stride) {
      return Promise.reject(
        new ValidationError(
          `pixel batch holds ${batch.data.length} values, expected ${batch.n} × 3 × ${size} × ${size}`,
        ),
      );
    }
    const images: Float32Array[] = [];
    for (let i = 0; i < batch.n; i++) images.push(batch.data.subarray(i * stride, (i + 1) * stride));
    return this.batcher.submit(images);
  }

  async close(): Promise<void> {
    await this.batcher.close();
    await this.session.release();
  }

  private async run(images: Float32Array[]): Promise<Float32Array[]> {
    const n = images.length;
    const stride = 3 * this.plane;
    const pixels = new Float32Array(n * stride);
    images.forEach((image, i) => pixels.set(image, i * stride));
    const { size, name } = this.manifest.input;
    // `pixels` is this call's own copy, so it is normalised in place (imaging's torch-exact float32 arithmetic) and
    // moved to the session's thread.
    const input = { type: 'float32', data: normalize(pixels, this.manifest.input), dims: [n, 3, size, size] } as const;
    const outputName = this.manifest.output.name;
    const outputs = await this.session.run({ [name]: input }, [outputName], { transfer: true });
    const output = outputs[outputName]!;
    return splitRows(output.data as Float32Array, n, this.manifest.output.dim, !this.manifest.output.normalized);
  }
}
