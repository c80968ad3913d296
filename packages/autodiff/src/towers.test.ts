import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildVjpModel } from './vjp.js';
import { VjpSession } from './session.js';

// Random-weight towers exported from PyTorch with their autograd input gradients (test/fixtures/make_fixtures.py).
const FIXTURES = fileURLToPath(new URL('../test/fixtures/', import.meta.url));
interface Tower {
  model: string;
  opset: number;
  shape: [number, number, number, number];
  input: string;
  cotangent: string;
  embedding: string;
  grad: string;
}
const index = JSON.parse(await readFile(`${FIXTURES}towers.json`, 'utf8')) as { towers: Record<string, Tower> };
const f32 = (b64: string) => {
  const buf = Buffer.from(b64, 'base64');
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
};

function cosine(a: Float32Array, b: Float32Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return ab / Math.sqrt(aa * bb);
}

describe('VJP models of PyTorch-exported towers against autograd', () => {
  for (const [name, tower] of Object.entries(index.towers)) {
    it(`${name} (opset ${tower.opset}): cosine ≥ 0.9999 and max error ≤ 1e-3 of the largest component`, async () => {
      const vjp = await buildVjpModel(await readFile(`${FIXTURES}${tower.model}`));
      const session = await VjpSession.open(vjp);
      try {
        const { embedding, grad } = await session.run(f32(tower.input), tower.shape[0], f32(tower.cotangent));
        const expected = f32(tower.grad);
        const refEmbedding = f32(tower.embedding);
        for (let i = 0; i < embedding.length; i++)
          expect(Math.abs(embedding[i]! - refEmbedding[i]!)).toBeLessThan(1e-5);
        expect(cosine(grad, expected)).toBeGreaterThanOrEqual(0.9999);
        let maxErr = 0;
        let maxRef = 0;
        for (let i = 0; i < grad.length; i++) {
          maxErr = Math.max(maxErr, Math.abs(grad[i]! - expected[i]!));
          maxRef = Math.max(maxRef, Math.abs(expected[i]!));
        }
        expect(maxErr / maxRef).toBeLessThanOrEqual(1e-3);
      } finally {
        await session.release();
      }
    });
  }
});
