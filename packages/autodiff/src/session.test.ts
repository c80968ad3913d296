import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadVjp, loadVjpModel, VjpSession } from './session.js';
import { n, tinyModel } from './testing.js';

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

describe(loadVjpModel.name, () => {
  it('builds the VJP model once per model file content and reuses it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vjp-cache-'));
    dirs.push(dir);
    const model = join(dir, 'model.onnx');
    await writeFile(model, tinyModel({ nodes: [n('Mul', ['x', 'x'], ['y'])], out: 'y' }));
    const first = await loadVjpModel(model, join(dir, 'cache'));
    const second = await loadVjpModel(model, join(dir, 'cache'));
    expect([first.cached, second.cached]).toEqual([false, true]);
    expect(second.bytes).toEqual(first.bytes);
    await writeFile(model, tinyModel({ nodes: [n('Tanh', ['x'], ['y'])], out: 'y' }));
    expect((await loadVjpModel(model, join(dir, 'cache'))).cached).toBe(false);
    expect((await readdir(join(dir, 'cache'))).filter((f) => f.endsWith('.onnx'))).toHaveLength(2);
  });
});

describe(VjpSession.name, () => {
  it('returns the embedding and the gradient of <embedding, cotangent>', async () => {
    // y = flatten(x ⊙ x) so the gradient is 2 x ⊙ u.
    const bytes = tinyModel({ nodes: [n('Mul', ['x', 'x'], ['y'])], out: 'y', shape: [3, 2, 2] });
    const { buildVjpModel } = await import('./vjp.js');
    const session = await VjpSession.open(await buildVjpModel(bytes));
    const x = Float32Array.from({ length: 12 }, (_, i) => i / 10);
    const u = Float32Array.from({ length: 12 }, (_, i) => 1 - i / 20);
    const { embedding, grad } = await session.run(x, 1, u);
    expect(Array.from(embedding)).toEqual(Array.from(x, (v) => Math.fround(v * v)));
    grad.forEach((g, i) => expect(g).toBeCloseTo(2 * x[i]! * u[i]!, 6));
    expect(session.shape).toEqual({ channels: 3, height: 2, width: 2 });
    await session.release();
  });
});

describe(loadVjp.name, () => {
  it('opens a session over the cached VJP model and checks the sizes it is given', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vjp-cache-'));
    dirs.push(dir);
    const model = join(dir, 'model.onnx');
    // y = flatten(tanh(x)): the gradient is (1 − tanh² x) ⊙ u.
    await writeFile(model, tinyModel({ nodes: [n('Tanh', ['x'], ['y'])], out: 'y', shape: [3, 2, 2] }));
    const session = await loadVjp(model, join(dir, 'cache'));
    try {
      expect((await readdir(join(dir, 'cache'))).filter((f) => f.endsWith('.onnx'))).toHaveLength(1);
      const x = Float32Array.from({ length: 24 }, (_, i) => (i - 12) / 8);
      const u = Float32Array.from({ length: 24 }, (_, i) => Math.cos(i));
      const { embedding, grad } = await session.run(x, 2, u);
      embedding.forEach((y, i) => expect(y).toBeCloseTo(Math.tanh(x[i]!), 6));
      grad.forEach((g, i) => expect(g).toBeCloseTo((1 - Math.tanh(x[i]!) ** 2) * u[i]!, 6));
      await expect(session.run(x.subarray(1), 2, u)).rejects.toThrow(RangeError);
      await expect(session.run(x, 2, u.subarray(1))).rejects.toThrow(RangeError);
    } finally {
      await session.release();
    }
  });
});
