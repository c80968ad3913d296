/**
 * Test helpers shared by the re-index tests of several packages: small random-weight image towers in a models
 * folder, so a test can make a "model change" (another id, input size and dimension) with real ONNX sessions.
 */
import { createHash } from 'node:crypto';
import { cp, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { seededRandom } from '@lookalike/attacks';
import { makeTensor, writeModel } from '@lookalike/autodiff';

/** The committed models folder of this repository. */
export const COMMITTED_MODELS = fileURLToPath(new URL('../../../models/', import.meta.url));

/** What {@link writeRandomTower} makes. */
export interface RandomTowerOptions {
  id: string;
  role: 'robust' | 'clean';
  /** Embedding dimension. */
  dim: number;
  /** Side of the square input. */
  size: number;
  /** Seed of the weights: the same seed gives the same tower. */
  seed?: number;
}

/**
 * Writes `<modelsDir>/<id>/model.onnx` and its `manifest.json` (sha256 and all), as `ModelRegistry` reads them: a
 * random-weight image tower `[N, 3, size, size]` → `[N, dim]` (an 8 × 8 stride-8 convolution, ReLU, global average
 * pooling, a random projection), not normalised, so the encoder L2-normalises its output. Images that differ get
 * different embeddings; it knows nothing about them.
 */
export async function writeRandomTower(modelsDir: string, options: RandomTowerOptions): Promise<void> {
  const { id, role, dim, size } = options;
  const random = seededRandom(options.seed ?? 1);
  const channels = 32;
  // Uniform in [-scale, scale).
  const weights = (n: number, scale: number) => Array.from({ length: n }, () => (random() * 2 - 1) * scale);
  const model = writeModel({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    producerName: 'lookalike-reindex-tests',
    graph: {
      name: id,
      node: [
        {
          opType: 'Conv',
          input: ['pixel_values', 'w', 'b'],
          output: ['conv'],
          name: 'conv',
          attribute: [
            { name: 'kernel_shape', type: 7, ints: [8, 8] },
            { name: 'strides', type: 7, ints: [8, 8] },
          ],
        },
        { opType: 'Relu', input: ['conv'], output: ['relu'], name: 'relu' },
        { opType: 'GlobalAveragePool', input: ['relu'], output: ['pooled'], name: 'pool' },
        { opType: 'Flatten', input: ['pooled'], output: ['flat'], name: 'flatten' },
        { opType: 'MatMul', input: ['flat', 'proj'], output: ['embedding'], name: 'project' },
      ],
      initializer: [
        makeTensor('w', 'float', [channels, 3, 8, 8], weights(channels * 3 * 64, 0.2)),
        makeTensor('b', 'float', [channels], weights(channels, 0.1)),
        makeTensor('proj', 'float', [channels, dim], weights(channels * dim, 1)),
      ],
      input: [
        {
          name: 'pixel_values',
          type: {
            tensorType: {
              elemType: 1,
              shape: { dim: [{ dimParam: 'N' }, { dimValue: 3 }, { dimValue: size }, { dimValue: size }] },
            },
          },
        },
      ],
      output: [{ name: 'embedding', type: { tensorType: { elemType: 1 } } }],
    },
  });
  const dir = join(modelsDir, id);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'model.onnx'), model);
  const manifest = {
    schemaVersion: 1,
    id,
    role,
    description: `random-weight test tower (seed ${options.seed ?? 1})`,
    files: { model: { path: 'model.onnx', sha256: createHash('sha256').update(model).digest('hex') } },
    input: {
      name: 'pixel_values',
      size,
      mean: [0.48145466, 0.4578275, 0.40821073],
      std: [0.26862954, 0.26130258, 0.27577711],
      interpolation: 'bicubic',
      resize: 'shortest',
    },
    output: { name: 'embedding', dim, normalized: false },
  };
  await writeFile(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
}

/**
 * A models folder for a test: copies of the committed towers (`defect-cnn-*`, the text tower included) plus random
 * towers, so `MODELS_DIR=<dir>` can name either set.
 */
export async function modelsWith(dir: string, towers: readonly RandomTowerOptions[]): Promise<string> {
  for (const id of ['defect-cnn-fare4', 'defect-cnn-clean', 'defect-cnn-text'])
    await cp(join(COMMITTED_MODELS, id), join(dir, id), { recursive: true });
  for (const tower of towers) await writeRandomTower(dir, tower);
  return dir;
}
