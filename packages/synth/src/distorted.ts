/**
 * The catalog's unusable photos: for item `index` of a seed, a distorted copy with a known recipe — one kind of
 * distortion (p = 0.7) or two of different kinds (p = 0.3), each at a severity drawn uniformly from [0.05, 1] —
 * and its quality target ({@link qualityTarget}). Ground truth for the quality head: `lookalike synth --distort`
 * writes them beside the originals (quality 1), the audit renders them on the fly.
 */
import { DISTORTION_KINDS, distortImage, qualityTarget, type Distortion, type DistortionKind } from './distort.js';
import sharp from 'sharp';
import { createRng } from './random.js';
import { renderSvg } from './render.js';
import { noiseBank } from './noise.js';
import type { ItemSpec } from './spec.js';

/** What a distorted copy records: how it was distorted and the quality that makes it. */
export interface DistortionRecipe {
  distortions: Distortion[];
  /** {@link qualityTarget} of the distortions, in [0, 1]. */
  quality: number;
}

/** Over- and underexposure are one axis: a photo is not both. */
const EXCLUSIVE: Partial<Record<DistortionKind, DistortionKind>> = {
  overexposure: 'underexposure',
  underexposure: 'overexposure',
};

/**
 * The distortions of item `index`'s distorted copy (seeded; no pixels are rendered). `hard` draws one distortion at a
 * severity from [0.6, 1] instead (quality at most 0.4): an unusable photo, as the audit's attacks need.
 */
export function distortionRecipe(seed: number, index: number, hard = false): DistortionRecipe {
  const rng = createRng(seed, index, hard ? 'distort-hard' : 'distort');
  const first = rng.pick(DISTORTION_KINDS);
  const kinds: DistortionKind[] = [first];
  if (!hard && rng.chance(0.3))
    kinds.push(rng.pick(DISTORTION_KINDS.filter((k) => k !== first && k !== EXCLUSIVE[first])));
  const distortions = kinds.map((kind): Distortion => {
    const severity = Math.round(rng.range(hard ? 0.6 : 0.05, 1) * 1000) / 1000;
    return kind === 'motion' ? { kind, severity, angle: Math.round(rng.range(0, 180)) } : { kind, severity };
  });
  return { distortions, quality: Math.round(qualityTarget(distortions) * 10000) / 10000 };
}

/** Renders `spec` at `size` px with `recipe` applied, as PNG bytes; the noise is seeded by (seed, index). */
export async function renderDistorted(
  spec: ItemSpec,
  size: number,
  recipe: DistortionRecipe,
  seed: number,
  index: number,
): Promise<Buffer> {
  const { data, info } = await sharp(Buffer.from(renderSvg(spec, size, await noiseBank())), { density: 72 })
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const rng = createRng(seed, index, 'distort-noise');
  const out = await distortImage(
    { data: new Uint8Array(data), width: info.width, height: info.height },
    recipe.distortions,
    () => rng.next(),
  );
  return sharp(out.data, { raw: { width: out.width, height: out.height, channels: 3 } })
    .png({ compressionLevel: 6, adaptiveFiltering: false })
    .toBuffer();
}
