/**
 * The towers benchmarks measure: the committed tiny towers, and random-weight ViT-B/32 (the production-size
 * architecture) exported once by bench/encoder_torch.py into bench/.cache (needs /usr/bin/python3 with torch).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { PreprocessSpec } from '@lookalike/core';

const CACHE = 'bench/.cache/encoder';

export interface BenchTower {
  name: string;
  modelPath: string;
  spec: PreprocessSpec;
  dim: number;
  outputNormalized: boolean;
}

/** A committed tower under models/, or a bench tower (`tiny`, `vitb32`) built into bench/.cache on first use. */
export async function benchTower(name: string): Promise<BenchTower> {
  const committed = `models/${name}`;
  const dir = existsSync(`${committed}/manifest.json`) ? committed : `${CACHE}/bench-${name}`;
  if (!existsSync(`${dir}/model.onnx`)) {
    execFileSync(
      process.env.PYTHON ?? '/usr/bin/python3',
      [
        'bench/encoder_torch.py',
        '--out',
        CACHE,
        '--images',
        'bench/.cache/none',
        '--models',
        name,
        '--batches',
        '1',
        '--seconds',
        '0',
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
  }
  const manifest = JSON.parse(await readFile(`${dir}/manifest.json`, 'utf8')) as {
    input: PreprocessSpec;
    output: { dim: number; normalized?: boolean };
  };
  return {
    name,
    modelPath: `${dir}/model.onnx`,
    spec: manifest.input,
    dim: manifest.output.dim,
    outputNormalized: manifest.output.normalized ?? false,
  };
}
