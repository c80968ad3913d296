import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ModelError, ValidationError, type PixelBatch } from '@lookalike/core';
import { fromBytes } from '@lookalike/imaging';
import { createRng, distortImage, renderImage, sampleSpec, type DistortionKind } from '@lookalike/synth';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OnnxQualityModel } from './quality-model.js';
import { ModelRegistry } from './registry.js';

// The committed models: the towers and the quality models made from them (models/training/train_quality.py).
const MODELS = fileURLToPath(new URL('../../../models/', import.meta.url));

/** Catalog photos of a seed no model was trained or tuned on, as rendered and distorted, as the model's pixels. */
async function photos(kind: DistortionKind, severity: number, count: number, size: number): Promise<PixelBatch> {
  const spec = { size, mean: [0, 0, 0], std: [1, 1, 1], interpolation: 'bicubic', resize: 'shortest' } as const;
  const per = 3 * size * size;
  const data = new Float32Array(count * per);
  for (let i = 0; i < count; i++) {
    const png = await renderImage(sampleSpec(101, i), 256, 'png');
    const { data: raw, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const image = { data: new Uint8Array(raw), width: info.width, height: info.height };
    const rng = createRng(101, i);
    const out = severity > 0 ? await distortImage(image, [{ kind, severity }], () => rng.next()) : image;
    const bytes = await sharp(out.data, { raw: { width: out.width, height: out.height, channels: 3 } })
      .png()
      .toBuffer();
    data.set(await fromBytes(bytes, spec, undefined, 'fast'), i * per);
  }
  return { data, n: count, height: size, width: size };
}

const mean = (xs: number[]) => xs.reduce((s, v) => s + v, 0) / xs.length;

describe('the quality models in the registry', () => {
  let registry: ModelRegistry;
  beforeAll(async () => {
    registry = await ModelRegistry.open(MODELS);
  });

  it('finds one quality model per committed image tower, and refuses it where a tower is asked for', () => {
    for (const tower of ['defect-cnn-fare4', 'defect-cnn-clean']) {
      const m = registry.qualityFor(tower);
      expect(m).toMatchObject({ role: 'quality', backbone: tower, output: { name: 'quality', dim: 1 } });
      expect(m.threshold).toBeGreaterThan(0);
      expect(m.threshold).toBeLessThan(1);
      expect(m.input).toEqual(registry.image(tower).input);
      expect(() => registry.image(m.id)).toThrow(/quality model, not an image tower/);
    }
    expect(() => registry.quality('defect-cnn-fare4')).toThrow(/not a quality model/);
    expect(() => registry.qualityFor('defect-cnn-text')).toThrow(ModelError);
  });

  describe('with two quality models made from one tower', () => {
    let dir: string;
    afterAll(() => rm(dir, { recursive: true, force: true }));

    it('says which ones, instead of picking one', async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'quality-models-'));
      await cp(path.join(MODELS, 'quality-cnn-fare4'), path.join(dir, 'a'), { recursive: true });
      await cp(path.join(MODELS, 'quality-cnn-fare4'), path.join(dir, 'b'), { recursive: true });
      const manifest = JSON.parse(await readFile(path.join(dir, 'b', 'manifest.json'), 'utf8')) as { id: string };
      await writeFile(path.join(dir, 'b', 'manifest.json'), JSON.stringify({ ...manifest, id: 'quality-copy' }));
      const twice = await ModelRegistry.open(dir);
      expect(() => twice.qualityFor('defect-cnn-fare4')).toThrow(
        /Several quality models .*quality-cnn-fare4, quality-copy/,
      );
      expect(() => twice.qualityFor('defect-cnn-clean')).toThrow(/No quality model/);
    });
  });
});

describe(OnnxQualityModel.name, () => {
  const models: OnnxQualityModel[] = [];
  afterAll(() => Promise.all(models.map((m) => m.close())));

  it('scores photos in [0, 1] and scores them lower once they are blurred, noisy, dark or flat', async () => {
    const registry = await ModelRegistry.open(MODELS);
    for (const [role, tower] of [
      ['robust', 'defect-cnn-fare4'],
      ['clean', 'defect-cnn-clean'],
    ] as const) {
      const model = await OnnxQualityModel.load(registry, role, tower);
      models.push(model);
      expect(model.info).toMatchObject({
        tower: role,
        backbone: tower,
        threshold: registry.qualityFor(tower).threshold,
      });
      const size = model.info.preprocess.size;
      const clean = await model.score(await photos('blur', 0, 6, size));
      expect(clean).toHaveLength(6);
      for (const s of clean) {
        expect(s).toBeGreaterThanOrEqual(0);
        expect(s).toBeLessThanOrEqual(1);
      }
      for (const kind of ['blur', 'noise', 'underexposure', 'contrast'] as const) {
        const hard = await model.score(await photos(kind, 0.9, 6, size));
        expect(mean(hard), `${role} ${kind}`).toBeLessThan(mean(clean) - 0.3);
        // The gate: at its own threshold every hard-distorted photo is low, on average every clean one is not.
        expect(mean(hard)).toBeLessThan(model.info.threshold);
      }
      expect(mean(clean)).toBeGreaterThan(model.info.threshold);
    }
  });

  it('takes a threshold instead of the fitted one, and refuses pixels of the wrong size', async () => {
    const registry = await ModelRegistry.open(MODELS);
    const model = await OnnxQualityModel.load(registry, 'robust', 'defect-cnn-fare4', { threshold: 0.25 });
    models.push(model);
    expect(model.info.threshold).toBe(0.25);
    await expect(model.score({ data: new Float32Array(3 * 32 * 32), n: 1, height: 32, width: 32 })).rejects.toThrow(
      ValidationError,
    );
    const size = model.info.preprocess.size;
    await expect(
      model.score({ data: new Float32Array(3 * size * size), n: 2, height: size, width: size }),
    ).rejects.toThrow(/expected 2/);
  });
});
