import {
  ModelError,
  type EncoderRole,
  type PixelBatch,
  type QualityScorer,
  type QualityScorerInfo,
} from '@lookalike/core';
import type { ModelSession } from '@lookalike/onnx-session';
import type { QualityModelManifest } from './manifest.js';
import { PixelModel } from './pixel-model.js';
import type { ModelRegistry } from './registry.js';
import { DEFAULT_RUNTIME_OPTIONS, imageTowerThreads, openSession, type EncoderRuntimeOptions } from './runtime.js';

/**
 * A perceptual quality model (PerceptCLIP-style: an image tower with LoRA adapters merged into its weights, and an
 * MLP head) served by onnxruntime-node: [0,1] pixels in, one score in [0, 1] per image out. It takes the pixels its
 * backbone tower takes, so ingest prepares each image once for both; concurrent calls share batches.
 */
export class OnnxQualityModel extends PixelModel<number> implements QualityScorer {
  readonly info: QualityScorerInfo;

  private constructor(
    session: ModelSession,
    manifest: QualityModelManifest,
    tower: EncoderRole,
    threshold: number,
    options: Required<EncoderRuntimeOptions>,
  ) {
    super(session, manifest, options);
    this.info = {
      id: manifest.id,
      tower,
      backbone: manifest.backbone,
      threshold,
      preprocess: this.preprocess,
      preprocessHash: this.preprocessHash,
    };
  }

  /**
   * Loads the quality model made from image tower `backbone` (the role that tower plays here is `tower`), verifying
   * its checksum. `threshold` replaces the manifest's fitted one when given.
   */
  static async load(
    registry: ModelRegistry,
    tower: EncoderRole,
    backbone: string,
    options: EncoderRuntimeOptions & { threshold?: number } = {},
  ): Promise<OnnxQualityModel> {
    const manifest = registry.qualityFor(backbone);
    await registry.verify(manifest.id);
    const resolved = { ...DEFAULT_RUNTIME_OPTIONS, ...options };
    // It runs beside the two towers, on the same cores: no spinning, the towers' share of threads.
    const session = await openSession(
      registry.file(manifest.id, manifest.files.model),
      { input: manifest.input.name, output: manifest.output.name },
      { threads: resolved.threads || imageTowerThreads(), worker: resolved.worker, spinning: false },
    );
    return new OnnxQualityModel(session, manifest, tower, options.threshold ?? manifest.threshold, resolved);
  }

  score(batch: PixelBatch): Promise<number[]> {
    return this.submit(batch);
  }

  protected results(scores: Float32Array, n: number): number[] {
    if (scores.length !== n) throw new ModelError(`${this.info.id} returned ${scores.length} scores for ${n} images`);
    return Array.from(scores, (v) => Math.min(1, Math.max(0, v)));
  }
}
