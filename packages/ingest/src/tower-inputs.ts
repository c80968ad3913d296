import { ENCODER_ROLES, type EncoderRole, type ImageEncoder, type PixelBatch, type Point } from '@lookalike/core';
import type { PixelSpec, PreparedImage } from '@lookalike/imaging';

/**
 * The model inputs both towers need, and how to embed prepared images with them. Towers that share a preprocessing
 * (the usual case) share one decode and one resize of each image: {@link TowerInputs.specs} lists each distinct one
 * once, in the order the preparer returns their pixels.
 */
export class TowerInputs {
  /** The distinct pixel specs to prepare each image for. */
  readonly specs: PixelSpec[] = [];
  private readonly specOf = {} as Record<EncoderRole, number>;

  constructor(private readonly encoders: Record<EncoderRole, ImageEncoder>) {
    const hashes: string[] = [];
    for (const r of ENCODER_ROLES) {
      const { preprocess, preprocessHash } = encoders[r].info;
      if (!hashes.includes(preprocessHash)) {
        hashes.push(preprocessHash);
        this.specs.push({ size: preprocess.size, interpolation: preprocess.interpolation });
      }
      this.specOf[r] = hashes.indexOf(preprocessHash);
    }
  }

  /** Both towers' vectors of each image, in order; the images were prepared for {@link specs}. */
  async embed(images: readonly PreparedImage[]): Promise<Point['vectors'][]> {
    if (images.length === 0) return [];
    // [N, 3, S, S] in [0,1] per distinct spec, stacked from the images' own arrays.
    const batches: PixelBatch[] = this.specs.map((spec, j) => {
      const stride = 3 * spec.size * spec.size;
      const data = new Float32Array(images.length * stride);
      images.forEach((image, i) => data.set(image.pixels[j]!, i * stride));
      return { data, n: images.length, height: spec.size, width: spec.size };
    });
    const vectors = await Promise.all(ENCODER_ROLES.map((r) => this.encoders[r].embed(batches[this.specOf[r]]!)));
    return images.map(
      (_, i) => Object.fromEntries(ENCODER_ROLES.map((r, k) => [r, vectors[k]![i]!])) as Point['vectors'],
    );
  }
}
