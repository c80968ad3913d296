import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PreprocessSpec } from '@lookalike/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeImage } from './decode.js';
import {
  fromBytes,
  normalize,
  preprocessBatch,
  preprocessHash,
  resizeAndCrop,
  resizedSize,
  toPixels,
} from './preprocess.js';
import { resizeRgb, type ResampleFilter } from './resize.js';

const FIXTURES = fileURLToPath(new URL('../test/fixtures/', import.meta.url));

/** One reference output of make_fixtures.py (Pillow + torchvision). */
interface Case {
  kind: 'clip' | 'resize';
  source: string;
  size?: number;
  interpolation?: ResampleFilter;
  width?: number;
  height?: number;
  filter?: ResampleFilter;
  /** Expected uint8 `[H, W, 3]`, or its sha256 when too big to keep. */
  bin?: string;
  binSha256?: string;
  /** Expected normalised float32 `[3, S, S]`, every `f32Stride`-th value. */
  f32?: string;
  f32Stride?: number;
}
const index = JSON.parse(readFileSync(join(FIXTURES, 'index.json'), 'utf8')) as {
  mean: [number, number, number];
  std: [number, number, number];
  cases: Case[];
};
const spec = (size: number, interpolation: ResampleFilter = 'bicubic'): PreprocessSpec => ({
  size,
  mean: index.mean,
  std: index.std,
  interpolation,
  resize: 'shortest',
});
const read = (file: string) => new Uint8Array(readFileSync(join(FIXTURES, file)));
const readF32 = (file: string) => {
  const b = readFileSync(join(FIXTURES, file));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
};
const every = (a: Float32Array, stride: number) => a.filter((_, i) => i % stride === 0);
const sha256 = (a: Uint8Array) => createHash('sha256').update(a).digest('hex');

/** What the TypeScript port makes of a case: the uint8 image and, for clip cases, the normalised tensor. */
async function run(c: Case): Promise<{ u8: Uint8Array; tensor?: Float32Array }> {
  const img = await decodeImage(read(c.source));
  if (c.kind === 'resize') return { u8: resizeRgb(img, c.width!, c.height!, c.filter).data };
  const s = spec(c.size!, c.interpolation);
  return { u8: resizeAndCrop(img, s).data, tensor: normalize(toPixels(img, s), s) };
}

describe('CLIP preprocessing against Pillow + torchvision references', () => {
  // PNG sources decode to the same pixels in sharp and Pillow, so the port must match byte for byte.
  for (const c of index.cases.filter((c) => c.source.endsWith('.png'))) {
    const what = c.kind === 'clip' ? `clip ${c.size} ${c.interpolation}` : `${c.filter} ${c.width}×${c.height}`;
    it(`matches ${c.source} → ${what} exactly`, async () => {
      const { u8, tensor } = await run(c);
      if (c.bin) expect(maxAbsDiff(u8, read(c.bin))).toBe(0);
      else expect(sha256(u8)).toBe(c.binSha256);
      if (c.f32) expect(maxAbsDiff(every(tensor!, c.f32Stride!), readF32(c.f32))).toBeLessThanOrEqual(1e-6);
    });
  }

  // JPEG: Pillow decodes with libjpeg-turbo, sharp with mozjpeg; builds may round the IDCT or chroma upsampling
  // differently. Measured on these fixtures (Pillow 9.4.0 vs sharp 0.34.5 / libvips 8.17.3): max |Δ| = 0 levels,
  // both on the raw decode and after resize + crop. The bound allows the ±1 level that other libjpeg builds are
  // known to differ by, i.e. 1 / 255 / min(std) ≈ 0.0146 in the normalised tensor.
  const JPEG_U8 = 1;
  for (const c of index.cases.filter((c) => c.source.endsWith('.jpg'))) {
    it(`matches ${c.source} → clip ${c.size} within the JPEG decoder tolerance`, async () => {
      const { u8, tensor } = await run(c);
      expect(maxAbsDiff(u8, read(c.bin!))).toBeLessThanOrEqual(JPEG_U8);
      const bound = JPEG_U8 / 255 / Math.min(...index.std) + 1e-6;
      expect(maxAbsDiff(every(tensor!, c.f32Stride!), readF32(c.f32!))).toBeLessThanOrEqual(bound);
    });
  }
});

describe(resizedSize.name, () => {
  it('sets the shortest side and truncates the other as torchvision does', () => {
    expect(resizedSize(200, 150, 96)).toEqual({ width: 128, height: 96 });
    expect(resizedSize(31, 80, 24)).toEqual({ width: 24, height: 61 }); // 61.93 truncated
    expect(resizedSize(20, 33, 64)).toEqual({ width: 64, height: 105 }); // 105.6 truncated
    expect(resizedSize(64, 64, 64)).toEqual({ width: 64, height: 64 });
  });
});

describe(resizeRgb.name, () => {
  const arb = fc.record({
    w: fc.integer({ min: 1, max: 24 }),
    h: fc.integer({ min: 1, max: 24 }),
    ow: fc.integer({ min: 1, max: 40 }),
    oh: fc.integer({ min: 1, max: 40 }),
    seed: fc.integer(),
  });
  const noise = (w: number, h: number, seed: number) =>
    new Uint8Array(w * h * 3).map((_, i) => Math.imul(i + 1, 2654435761 ^ seed) >>> 24);

  it('gives the requested size with every value a byte, for both filters', () => {
    fc.assert(
      fc.property(arb, fc.constantFrom<ResampleFilter>('bicubic', 'bilinear'), ({ w, h, ow, oh, seed }, filter) => {
        const out = resizeRgb({ data: noise(w, h, seed), width: w, height: h }, ow, oh, filter);
        expect(out).toMatchObject({ width: ow, height: oh });
        expect(out.data).toBeInstanceOf(Uint8Array);
        expect(out.data.length).toBe(ow * oh * 3);
        expect(out.data.every((v) => Number.isInteger(v) && v >= 0 && v <= 255)).toBe(true);
      }),
    );
  });
  it('is the identity (a copy) when the size is unchanged', () => {
    fc.assert(
      fc.property(arb, ({ w, h, seed }) => {
        const data = noise(w, h, seed);
        const out = resizeRgb({ data, width: w, height: h }, w, h);
        expect(out.data).toEqual(data);
        expect(out.data).not.toBe(data);
      }),
    );
  });
  it('stays within the input range with the bilinear filter, which has no negative lobes', () => {
    fc.assert(
      fc.property(arb, ({ w, h, ow, oh, seed }) => {
        const data = noise(w, h, seed);
        const out = resizeRgb({ data, width: w, height: h }, ow, oh, 'bilinear');
        for (let c = 0; c < 3; c++) {
          const channel = (a: Uint8Array) => a.filter((_, i) => i % 3 === c);
          const [lo, hi] = [Math.min(...channel(data)), Math.max(...channel(data))];
          expect(channel(out.data).every((v) => v >= lo && v <= hi)).toBe(true);
        }
      }),
    );
  });
  it('keeps a constant image constant', () => {
    const data = new Uint8Array(13 * 7 * 3).fill(200);
    for (const filter of ['bicubic', 'bilinear'] as const) {
      const out = resizeRgb({ data, width: 13, height: 7 }, 40, 3, filter);
      expect(new Set(out.data)).toEqual(new Set([200]));
    }
  });
  it('rejects impossible sizes and inconsistent buffers', () => {
    const img = { data: new Uint8Array(12), width: 2, height: 2 };
    expect(() => resizeRgb(img, 0, 3)).toThrow(RangeError);
    expect(() => resizeRgb(img, 2.5, 3)).toThrow(RangeError);
    expect(() => resizeRgb({ ...img, width: 3 }, 2, 2)).toThrow(RangeError);
  });
});

describe(toPixels.name, () => {
  it('gives [3, S, S] values in [0, 1] for any image shape', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 24 }),
        fc.integer(),
        (w, h, size, seed) => {
          const data = new Uint8Array(w * h * 3).map((_, i) => Math.imul(i + 7, 2246822519 ^ seed) >>> 24);
          const pixels = toPixels({ data, width: w, height: h }, spec(size));
          expect(pixels.length).toBe(3 * size * size);
          expect(pixels.every((v) => v >= 0 && v <= 1)).toBe(true);
        },
      ),
    );
  });
  it('puts channels first and scales by 1/255 as ToTensor does', () => {
    // [2, 2, 3] uint8, already S × S: no resize, no crop.
    const data = new Uint8Array([255, 0, 51, 0, 255, 102, 1, 2, 3, 254, 128, 0]);
    const u = (v: number) => Math.fround(v / 255);
    expect(Array.from(toPixels({ data, width: 2, height: 2 }, spec(2)))).toEqual(
      [255, 0, 1, 254, 0, 255, 2, 128, 51, 102, 3, 0].map(u),
    );
  });
});

describe(normalize.name, () => {
  const pixels = () => new Float32Array([0, 0.5, 1, 0.25, 0, 1, 1, 0.75, 0, 0.2, 0.4, 0.6]); // [1, 3, 2, 2]
  const s = { size: 2, mean: [0.5, 0.25, 0.125] as const, std: [0.5, 0.25, 2] as const };

  it('subtracts the mean and divides by the std per channel, in place by default', () => {
    const p = pixels();
    expect(normalize(p, s)).toBe(p);
    expect(Array.from(p.subarray(0, 8))).toEqual([-1, 0, 1, -0.5, -1, 3, 3, 2]);
    expect(p[8]).toBe(Math.fround(-0.125 / 2));
  });
  it('writes into out and leaves the pixels alone when given one', () => {
    const p = pixels();
    const out = new Float32Array(p.length);
    expect(normalize(p, s, out)).toBe(out);
    expect(p).toEqual(pixels());
    expect(out).toEqual(normalize(pixels(), s));
  });
  it('refuses arrays that are not whole images', () => {
    expect(() => normalize(new Float32Array(11), s)).toThrow(RangeError);
    expect(() => normalize(pixels(), s, new Float32Array(3))).toThrow(RangeError);
  });
});

describe(preprocessBatch.name, () => {
  it('stacks images as [N, 3, S, S] pixels in [0, 1]', async () => {
    const a = await decodeImage(read('gradient-37x23.png'));
    const b = await decodeImage(read('tall-20x33.png'));
    const batch = preprocessBatch([a, b], spec(24));
    expect(batch).toMatchObject({ n: 2, height: 24, width: 24 });
    expect(batch.data.length).toBe(2 * 3 * 24 * 24);
    expect(batch.data.every((v) => v >= 0 && v <= 1)).toBe(true);
    expect(batch.data.subarray(0, 3 * 24 * 24)).toEqual(toPixels(a, spec(24)));
    expect(batch.data.subarray(3 * 24 * 24)).toEqual(toPixels(b, spec(24)));
  });
});

describe(fromBytes.name, () => {
  it('decodes and preprocesses in one call, exactly when asked to', async () => {
    const bytes = read('scene-300x300.png');
    expect(await fromBytes(bytes, spec(32), undefined, 'exact')).toEqual(toPixels(await decodeImage(bytes), spec(32)));
  });
  it('passes the decode limits on', async () => {
    await expect(fromBytes(read('scene-300x300.png'), spec(32), { maxPixels: 1000 })).rejects.toMatchObject({
      code: 'IMAGE_TOO_MANY_PIXELS',
    });
  });
});

describe(preprocessHash.name, () => {
  const base = spec(224);

  it('is 16 lowercase hex characters and stable across calls and key order', () => {
    const reordered: PreprocessSpec = {
      resize: 'shortest',
      interpolation: 'bicubic',
      std: [...index.std],
      mean: [...index.mean],
      size: 224,
    };
    expect(preprocessHash(base)).toMatch(/^[0-9a-f]{16}$/);
    expect(preprocessHash(reordered)).toBe(preprocessHash(base));
    // Pinned: stored vectors carry this hash, so a change here marks every stored vector stale.
    expect(preprocessHash(base)).toBe('9ab7444a2f65a8b5');
  });
  it('changes when any field changes', () => {
    const variants: PreprocessSpec[] = [
      { ...base, size: 225 },
      { ...base, interpolation: 'bilinear' },
      { ...base, mean: [0.5, 0.4578275, 0.40821073] },
      { ...base, std: [0.26862954, 0.26130258, 0.5] },
      { ...base, resize: 'longest' as PreprocessSpec['resize'] },
    ];
    const hashes = new Set([base, ...variants].map((s) => preprocessHash(s)));
    expect(hashes.size).toBe(variants.length + 1);
  });
});
