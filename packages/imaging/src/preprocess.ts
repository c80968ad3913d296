/**
 * CLIP preprocessing exactly as open_clip's inference transform does it on a PIL image: `Resize(S, BICUBIC)`
 * (shortest side to S, the other side truncated as torchvision computes it), `CenterCrop(S)` (offsets rounded
 * half-to-even, as Python's `round`), `ToTensor` (÷255) and `Normalize(mean, std)`. Pixels in [0, 1] are kept
 * separately from the normalised tensor, because attacks perturb pixels before normalisation.
 *
 * Two ways to the resized image ({@link PreprocessMode}): `exact` decodes at full size and resizes with the Pillow
 * port in `resize.ts`; `fast` ({@link fastResize}) lets libvips resize while it decodes, then crops and converts
 * exactly as `exact` does. Training and the parity fixtures use Pillow itself, so they see `exact` pixels, and
 * they keep seeing them: the fast path is an approximation measured against that definition (bench/preprocess.ts,
 * per-image cosine of both committed towers' embeddings ≥ 0.999, mean pixel difference under 0.5/255), far
 * smaller than the augmentations training applies, and training on libvips pixels would tie the checkpoints to
 * one libvips version while every other CLIP consumer resizes with Pillow. A model that proves sensitive to the
 * difference is served with `PREPROCESS=exact`.
 */
import { createHash } from 'node:crypto';
import type { PixelBatch, PreprocessMode, PreprocessSpec } from '@lookalike/core';
import { decodeImage, type DecodeLimits, type DecodeResize } from './decode.js';
import { resizeRgb, type RgbImage } from './resize.js';

/** Changes whenever the preprocessing code would give different pixels for the same spec. */
export const PREPROCESS_VERSION = 1;

/** `v / 255` as float32 for every byte: what `ToTensor` makes of a uint8 pixel. */
const UNIT = Float32Array.from({ length: 256 }, (_, v) => v / 255);

/** Python's `round` (half to even), which torchvision's `center_crop` uses for its offsets. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** torchvision's `Resize(size)` output for an int size: the shortest side becomes `size`. */
export function resizedSize(width: number, height: number, size: number): { width: number; height: number } {
  if (width <= height) return { width: size, height: Math.trunc((size * height) / width) };
  return { width: Math.trunc((size * width) / height), height: size };
}

/**
 * Below this reduction of the shortest side the fast path decodes at full size and resizes exactly: libvips
 * enlarges and barely reduces with a different interpolation than Pillow (measured up to 78/255 apart on a 64 px
 * tile enlarged to 96), and such images are small enough that the exact resize costs little.
 */
export const FAST_MIN_REDUCTION = 2;

/**
 * The {@link DecodeResize} of the fast path: for an image at least {@link FAST_MIN_REDUCTION} × the input size on
 * its shortest side, libvips resizes to exactly the size torchvision's `Resize(S)` gives (so that
 * {@link toPixels} only crops), with the kernel of the spec's filter; smaller images decode at full size.
 */
export function fastResize(spec: Pick<PreprocessSpec, 'size' | 'interpolation'>): DecodeResize {
  return {
    size: (width, height) =>
      Math.min(width, height) >= FAST_MIN_REDUCTION * spec.size ? resizedSize(width, height, spec.size) : undefined,
    kernel: spec.interpolation === 'bicubic' ? 'cubic' : 'linear',
  };
}

/** Resize and centre-crop to `[S, S]` 8-bit RGB, as open_clip's transform does before `ToTensor`. */
export function resizeAndCrop(img: RgbImage, spec: Pick<PreprocessSpec, 'size' | 'interpolation'>): RgbImage {
  const S = spec.size;
  if (!Number.isInteger(S) || S < 1) throw new RangeError(`the model input size must be a positive integer, not ${S}`);
  const target = resizedSize(img.width, img.height, S);
  const resized =
    target.width === img.width && target.height === img.height
      ? img
      : resizeRgb(img, target.width, target.height, spec.interpolation);
  // torchvision pads when the image is smaller than the crop; after the resize above it never is.
  const top = roundHalfEven((resized.height - S) / 2);
  const left = roundHalfEven((resized.width - S) / 2);
  if (top === 0 && left === 0 && resized.width === S && resized.height === S) return resized;
  const out = new Uint8Array(S * S * 3);
  for (let y = 0; y < S; y++) {
    const from = ((y + top) * resized.width + left) * 3;
    out.set(resized.data.subarray(from, from + S * 3), y * S * 3);
  }
  return { data: out, width: S, height: S };
}

/**
 * Writes one image as `[3, S, S]` float32 in [0, 1] (channel-first, what attacks perturb) into `out` at `offset`.
 * Returns `out`.
 */
export function toPixels(
  img: RgbImage,
  spec: Pick<PreprocessSpec, 'size' | 'interpolation'>,
  out = new Float32Array(3 * spec.size * spec.size),
  offset = 0,
): Float32Array {
  // [S, S, 3] uint8 → [3, S, S] in [0,1]
  const { data } = resizeAndCrop(img, spec);
  const plane = spec.size * spec.size;
  if (offset < 0 || offset + 3 * plane > out.length)
    throw new RangeError(`cannot write 3 × ${spec.size} × ${spec.size} pixels at ${offset} into ${out.length} values`);
  for (let p = 0; p < plane; p++) {
    out[offset + p] = UNIT[data[p * 3] as number] as number;
    out[offset + plane + p] = UNIT[data[p * 3 + 1] as number] as number;
    out[offset + 2 * plane + p] = UNIT[data[p * 3 + 2] as number] as number;
  }
  return out;
}

/**
 * `(x - mean) / std` per channel over `[N, 3, S, S]` pixels in [0, 1], in float32 arithmetic exactly as
 * torchvision's `Normalize` on a float32 tensor (subtract, then divide). `S` is `spec.size`. Works in place unless
 * `out` is given; returns the array written.
 */
export function normalize(
  pixels: Float32Array,
  spec: Pick<PreprocessSpec, 'size' | 'mean' | 'std'>,
  out: Float32Array = pixels,
): Float32Array {
  const plane = spec.size * spec.size;
  if (pixels.length % (3 * plane) !== 0)
    throw new RangeError(
      `pixels hold ${pixels.length} values, which is not a whole number of 3 × ${spec.size} × ${spec.size} images`,
    );
  if (out.length !== pixels.length)
    throw new RangeError(`the output holds ${out.length} values; the pixels hold ${pixels.length}`);
  const n = pixels.length / (3 * plane);
  for (let img = 0; img < n; img++) {
    for (let c = 0; c < 3; c++) {
      const mean = Math.fround(spec.mean[c] as number);
      const std = Math.fround(spec.std[c] as number);
      const start = (img * 3 + c) * plane;
      const end = start + plane;
      // float32(float32(x - mean) / std): both steps rounded as torch rounds them.
      for (let i = start; i < end; i++) out[i] = Math.fround((pixels[i] as number) - mean) / std;
    }
  }
  return out;
}

/** Stacks images into one `[N, 3, S, S]` pixel batch in [0, 1] (not normalised). */
export function preprocessBatch(
  images: readonly RgbImage[],
  spec: Pick<PreprocessSpec, 'size' | 'interpolation'>,
): PixelBatch {
  const S = spec.size;
  const data = new Float32Array(images.length * 3 * S * S);
  images.forEach((img, i) => toPixels(img, spec, data, i * 3 * S * S));
  return { data, n: images.length, height: S, width: S };
}

/**
 * Decodes untrusted bytes (see {@link decodeImage} for what is refused) and preprocesses them to `[3, S, S]`
 * pixels in [0, 1], by default on the fast path.
 *
 * @throws ImageRejectedError
 */
export async function fromBytes(
  bytes: Uint8Array,
  spec: Pick<PreprocessSpec, 'size' | 'interpolation'>,
  limits?: DecodeLimits,
  mode: PreprocessMode = 'fast',
): Promise<Float32Array> {
  return toPixels(await decodeImage(bytes, limits, mode === 'fast' ? fastResize(spec) : undefined), spec);
}

/**
 * A short stable hash of everything that decides the pixels a model sees: stored with each vector, so a change
 * of preprocessing marks the vector stale. The `exact` hash is the one vectors carried before the fast path
 * existed; switching `PREPROCESS` re-embeds what the next ingest of a file meets.
 */
export function preprocessHash(spec: PreprocessSpec, mode: PreprocessMode = 'exact'): string {
  const canonical = JSON.stringify({
    v: PREPROCESS_VERSION,
    size: spec.size,
    mean: [...spec.mean],
    std: [...spec.std],
    interpolation: spec.interpolation,
    resize: spec.resize,
    ...(mode === 'exact' ? {} : { mode }),
  });
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}
