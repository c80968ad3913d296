import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PreprocessSpec } from '@lookalike/core';
import { decodeImage, preprocessBatch } from '@lookalike/imaging';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAttack } from './attack.js';
import { PixelSpaceModel } from './model.js';
import { seededRandom } from './random.js';
import { directionalDerivatives } from './testing.js';

// The committed quality model made from the clean tower (a score model: one number per image), attacked through
// the VJP graph of its ONNX file, and held-out catalog photos.
const MODELS = fileURLToPath(new URL('../../../models/', import.meta.url));
const ID = 'quality-cnn-clean';
const manifest = JSON.parse(await readFile(path.join(MODELS, ID, 'manifest.json'), 'utf8')) as {
  input: PreprocessSpec;
};
const N = 4;
const EPS = 4 / 255;

let cacheDir: string;
let model: PixelSpaceModel;
let x: Float32Array;

beforeAll(async () => {
  cacheDir = await mkdtemp(path.join(tmpdir(), 'score-model-'));
  model = await PixelSpaceModel.open(ID, path.join(MODELS, ID, 'model.onnx'), manifest.input, {
    cacheDir,
    outputNormalized: false,
    output: 'score',
  });
  const files = Array.from({ length: N }, (_, i) => path.join(MODELS, 'fixtures', 'images', `s1007-00000${i}.png`));
  const images = await Promise.all(files.map(async (f) => decodeImage(await readFile(f))));
  x = preprocessBatch(images, manifest.input).data;
});

afterAll(async () => {
  await model.release();
  await rm(cacheDir, { recursive: true, force: true });
});

describe('a score model', () => {
  it('returns its raw scores, and the gradient of ±score in pixel space (central finite differences)', async () => {
    expect(model.dim).toBe(1);
    const scores = await model.embed(x, N);
    expect(scores).toHaveLength(N);
    for (const s of scores) expect(s > 0 && s < 1).toBe(true);
    const random = seededRandom(5);
    const none = new Float32Array(N);
    for (const goal of ['raise', 'lower'] as const) {
      const at = Float32Array.from(x, (v) => Math.min(1, Math.max(0, v + (random() - 0.5) * 0.02)));
      const { grad, loss, embedding } = await model.evaluate(at, N, none, goal);
      const plain = await model.embed(at, N);
      for (let q = 0; q < N; q++) {
        expect(embedding[q]).toBeCloseTo(plain[q]!, 5);
        expect(loss[q]).toBeCloseTo((goal === 'raise' ? 1 : -1) * plain[q]!, 5);
      }
      for (const { analytic, numeric } of await directionalDerivatives(model, at, N, none, goal, grad!, random))
        expect(Math.abs(analytic - numeric)).toBeLessThan(0.02 * Math.abs(analytic) + 1e-3);
    }
  });

  it('is pushed up by `raise` and down by `lower` within the ε-ball, further than random noise moves it', async () => {
    const clean = await model.embed(x, N);
    const config = { name: 'apgd', norm: 'linf', epsilon: EPS, steps: 10, seed: 1 } as const;
    const up = await runAttack({ model, x, n: N, anchors: new Float32Array(N), goal: 'raise' }, config);
    const down = await runAttack({ model, x, n: N, anchors: new Float32Array(N), goal: 'lower' }, config);
    const random = seededRandom(9);
    const noisy = await model.embed(
      Float32Array.from(x, (v) => Math.min(1, Math.max(0, v + (random() < 0.5 ? -EPS : EPS)))),
      N,
    );
    for (let q = 0; q < N; q++) {
      expect(up.embedding[q]).toBeGreaterThanOrEqual(clean[q]!);
      expect(down.embedding[q]).toBeLessThanOrEqual(clean[q]!);
      expect(up.embedding[q]! - down.embedding[q]!).toBeGreaterThan(2 * Math.abs(noisy[q]! - clean[q]!));
      expect(up.loss[q]).toBeCloseTo(up.embedding[q]!, 5);
      expect(down.loss[q]).toBeCloseTo(-down.embedding[q]!, 5);
    }
    let worst = 0;
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(up.adversarial[i]! - x[i]!));
    expect(worst).toBeLessThanOrEqual(EPS + 1e-6);
  });

  it('refuses the goals of an image tower, and an image tower refuses a score goal', async () => {
    await expect(model.lossOf(x, N, new Float32Array(N), 'untargeted')).rejects.toThrow(
      /does not apply to a score model/,
    );
    const tower = await PixelSpaceModel.open(
      'defect-cnn-clean',
      path.join(MODELS, 'defect-cnn-clean', 'model.onnx'),
      manifest.input,
      { cacheDir, outputNormalized: true },
    );
    try {
      await expect(tower.lossOf(x, N, new Float32Array(N * tower.dim), 'raise')).rejects.toThrow(
        /does not apply to an image tower/,
      );
    } finally {
      await tower.release();
    }
  });
});
