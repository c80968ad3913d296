import {
  ENCODER_ROLES,
  type EncoderRole,
  type ImageEncoder,
  type PixelBatch,
  type Point,
  type QualityScorer,
} from '@lookalike/core';
import type { PixelSpec, PreparedImage } from '@lookalike/imaging';

/**
 * The model inputs both towers (and the quality model, when there is one) need, and how to run prepared images
 * through them. Models that share a preprocessing (the usual case: the quality model takes its tower's) share one
 * decode and one resize of each image: {@link TowerInputs.specs} lists each distinct one once, in the order the
 * preparer returns their pixels.
 */
export class TowerInputs {
  /** The distinct pixel specs to prepare each image for. */
  readonly specs: PixelSpec[] = [];
  private readonly specOf = {} as Record<EncoderRole, number>;
  private readonly scorerSpec: number = -1;

  constructor(
    private readonly encoders: Record<EncoderRole, ImageEncoder>,
    private readonly scorer?: QualityScorer,
  ) {
    const hashes: string[] = [];
    const add = ({ preprocess, preprocessHash }: ImageEncoder['info'] | QualityScorer['info']): number => {
      if (!hashes.includes(preprocessHash)) {
        hashes.push(preprocessHash);
        this.specs.push({ size: preprocess.size, interpolation: preprocess.interpolation });
      }
      return hashes.indexOf(preprocessHash);
    };
    for (const r of ENCODER_ROLES) this.specOf[r] = add(encoders[r].info);
    if (scorer) this.scorerSpec = add(scorer.info);
  }

  /**
   * Both towers' vectors of each image, in order, and the quality model's score of each (undefined without a quality
   * model); the images were prepared for {@link specs}. Each distinct spec's pixels are stacked once, whichever
   * models read them.
   */
  async run(images: readonly PreparedImage[]): Promise<{ vectors: Point['vectors'][]; scores: number[] | undefined }> {
    if (images.length === 0) return { vectors: [], scores: this.scorer ? [] : undefined };
    const batches = this.specs.map((_, j) => this.batch(images, j));
    const [vectors, scores] = await Promise.all([
      Promise.all(ENCODER_ROLES.map((r) => this.encoders[r].embed(batches[this.specOf[r]]!))),
      this.scorer?.score(batches[this.scorerSpec]!),
    ]);
    return {
      vectors: images.map(
        (_, i) => Object.fromEntries(ENCODER_ROLES.map((r, k) => [r, vectors[k]![i]!])) as Point['vectors'],
      ),
      scores,
    };
  }

  /** `[N, 3, S, S]` in [0,1] for spec `j`, stacked from the images' own arrays. */
  private batch(images: readonly PreparedImage[], j: number): PixelBatch {
    const spec = this.specs[j]!;
    const stride = 3 * spec.size * spec.size;
    const data = new Float32Array(images.length * stride);
    images.forEach((image, i) => data.set(image.pixels[j]!, i * stride));
    return { data, n: images.length, height: spec.size, width: spec.size };
  }
}
