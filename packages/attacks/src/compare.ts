/**
 * Our PGD on the same inputs, start and settings as the PyTorch reference in models/training/compare_pgd.py, so
 * both the script and a test can check that the TypeScript attack is at least as strong as autograd's.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { PreprocessSpec } from '@lookalike/core';
import { decodeImage, toPixels } from '@lookalike/imaging';
import { runAttack } from './attack.js';
import { PixelSpaceModel } from './model.js';

export interface ComparisonSettings {
  /** The model folder (manifest.json + model.onnx). */
  modelDir: string;
  /** Images already at the tower's input size (no resampling on either side). */
  images: string[];
  runs: { epsilon: number; steps: number; stepSize: number; seed: number }[];
}

/** Final (best) loss 1 − cos per query for each run. */
export async function pgdComparison(settings: ComparisonSettings): Promise<{ losses: number[][] }> {
  const manifest = JSON.parse(await readFile(path.join(settings.modelDir, 'manifest.json'), 'utf8')) as {
    id: string;
    input: PreprocessSpec;
    output: { normalized: boolean };
  };
  const cacheDir = await mkdtemp(path.join(tmpdir(), 'compare-pgd-'));
  const model = await PixelSpaceModel.open(manifest.id, path.join(settings.modelDir, 'model.onnx'), manifest.input, {
    cacheDir,
    outputNormalized: manifest.output.normalized,
  });
  try {
    const n = settings.images.length;
    const per = 3 * model.size * model.size;
    const x = new Float32Array(n * per);
    for (const [i, file] of settings.images.entries())
      toPixels(await decodeImage(await readFile(file)), manifest.input, x, i * per);
    const anchors = await model.embed(x, n);
    const losses: number[][] = [];
    for (const run of settings.runs) {
      const r = await runAttack({ model, x, n, anchors, goal: 'untargeted' }, { name: 'pgd', norm: 'linf', ...run });
      losses.push([...r.loss]);
    }
    return { losses };
  } finally {
    await model.release();
    await rm(cacheDir, { recursive: true, force: true });
  }
}
