import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { pgdComparison, type ComparisonSettings } from './compare.js';

// models/training/compare_pgd.py ran PyTorch autograd PGD on the tiny clean tower (rebuilt from its ONNX file) from
// the same random start our generator draws, and recorded its losses. Our attack must reach them.
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const fixture = JSON.parse(await readFile(path.join(ROOT, 'models/fixtures/pgd-comparison.json'), 'utf8')) as {
  tolerance: number;
  modelDir: string;
  images: string[];
  runs: (ComparisonSettings['runs'][number] & { torchLoss: number[]; torchMean: number })[];
};

describe(pgdComparison.name, () => {
  it('reaches at least the loss PyTorch autograd PGD reaches with the same weights, start, ε, steps and step size', async () => {
    const { losses } = await pgdComparison({
      modelDir: path.join(ROOT, 'models', 'defect-cnn-clean'),
      images: fixture.images.map((f) => path.join(ROOT, f)),
      runs: fixture.runs.map(({ epsilon, steps, stepSize, seed }) => ({ epsilon, steps, stepSize, seed })),
    });
    expect(losses).toHaveLength(fixture.runs.length);
    fixture.runs.forEach((run, r) => {
      const ours = losses[r]!;
      const mean = ours.reduce((s, v) => s + v, 0) / ours.length;
      expect(mean).toBeGreaterThanOrEqual(run.torchMean - fixture.tolerance);
      // Same start, same signed steps: the per-query losses agree to float32 noise.
      ours.forEach((l, q) => expect(Math.abs(l - run.torchLoss[q]!)).toBeLessThan(0.01));
    });
  });
});
