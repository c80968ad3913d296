import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { DISTORTED_MANIFEST, generateCatalog, renderImage, type ManifestRecord } from './catalog.js';
import { DISTORTION_KINDS, distortImage, distortionParameter, qualityTarget, type RgbImage } from './distort.js';
import { distortionRecipe } from './distorted.js';
import { createRng } from './random.js';
import { sampleSpec } from './spec.js';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function photo(): Promise<RgbImage> {
  const { data, info } = await sharp(await renderImage(sampleSpec(3, 1), 128, 'png'))
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data), width: info.width, height: info.height };
}

/** Mean absolute difference per channel value. */
function difference(a: Uint8Array, b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i]! - b[i]!);
  return s / a.length;
}

/** Mean absolute difference between horizontally adjacent pixels: falls when an image is blurred. */
function sharpness(im: RgbImage): number {
  let s = 0;
  for (let y = 0; y < im.height; y++)
    for (let x = 1; x < im.width; x++)
      for (let c = 0; c < 3; c++)
        s += Math.abs(im.data[(y * im.width + x) * 3 + c]! - im.data[(y * im.width + x - 1) * 3 + c]!);
  return s / (im.height * (im.width - 1) * 3);
}

/** A seeded uniform source, as `distortImage` takes one. */
function source(...keys: (number | string)[]): () => number {
  const rng = createRng(...keys);
  return () => rng.next();
}

const mean = (im: RgbImage) => im.data.reduce((s, v) => s + v, 0) / im.data.length;
const spread = (im: RgbImage) => {
  const m = mean(im);
  return Math.sqrt(im.data.reduce((s, v) => s + (v - m) ** 2, 0) / im.data.length);
};

describe(qualityTarget.name, () => {
  it('is the product of (1 − severity): 1 undistorted, falling with every severity, 0 at the hardest', () => {
    expect(qualityTarget([])).toBe(1);
    expect(qualityTarget([{ kind: 'blur', severity: 0.5 }])).toBeCloseTo(0.5);
    expect(
      qualityTarget([
        { kind: 'blur', severity: 0.3 },
        { kind: 'noise', severity: 0.3 },
      ]),
    ).toBeCloseTo(0.49);
    expect(qualityTarget([{ kind: 'jpeg', severity: 1 }])).toBe(0);
    let last = 1;
    for (const s of [0, 0.1, 0.4, 0.7, 1]) {
      const q = qualityTarget([{ kind: 'motion', severity: s }]);
      expect(q).toBeLessThanOrEqual(last);
      last = q;
    }
  });
});

describe(distortImage.name, () => {
  it('changes nothing at severity 0 and each kind in its own direction at severity 0.8', async () => {
    const image = await photo();
    const rng = () => source(1, 'test');
    for (const kind of DISTORTION_KINDS) {
      const same = await distortImage(image, [{ kind, severity: 0 }], rng());
      expect(same.data).toEqual(image.data);
    }
    const at = (kind: (typeof DISTORTION_KINDS)[number]) => distortImage(image, [{ kind, severity: 0.8 }], rng());
    expect(sharpness(await at('blur'))).toBeLessThan(sharpness(image) * 0.6);
    expect(sharpness(await at('motion'))).toBeLessThan(sharpness(image) * 0.8);
    expect(sharpness(await at('noise'))).toBeGreaterThan(sharpness(image) * 2);
    expect(mean(await at('overexposure'))).toBeGreaterThan(mean(image) + 40);
    expect(mean(await at('underexposure'))).toBeLessThan(mean(image) * 0.5);
    expect(spread(await at('contrast'))).toBeLessThan(spread(image) * 0.4);
    expect(difference((await at('jpeg')).data, image.data)).toBeGreaterThan(1);
  });

  it('is reproducible with the same random source and keeps the size', async () => {
    const image = await photo();
    const recipe = [
      { kind: 'noise', severity: 0.5 },
      { kind: 'jpeg', severity: 0.6 },
    ] as const;
    const a = await distortImage(image, recipe, source(9, 'n'));
    const b = await distortImage(image, recipe, source(9, 'n'));
    expect(a.data).toEqual(b.data);
    expect([a.width, a.height, a.data.length]).toEqual([image.width, image.height, image.data.length]);
  });

  it('refuses a kind given twice, an unknown kind and a severity that is not a number', async () => {
    const image = await photo();
    const rng = source(1);
    await expect(
      distortImage(
        image,
        [
          { kind: 'blur', severity: 0.2 },
          { kind: 'blur', severity: 0.4 },
        ],
        rng,
      ),
    ).rejects.toThrow(/given twice/);
    await expect(distortImage(image, [{ kind: 'smudge' as never, severity: 0.2 }], rng)).rejects.toThrow(/unknown/);
    await expect(distortImage(image, [{ kind: 'noise', severity: Number.NaN }], rng)).rejects.toThrow(RangeError);
  });

  it('scales lengths with the image: the same severity blurs a 4× larger photo 4× as far', () => {
    const small = distortionParameter({ kind: 'blur', severity: 0.5 }, 256).value - 0.3;
    const large = distortionParameter({ kind: 'blur', severity: 0.5 }, 1024).value - 0.3;
    expect(large / small).toBeCloseTo(4);
    expect(distortionParameter({ kind: 'jpeg', severity: 0 }, 256).value).toBe(95);
    expect(distortionParameter({ kind: 'jpeg', severity: 1 }, 256).value).toBe(5);
  });
});

describe(distortionRecipe.name, () => {
  it('is seeded, never over- and underexposes at once, and its hard recipes are unusable', () => {
    expect(distortionRecipe(4, 17)).toEqual(distortionRecipe(4, 17));
    for (let i = 0; i < 300; i++) {
      const r = distortionRecipe(4, i);
      const kinds = r.distortions.map((d) => d.kind);
      expect(new Set(kinds).size).toBe(kinds.length);
      expect(kinds.includes('overexposure') && kinds.includes('underexposure')).toBe(false);
      expect(r.quality).toBeCloseTo(qualityTarget(r.distortions), 3);
      for (const d of r.distortions) expect(d.severity).toBeGreaterThanOrEqual(0.05);
      const hard = distortionRecipe(4, i, true);
      expect(hard.distortions).toHaveLength(1);
      expect(hard.quality).toBeLessThanOrEqual(0.4);
    }
  });
});

describe('generateCatalog with distort', () => {
  it('writes a distorted copy of every item and lists them in distorted.jsonl', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'synth-distort-'));
    dirs.push(dir);
    const info = await generateCatalog({ count: 4, seed: 6, outDir: dir, size: 64, distort: true });
    expect(info).toMatchObject({ distorted: true, images: 8 });
    const records = (await readFile(join(dir, 'manifest.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as ManifestRecord);
    const copies = (await readFile(join(dir, DISTORTED_MANIFEST), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string; file: string; item: string; quality: number });
    expect(copies.map((c) => c.item)).toEqual(records.map((r) => r.id));
    for (const [i, r] of records.entries()) {
      expect(r.distorted).toMatchObject({ id: `${r.id}-q`, ...distortionRecipe(6, i) });
      const [original, copy] = await Promise.all([r.file, r.distorted!.file].map((f) => readFile(join(dir, f))));
      const [a, b] = await Promise.all([original, copy].map((bytes) => sharp(bytes).raw().toBuffer()));
      expect(difference(new Uint8Array(a!), new Uint8Array(b!))).toBeGreaterThan(0);
      expect(copies[i]!.quality).toBe(r.distorted!.quality);
    }
  });
});
