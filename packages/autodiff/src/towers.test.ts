import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { readModel, writeModel } from './onnx.js';
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

const maxRelError = (a: Float32Array, b: Float32Array) => {
  let maxErr = 0;
  let maxRef = 0;
  for (let i = 0; i < a.length; i++) {
    maxErr = Math.max(maxErr, Math.abs(a[i]! - b[i]!));
    maxRef = Math.max(maxRef, Math.abs(b[i]!));
  }
  return maxErr / maxRef;
};

describe('VJP models of PyTorch-exported towers against autograd', () => {
  // Observed (onnxruntime-node 1.30 CPU vs torch 1.13 autograd, float32): cosine 1 − 1e-7 or closer and a max error
  // of 3.4e-7 to 1.6e-6 of the largest gradient component; the bounds below leave orders of magnitude of room.
  for (const [name, tower] of Object.entries(index.towers)) {
    it(`${name} (opset ${tower.opset}): cosine ≥ 0.9999 and max error ≤ 1e-3 of the largest component`, async () => {
      const vjp = await buildVjpModel(await readFile(`${FIXTURES}${tower.model}`));
      const session = await VjpSession.open(vjp);
      try {
        const [n, c, h, w] = tower.shape;
        const { embedding, grad } = await session.run(f32(tower.input), n, f32(tower.cotangent));
        const expected = f32(tower.grad);
        const refEmbedding = f32(tower.embedding);
        for (let i = 0; i < embedding.length; i++)
          expect(Math.abs(embedding[i]! - refEmbedding[i]!)).toBeLessThan(1e-5);
        const cos = cosine(grad, expected);
        const rel = maxRelError(grad, expected);
        console.info(`${name}: cosine ${cos.toFixed(9)}, max |error| / max |grad| ${rel.toExponential(2)}`);
        expect(cos).toBeGreaterThanOrEqual(0.9999);
        expect(rel).toBeLessThanOrEqual(1e-3);

        // A batch size the builder never probed (3, images in another order) gives each image the same gradient.
        const per = c * h * w;
        const d = embedding.length / n;
        const x = f32(tower.input);
        const u = f32(tower.cotangent);
        const order = [1, 0, 1];
        const x3 = new Float32Array(3 * per);
        const u3 = new Float32Array(3 * d);
        order.forEach((k, i) => {
          x3.set(x.subarray(k * per, (k + 1) * per), i * per);
          u3.set(u.subarray(k * d, (k + 1) * d), i * d);
        });
        const three = await session.run(x3, 3, u3);
        order.forEach((k, i) =>
          expect(
            maxRelError(three.grad.subarray(i * per, (i + 1) * per), expected.subarray(k * per, (k + 1) * per)),
          ).toBeLessThanOrEqual(1e-3),
        );
      } finally {
        await session.release();
      }
    });

    it(`${name}: read → write round trip keeps the model's outputs bit for bit`, async () => {
      const bytes = await readFile(`${FIXTURES}${tower.model}`);
      const run = async (b: Uint8Array) => {
        const s = await ort.InferenceSession.create(b);
        try {
          return (await s.run({ [s.inputNames[0]!]: new ort.Tensor('float32', f32(tower.input), tower.shape) }))[
            s.outputNames[0]!
          ]!.data;
        } finally {
          await s.release();
        }
      };
      const again = writeModel(readModel(bytes));
      expect(await run(again)).toEqual(await run(bytes));
      expect(readModel(again).graph.node.length).toBe(readModel(bytes).graph.node.length);
    });
  }
});
