import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateCatalog } from '@lookalike/synth';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage } from './decode.js';
import { FAST_MIN_REDUCTION, fastResize, fromBytes, preprocessHash } from './preprocess.js';
import {
  MainThreadPreparer,
  PreprocessPool,
  isPrepareFailure,
  prepareImage,
  type PixelSpec,
} from './preprocess-pool.js';

const MODEL_FIXTURES = fileURLToPath(new URL('../../../models/fixtures/images/', import.meta.url));
const TINY: PixelSpec = { size: 96, interpolation: 'bicubic' };
const SPECS: PixelSpec[] = [TINY, { size: 64, interpolation: 'bilinear' }];

/**
 * How far the fast path's `[3, S, S]` pixels may lie from the exact path's, in 1/255 steps. Measured over the
 * fixtures below and bench/preprocess.ts's catalog images (1024 × 768 and 4000 × 3000 JPEG, 1024 px PNG): mean
 * |Δ| at most 0.73/255 (bilinear, 4× reduction) and 0.4/255 (bicubic); the largest single value 10/255, at sharp
 * edges. The bounds leave some room for another libvips; a blackened transparent area, a missed rotation or a
 * wrong crop is far outside them.
 */
const MEAN_BOUND = 1;
const MAX_BOUND = 12;

function difference(a: Float32Array, b: Float32Array): { mean: number; max: number } {
  expect(a.length).toBe(b.length);
  let sum = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!) * 255;
    sum += d;
    max = Math.max(max, d);
  }
  return { mean: sum / a.length, max };
}

async function expectClose(bytes: Uint8Array, spec: PixelSpec, name: string): Promise<void> {
  const fast = await fromBytes(bytes, spec, undefined, 'fast');
  const exact = await fromBytes(bytes, spec, undefined, 'exact');
  const d = difference(fast, exact);
  expect(d.mean, `${name} at ${spec.size} px: mean |Δ|`).toBeLessThanOrEqual(MEAN_BOUND);
  expect(d.max, `${name} at ${spec.size} px: max |Δ|`).toBeLessThanOrEqual(MAX_BOUND);
}

/** A w × h card: left half red, right half blue, a green marker in the top-left quarter, and a fine checker. */
function card(w: number, h: number): Buffer {
  const data = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const base = x < w / 4 && y < h / 4 ? [0, 200, 0] : x < w / 2 ? [220, 30, 20] : [20, 30, 220];
      const checker = ((x >> 3) + (y >> 3)) % 2 ? 20 : -20;
      data.set(
        base.map((v) => Math.min(255, Math.max(0, v + checker))),
        (y * w + x) * 3,
      );
    }
  return data;
}

const raw = (w: number, h: number, channels: 3 | 4 = 3) => ({ raw: { width: w, height: h, channels } });

let dir: string;
let catalog: Uint8Array[];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fast-path-'));
  await generateCatalog({ count: 3, seed: 5, outDir: dir, size: 768, format: 'jpeg' });
  const files = (await readdir(join(dir, 'images'))).sort();
  catalog = await Promise.all(files.map(async (f) => new Uint8Array(await readFile(join(dir, 'images', f)))));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('fast preprocessing', () => {
  it('stays within the measured bound of the exact path on catalog JPEGs and PNG renders', async () => {
    expect(catalog).toHaveLength(3);
    for (const [i, bytes] of catalog.entries()) for (const spec of SPECS) await expectClose(bytes, spec, `jpeg ${i}`);
    const pngs = (await readdir(MODEL_FIXTURES)).filter((f) => f.endsWith('.png') && !f.includes('96px'));
    expect(pngs.length).toBeGreaterThan(2);
    for (const f of pngs)
      for (const spec of SPECS) await expectClose(new Uint8Array(await readFile(MODEL_FIXTURES + f)), spec, f);
  });

  it('resizes a large JPEG in libvips and a small image exactly, so only large images differ', async () => {
    const big = catalog[0]!;
    const decoded = await decodeImage(big, {}, fastResize(TINY));
    // 768 px square → 96 × 96: never decoded at full size.
    expect(decoded).toMatchObject({ width: 96, height: 96, originalWidth: 768, originalHeight: 768 });
    const small = await sharp(card(150, 100), raw(150, 100)).png().toBuffer();
    expect(Math.min(150, 100)).toBeLessThan(FAST_MIN_REDUCTION * TINY.size);
    expect(await fromBytes(small, TINY, undefined, 'fast')).toEqual(await fromBytes(small, TINY, undefined, 'exact'));
    expect(await fromBytes(big, TINY, undefined, 'fast')).not.toEqual(await fromBytes(big, TINY, undefined, 'exact'));
  });

  it('applies EXIF orientation before resizing, and reports the upright size', async () => {
    const stored = await sharp(card(400, 240), raw(400, 240)).jpeg({ quality: 95 }).toBuffer();
    const rotated = await sharp(stored).withMetadata({ orientation: 6 }).toBuffer();
    const outcome = await prepareImage(rotated, [TINY]);
    if (isPrepareFailure(outcome)) throw new Error(outcome.reason);
    expect(outcome).toMatchObject({ format: 'jpeg', width: 240, height: 400 });
    await expectClose(rotated, TINY, 'orientation 6');
    // Rotated, the image differs from the unrotated one by far more than the bound.
    const d = difference(await fromBytes(rotated, TINY), await fromBytes(stored, TINY));
    expect(d.max).toBeGreaterThan(100);
  });

  it('keeps the colour under transparent pixels, as the exact path (PIL convert("RGB")) does', async () => {
    const w = 320;
    const h = 256;
    const rgba = Buffer.alloc(w * h * 4);
    const rgb = card(w, h);
    // Opaque left half, fully transparent right half whose colour must survive.
    for (let p = 0; p < w * h; p++)
      rgba.set([rgb[p * 3]!, rgb[p * 3 + 1]!, rgb[p * 3 + 2]!, p % w < w / 2 ? 255 : 0], p * 4);
    const png = await sharp(rgba, raw(w, h, 4))
      .png()
      .toBuffer();
    await expectClose(png, TINY, 'alpha');
    const pixels = await fromBytes(png, TINY);
    // Blue channel of the top-right corner: the transparent blue half, not black.
    expect(pixels[2 * 96 * 96 + 95]! * 255).toBeGreaterThan(150);
  });

  it('expands greyscale to three equal channels', async () => {
    const grey = await sharp(card(300, 300), raw(300, 300)).toColourspace('b-w').png().toBuffer();
    expect((await sharp(grey).metadata()).channels).toBe(1);
    await expectClose(grey, TINY, 'greyscale');
    const pixels = await fromBytes(grey, TINY);
    const plane = 96 * 96;
    for (let p = 0; p < plane; p += 97) {
      expect(pixels[p]).toBe(pixels[plane + p]);
      expect(pixels[p]).toBe(pixels[2 * plane + p]);
    }
  });

  it('enforces the pixel limit from the full size in the header, before decoding', async () => {
    const jpeg = await sharp(card(2000, 1500), raw(2000, 1500)).jpeg().toBuffer();
    // The fast path would only ever hold 128 × 96 pixels; the limit is about the file, so it still refuses.
    await expect(fromBytes(jpeg, TINY, { maxPixels: 2_999_999 })).rejects.toMatchObject({
      code: 'IMAGE_TOO_MANY_PIXELS',
      details: { width: 2000, height: 1500 },
    });
    await expect(fromBytes(jpeg, TINY, { maxPixels: 3_000_000 })).resolves.toHaveLength(3 * 96 * 96);
  });

  it('is the default of prepareImage, both preparers and fromBytes', async () => {
    const bytes = catalog[1]!;
    const fast = await fromBytes(bytes, TINY, undefined, 'fast');
    const exact = await fromBytes(bytes, TINY, undefined, 'exact');
    expect(fast).not.toEqual(exact);
    expect(await fromBytes(bytes, TINY)).toEqual(fast);
    const inline = await prepareImage(bytes, [TINY]);
    const main = await new MainThreadPreparer().prepare([bytes], [TINY]);
    const pool = new PreprocessPool({ threads: 1 });
    try {
      const [pooled] = await pool.prepare([new Uint8Array(bytes)], [TINY]);
      const [pooledExact] = await pool.prepare([new Uint8Array(bytes)], [TINY], undefined, 'exact');
      for (const outcome of [inline, main[0]!, pooled!]) {
        if (isPrepareFailure(outcome)) throw new Error(outcome.reason);
        expect(outcome.pixels[0]).toEqual(fast);
      }
      if (!pooledExact || isPrepareFailure(pooledExact)) throw new Error('the exact path refused the image');
      expect(pooledExact.pixels[0]).toEqual(exact);
    } finally {
      await pool.close();
    }
  });

  it('has its own preprocessing hash, and leaves the exact hash as it was', () => {
    const spec = {
      size: 96,
      mean: [0.48145466, 0.4578275, 0.40821073],
      std: [0.26862954, 0.26130258, 0.27577711],
      interpolation: 'bicubic',
      resize: 'shortest',
    } as const;
    expect(preprocessHash(spec, 'exact')).toBe(preprocessHash(spec));
    expect(preprocessHash(spec, 'fast')).not.toBe(preprocessHash(spec));
  });
});
