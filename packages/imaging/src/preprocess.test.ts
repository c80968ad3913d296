import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeImage } from './decode.js';
import { normalize, preprocessBatch, preprocessHash, resizeAndCrop, resizedSize, toPixels } from './preprocess.js';
import { resizeRgb } from './resize.js';

const FIXTURES = fileURLToPath(new URL('../test/fixtures/', import.meta.url));
interface Case {
  kind: 'clip' | 'resize';
  source: string;
  size?: number;
  width?: number;
  height?: number;
  filter?: 'bicubic' | 'bilinear';
  u8: string;
  f32?: string;
}
const index = JSON.parse(readFileSync(join(FIXTURES, 'index.json'), 'utf8')) as {
  mean: [number, number, number];
  std: [number, number, number];
  cases: Case[];
};
const spec = (size: number) =>
  ({ size, mean: index.mean, std: index.std, interpolation: 'bicubic', resize: 'shortest' }) as const;
const read = (file: string) => new Uint8Array(readFileSync(join(FIXTURES, file)));
const readF32 = (file: string) => {
  const b = readFileSync(join(FIXTURES, file));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
};

describe('CLIP preprocessing against Pillow + torchvision references', () => {
  // PNG sources decode identically in sharp and Pillow, so resize and crop must match byte for byte.
  for (const c of index.cases.filter((c) => !c.source.endsWith('.jpg'))) {
    it(`matches ${c.u8} exactly`, async () => {
      const img = await decodeImage(read(c.source));
      const expected = read(c.u8);
      const actual =
        c.kind === 'clip'
          ? resizeAndCrop(img, spec(c.size!))
          : resizeRgb(img, c.width!, c.height!, c.filter ?? 'bicubic');
      expect(actual.data.length).toBe(expected.length);
      expect(maxAbsDiff(actual.data, expected)).toBe(0);
      if (c.f32) {
        const pixels = toPixels(img, spec(c.size!));
        const tensor = normalize({ data: pixels, n: 1, height: c.size!, width: c.size! }, spec(c.size!));
        expect(maxAbsDiff(tensor, readF32(c.f32))).toBeLessThanOrEqual(1e-6);
      }
    });
  }

  // JPEG: libjpeg-turbo in libvips and in Pillow may round IDCT output differently, so a pixel can differ by a
  // few levels on other builds (measured here: 0 levels, Pillow 9.4 vs sharp 0.34); the bound allows 2.
  for (const c of index.cases.filter((c) => c.source.endsWith('.jpg'))) {
    it(`matches ${c.u8} within JPEG decoder tolerance`, async () => {
      const img = await decodeImage(read(c.source));
      const actual = resizeAndCrop(img, spec(c.size!));
      expect(maxAbsDiff(actual.data, read(c.u8))).toBeLessThanOrEqual(2);
      const tensor = normalize(
        { data: toPixels(img, spec(c.size!)), n: 1, height: c.size!, width: c.size! },
        spec(c.size!),
      );
      // 2 levels / 255 / smallest std ≈ 0.030
      expect(maxAbsDiff(tensor, readF32(c.f32!))).toBeLessThanOrEqual(0.031);
    });
  }
});

describe(resizedSize.name, () => {
  it('sets the shortest side and truncates the other as torchvision does', () => {
    expect(resizedSize(200, 150, 96)).toEqual({ width: 128, height: 96 });
    expect(resizedSize(31, 80, 24)).toEqual({ width: 24, height: 61 }); // 61.93 truncated
    expect(resizedSize(64, 64, 64)).toEqual({ width: 64, height: 64 });
  });
});

describe(resizeRgb.name, () => {
  const arb = fc.record({
    w: fc.integer({ min: 1, max: 24 }),
    h: fc.integer({ min: 1, max: 24 }),
    ow: fc.integer({ min: 1, max: 30 }),
    oh: fc.integer({ min: 1, max: 30 }),
    seed: fc.integer(),
  });
  it('returns the requested size with every value a byte, and is the identity at the same size', () => {
    fc.assert(
      fc.property(arb, ({ w, h, ow, oh, seed }) => {
        const data = new Uint8Array(w * h * 3).map((_, i) => (i * 2654435761 + seed) >>> 24);
        const out = resizeRgb({ data, width: w, height: h }, ow, oh);
        expect(out.data.length).toBe(ow * oh * 3);
        expect(resizeRgb({ data, width: w, height: h }, w, h).data).toEqual(data);
      }),
    );
  });
  it('keeps a constant image constant', () => {
    const data = new Uint8Array(13 * 7 * 3).fill(200);
    const out = resizeRgb({ data, width: 13, height: 7 }, 40, 3);
    expect(new Set(out.data)).toEqual(new Set([200]));
  });
  it('rejects impossible sizes and inconsistent buffers', () => {
    const img = { data: new Uint8Array(12), width: 2, height: 2 };
    expect(() => resizeRgb(img, 0, 3)).toThrow(RangeError);
    expect(() => resizeRgb({ ...img, width: 3 }, 2, 2)).toThrow(RangeError);
  });
});

describe(preprocessBatch.name, () => {
  it('stacks images as [N, 3, S, S] pixels in [0, 1]', async () => {
    const a = await decodeImage(read('wide-37x23.png'));
    const b = await decodeImage(read('tall-31x80.png'));
    const batch = preprocessBatch([a, b], spec(24));
    expect(batch).toMatchObject({ n: 2, height: 24, width: 24 });
    expect(batch.data.length).toBe(2 * 3 * 24 * 24);
    expect(batch.data.every((v) => v >= 0 && v <= 1)).toBe(true);
    expect(batch.data.subarray(3 * 24 * 24)).toEqual(toPixels(b, spec(24)));
  });
});

describe(preprocessHash.name, () => {
  it('is stable and changes with any field', () => {
    const base = spec(96);
    expect(preprocessHash(base)).toBe(preprocessHash({ ...base }));
    expect(preprocessHash(base)).toMatch(/^[0-9a-f]{16}$/);
    const variants = [
      { ...base, size: 97 },
      { ...base, interpolation: 'bilinear' as const },
      { ...base, mean: [0.5, 0.5, 0.5] as const },
      { ...base, std: [0.5, 0.5, 0.5] as const },
    ];
    for (const v of variants) expect(preprocessHash(v)).not.toBe(preprocessHash(base));
  });
});
