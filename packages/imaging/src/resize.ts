/**
 * Pillow's `Image.resize` for 8-bit RGB, ported exactly (Pillow's `libImaging/Resample.c`): a separable
 * convolution whose kernel widens with the downscale factor (antialiasing), fixed-point weights with 22 fractional
 * bits, a horizontal pass over only the rows the vertical pass reads, then a vertical pass, each rounding and
 * clamping to 8 bits. CLIP checkpoints were trained on pixels made this way, so matching it bit for bit keeps the
 * embeddings of TypeScript and Python identical.
 */

/** Resampling filters Pillow offers that CLIP preprocessing uses. */
export type ResampleFilter = 'bicubic' | 'bilinear';

/** An 8-bit RGB image, `[H, W, 3]` row-major. */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);

interface Filter {
  support: number;
  weight(x: number): number;
}

const FILTERS: Record<ResampleFilter, Filter> = {
  bicubic: {
    support: 2,
    // Keys' cubic with a = -0.5, as Pillow uses.
    weight(x) {
      const a = -0.5;
      if (x < 0) x = -x;
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
  bilinear: {
    support: 1,
    weight(x) {
      if (x < 0) x = -x;
      return x < 1 ? 1 - x : 0;
    },
  },
};

interface Coefficients {
  /** Kernel taps per output sample. */
  ksize: number;
  /** `[out, 2]`: first input index and number of taps. */
  bounds: Int32Array;
  /** `[out, ksize]` fixed-point weights. */
  weights: Int32Array;
}

/** Pillow's `precompute_coeffs` followed by `normalize_coeffs_8bpc`. */
function coefficients(inSize: number, outSize: number, filter: Filter): Coefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filter.support * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * ksize);
  const row = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterScale;
    // C's (int) cast truncates toward zero; the arguments here are >= -support + 0.5, so trunc is what Pillow does.
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let sum = 0;
    for (let x = 0; x < xmax; x++) {
      const w = filter.weight((x + xmin - center + 0.5) * ss);
      row[x] = w;
      sum += w;
    }
    for (let x = 0; x < ksize; x++) {
      // Pillow divides only when the sum is non-zero, and zeroes the taps past xmax.
      const w = x < xmax ? (sum !== 0 ? (row[x] as number) / sum : (row[x] as number)) : 0;
      weights[xx * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * ONE) : Math.trunc(0.5 + w * ONE);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, weights };
}

// Sums stay below 2^53 (255 · 2^22 · ksize), so plain numbers are exact; the shift is a floor division.
function clip8(sum: number): number {
  if (sum <= 0) return 0;
  const v = Math.floor(sum / ONE);
  return v > 255 ? 255 : v;
}

/**
 * Resizes an RGB image to `width` × `height` exactly as Pillow's `Image.resize((width, height), filter)` does for
 * mode `RGB` (no `box`, no `reducing_gap`).
 */
export function resizeRgb(src: RgbImage, width: number, height: number, filter: ResampleFilter = 'bicubic'): RgbImage {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1)
    throw new RangeError(`cannot resize to ${width} × ${height}`);
  if (src.data.length !== src.width * src.height * 3)
    throw new RangeError(`image data holds ${src.data.length} bytes, not ${src.width} × ${src.height} × 3`);
  if (width === src.width && height === src.height) return { data: src.data.slice(), width, height };
  const f = FILTERS[filter];
  const needH = width !== src.width;
  const needV = height !== src.height;
  const horiz = coefficients(src.width, width, f);
  const vert = coefficients(src.height, height, f);

  let image = src;
  if (needH) {
    // Only rows the vertical pass reads: from the first tap of the first output row to the last tap of the last.
    const first = needV ? (vert.bounds[0] as number) : 0;
    const last = needV
      ? (vert.bounds[(height - 1) * 2] as number) + (vert.bounds[(height - 1) * 2 + 1] as number)
      : src.height;
    const rows = last - first;
    const out = new Uint8Array(width * rows * 3);
    const { ksize, bounds, weights } = horiz;
    const inData = src.data;
    for (let y = 0; y < rows; y++) {
      const inRow = (y + first) * src.width * 3;
      const outRow = y * width * 3;
      for (let xx = 0; xx < width; xx++) {
        const xmin = bounds[xx * 2] as number;
        const xmax = bounds[xx * 2 + 1] as number;
        const k = xx * ksize;
        let s0 = HALF;
        let s1 = HALF;
        let s2 = HALF;
        let p = inRow + xmin * 3;
        for (let x = 0; x < xmax; x++, p += 3) {
          const w = weights[k + x] as number;
          s0 += (inData[p] as number) * w;
          s1 += (inData[p + 1] as number) * w;
          s2 += (inData[p + 2] as number) * w;
        }
        const o = outRow + xx * 3;
        out[o] = clip8(s0);
        out[o + 1] = clip8(s1);
        out[o + 2] = clip8(s2);
      }
    }
    if (needV) for (let i = 0; i < height; i++) vert.bounds[i * 2] = (vert.bounds[i * 2] as number) - first;
    image = { data: out, width, height: rows };
  }
  if (!needV) return image;

  const out = new Uint8Array(width * height * 3);
  const { ksize, bounds, weights } = vert;
  const inData = image.data;
  const stride = width * 3;
  for (let yy = 0; yy < height; yy++) {
    const ymin = bounds[yy * 2] as number;
    const ymax = bounds[yy * 2 + 1] as number;
    const k = yy * ksize;
    const outRow = yy * stride;
    for (let xx = 0; xx < stride; xx++) {
      let s = HALF;
      let p = ymin * stride + xx;
      for (let y = 0; y < ymax; y++, p += stride) s += (inData[p] as number) * (weights[k + y] as number);
      out[outRow + xx] = clip8(s);
    }
  }
  return { data: out, width, height };
}
