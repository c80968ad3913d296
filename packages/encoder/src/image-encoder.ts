import type { ImageEncoder, ImageEncoderInfo, PixelBatch } from '@lookalike/core';
import type { ImageModelManifest } from './manifest.js';
import { PixelModel } from './pixel-model.js';
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
export class OnnxImageEncoder extends PixelModel<Float32Array> implements ImageEncoder {
  readonly info: ImageEncoderInfo;

  private constructor(
    session: ModelSession,
    protected override readonly manifest: ImageModelManifest,
    options: Required<EncoderRuntimeOptions>,
  ) {
    super(session, manifest, options);
    this.info = {
      id: manifest.id,
      role: manifest.role,
      dim: manifest.output.dim,
      preprocess: this.preprocess,
      preprocessHash: this.preprocessHash,
    };
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
    return this.submit(batch);
  }

  protected results(output: Float32Array, n: number): Float32Array[] {
    return splitRows(output, n, this.manifest.output.dim, !this.manifest.output.normalized);
  }
}
