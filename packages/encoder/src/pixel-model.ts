import type { PixelBatch, PreprocessSpec } from '@lookalike/core';
import { preprocessHash } from '@lookalike/imaging';
import type { ModelSession } from '@lookalike/onnx-session';
import { MicroBatcher } from './batcher.js';
import type { ImageModelManifest } from './manifest.js';
import { pixelFeed, pixelRows, type EncoderRuntimeOptions } from './runtime.js';

/**
 * A model served by onnxruntime-node that takes [0,1] pixels in its manifest's input: it checks each batch, batches
 * concurrent calls, normalises each batch with the manifest's mean/std into its own tensor and runs the session. An
 * image tower and a quality model differ only in what they make of the output.
 */
export abstract class PixelModel<Out> {
  /** The preprocessing the model's pixels need, and its hash. */
  protected readonly preprocess: PreprocessSpec;
  protected readonly preprocessHash: string;
  private readonly batcher: MicroBatcher<Float32Array, Out>;

  protected constructor(
    protected readonly session: ModelSession,
    protected readonly manifest: Pick<ImageModelManifest, 'id' | 'input' | 'output'>,
    options: Required<EncoderRuntimeOptions>,
  ) {
    const { size, mean, std, interpolation, resize } = manifest.input;
    this.preprocess = { size, mean, std, interpolation, resize };
    this.preprocessHash = preprocessHash(this.preprocess);
    this.batcher = new MicroBatcher((images) => this.runBatch(images), {
      maxBatch: options.maxBatch,
      maxWaitMs: options.maxWaitMs,
    });
  }

  async close(): Promise<void> {
    await this.batcher.close();
    await this.session.release();
  }

  /** One result per image of `batch`; a batch of another size or shape is refused with a ValidationError. */
  protected submit(batch: PixelBatch): Promise<Out[]> {
    let images: Float32Array[];
    try {
      images = pixelRows(batch, this.manifest.input.size, this.manifest.id);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    return this.batcher.submit(images);
  }

  /** What the model makes of its output tensor for `n` images. */
  protected abstract results(output: Float32Array, n: number): Out[];

  private async runBatch(images: Float32Array[]): Promise<Out[]> {
    // The feed is this call's own copy, normalised in place and moved to the session's thread.
    const feed = pixelFeed(images, this.manifest.input);
    const name = this.manifest.output.name;
    const outputs = await this.session.run(feed, [name], { transfer: true });
    return this.results(outputs[name]!.data as Float32Array, images.length);
  }
}
