import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PreprocessSpec } from '@lookalike/core';
import { decodeImage, preprocessBatch } from '@lookalike/imaging';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { project, runAttack, type AttackConfig } from './attack.js';
import { PixelSpaceModel } from './model.js';
import { seededRandom } from './random.js';
import { directionalDerivatives } from './testing.js';

// The committed tiny clean tower (not robust: attacks move it easily) and held-out catalog images.
const MODELS = fileURLToPath(new URL('../../../models/', import.meta.url));
const manifest = JSON.parse(await readFile(path.join(MODELS, 'defect-cnn-clean', 'manifest.json'), 'utf8')) as {
  input: PreprocessSpec;
};
const spec: PreprocessSpec = manifest.input;
const N = 4;
const EPS = 4 / 255;

let cacheDir: string;
let model: PixelSpaceModel;
let x: Float32Array;
let anchors: Float32Array;

beforeAll(async () => {
  cacheDir = await mkdtemp(path.join(tmpdir(), 'attacks-'));
  model = await PixelSpaceModel.open('defect-cnn-clean', path.join(MODELS, 'defect-cnn-clean', 'model.onnx'), spec, {
    cacheDir,
    outputNormalized: true,
  });
  const files = Array.from({ length: N }, (_, i) => path.join(MODELS, 'fixtures', 'images', `s1007-00000${i}.png`));
  const images = await Promise.all(files.map(async (f) => decodeImage(await readFile(f))));
  x = preprocessBatch(images, spec).data;
  anchors = await model.embed(x, N);
});

afterAll(async () => {
  await model.release();
  await rm(cacheDir, { recursive: true, force: true });
});

/** Smallest and largest value (a loop: spreading an image's 150,000 values into Math.min overflows the stack). */
function extent(a: Float32Array): { min: number; max: number } {
  let min = Infinity;
  let max = -Infinity;
  for (const v of a) {
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  return { min, max };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Largest ‖δ‖ of each query in the given norm. */
function radius(adv: Float32Array, clean: Float32Array, norm: 'linf' | 'l2'): number {
  const per = clean.length / N;
  let worst = 0;
  for (let q = 0; q < N; q++) {
    let r = 0;
    for (let i = q * per; i < (q + 1) * per; i++) {
      const d = Math.abs(adv[i]! - clean[i]!);
      r = norm === 'linf' ? Math.max(r, d) : r + d * d;
    }
    worst = Math.max(worst, norm === 'linf' ? r : Math.sqrt(r));
  }
  return worst;
}

const mean = (a: Float32Array) => a.reduce((s, v) => s + v, 0) / a.length;

describe(PixelSpaceModel.name, () => {
  it('returns the gradient of the loss in pixel space (central finite differences along random directions)', async () => {
    const random = seededRandom(3);
    for (const goal of ['untargeted', 'targeted'] as const) {
      // Targets: each query's neighbour in the batch, so the targeted loss is not at its maximum already.
      const target =
        goal === 'untargeted'
          ? anchors
          : Float32Array.from({ length: anchors.length }, (_, i) => anchors[(i + model.dim) % anchors.length]!);
      const at = Float32Array.from(x, (v) => Math.min(1, Math.max(0, v + (random() - 0.5) * 0.02)));
      const { grad } = await model.evaluate(at, N, target, goal);
      for (const { analytic, numeric } of await directionalDerivatives(model, at, N, target, goal, grad!, random))
        expect(Math.abs(analytic - numeric)).toBeLessThan(0.02 * Math.abs(analytic) + 1e-3);
    }
  });

  it('gives the same gradient whether or not it relies on the graph normalising its output', async () => {
    const other = await PixelSpaceModel.open(
      'defect-cnn-clean',
      path.join(MODELS, 'defect-cnn-clean', 'model.onnx'),
      spec,
      {
        cacheDir,
        outputNormalized: false,
      },
    );
    try {
      // Away from the clean point (where the untargeted gradient vanishes), toward other images.
      const at = Float32Array.from(x, (v, i) => Math.min(1, Math.max(0, v + (i % 7 === 0 ? 0.01 : -0.01))));
      const targets = Float32Array.from(
        { length: anchors.length },
        (_, i) => anchors[(i + model.dim) % anchors.length]!,
      );
      const a = await model.evaluate(at, N, targets, 'targeted');
      const b = await other.evaluate(at, N, targets, 'targeted');
      const scale = Math.max(-extent(a.grad!).min, extent(a.grad!).max);
      expect(maxAbsDiff(a.grad!, b.grad!) / scale).toBeLessThan(1e-3);
    } finally {
      await other.release();
    }
  });
});

describe(runAttack.name, () => {
  const configs: AttackConfig[] = [
    { name: 'pgd', norm: 'linf', epsilon: EPS, steps: 5, seed: 1 },
    { name: 'pgd', norm: 'l2', epsilon: 0.5, steps: 5, seed: 1 },
    { name: 'apgd', norm: 'linf', epsilon: EPS, steps: 5, seed: 1 },
    { name: 'apgd', norm: 'l2', epsilon: 0.5, steps: 5, seed: 1 },
  ];

  it('changes nothing at ε = 0', async () => {
    for (const name of ['pgd', 'apgd'] as const) {
      const r = await runAttack(
        { model, x, n: N, anchors, goal: 'untargeted' },
        { name, norm: 'linf', epsilon: 0, steps: 10 },
      );
      expect(maxAbsDiff(r.adversarial, x)).toBe(0);
      expect(Math.max(...r.loss)).toBeLessThan(1e-5);
    }
  });

  it.each(configs)('keeps every $name $norm adversarial image in the ε-ball and in [0,1]', async (config) => {
    const r = await runAttack({ model, x, n: N, anchors, goal: 'untargeted' }, config);
    expect(radius(r.adversarial, x, config.norm)).toBeLessThanOrEqual(config.epsilon * (1 + 1e-5) + 1e-7);
    expect(extent(r.adversarial).min).toBeGreaterThanOrEqual(0);
    expect(extent(r.adversarial).max).toBeLessThanOrEqual(1);
    expect(r.adversarial).not.toEqual(x);
  });

  it('finds far larger losses than random noise of the same budget, and reports the loss of what it returns', async () => {
    const r = await runAttack(
      { model, x, n: N, anchors, goal: 'untargeted' },
      {
        name: 'pgd',
        norm: 'linf',
        epsilon: EPS,
        steps: 10,
        seed: 2,
      },
    );
    const random = seededRandom(9);
    const noisy = Float32Array.from(x, (v) => v + EPS * (random() < 0.5 ? -1 : 1));
    project(noisy, x, N, 'linf', EPS);
    const noise = await model.lossOf(noisy, N, anchors, 'untargeted');
    expect(mean(r.loss)).toBeGreaterThan(5 * mean(noise.loss));
    const check = await model.lossOf(r.adversarial, N, anchors, 'untargeted');
    expect(maxAbsDiff(check.loss, r.loss)).toBeLessThan(1e-5);
  });

  it('pulls a targeted query toward its target', async () => {
    const targets = Float32Array.from({ length: anchors.length }, (_, i) => anchors[(i + model.dim) % anchors.length]!);
    const clean = await model.lossOf(x, N, targets, 'targeted');
    const r = await runAttack(
      { model, x, n: N, anchors: targets, goal: 'targeted' },
      {
        name: 'apgd',
        norm: 'linf',
        epsilon: EPS,
        steps: 10,
        seed: 2,
      },
    );
    for (let q = 0; q < N; q++) expect(r.loss[q]!).toBeGreaterThan(clean.loss[q]! + 0.05);
  });

  it('never ends below PGD with APGD on the same budget', async () => {
    for (const norm of ['linf', 'l2'] as const) {
      const epsilon = norm === 'linf' ? 2 / 255 : 0.25;
      const p = await runAttack(
        { model, x, n: N, anchors, goal: 'untargeted' },
        { name: 'pgd', norm, epsilon, steps: 20, seed: 4 },
      );
      const a = await runAttack(
        { model, x, n: N, anchors, goal: 'untargeted' },
        {
          name: 'apgd',
          norm,
          epsilon,
          steps: 20,
          seed: 4,
        },
      );
      for (let q = 0; q < N; q++) expect(a.loss[q]!).toBeGreaterThanOrEqual(p.loss[q]! - 1e-6);
      // The trace is the mean best loss after each step, so it never decreases.
      for (let s = 1; s < a.trace.length; s++) expect(a.trace[s]!).toBeGreaterThanOrEqual(a.trace[s - 1]!);
    }
  });

  it('is reproducible from its seed and independent of how queries are batched', async () => {
    const config: AttackConfig = { name: 'apgd', norm: 'linf', epsilon: EPS, steps: 4, seed: 7 };
    const a = await runAttack({ model, x, n: N, anchors, goal: 'untargeted' }, config);
    const b = await runAttack({ model, x, n: N, anchors, goal: 'untargeted' }, config);
    expect(b.adversarial).toEqual(a.adversarial);
    // Without a random start the path depends only on each query's own gradients.
    const fixed = { ...config, randomStart: false };
    const all = await runAttack({ model, x, n: N, anchors, goal: 'untargeted' }, fixed);
    const per = x.length / N;
    const one = await runAttack(
      { model, x: x.slice(per, 2 * per), n: 1, anchors: anchors.slice(model.dim, 2 * model.dim), goal: 'untargeted' },
      fixed,
    );
    expect(maxAbsDiff(one.adversarial, all.adversarial.slice(per, 2 * per))).toBeLessThan(1e-4);
  });

  it('refuses a negative ε and zero steps', async () => {
    await expect(
      runAttack({ model, x, n: N, anchors, goal: 'untargeted' }, { name: 'pgd', norm: 'linf', epsilon: -1, steps: 3 }),
    ).rejects.toThrow(RangeError);
    await expect(
      runAttack({ model, x, n: N, anchors, goal: 'untargeted' }, { name: 'pgd', norm: 'linf', epsilon: EPS, steps: 0 }),
    ).rejects.toThrow(RangeError);
  });
});
