import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadVjpModel, VjpSession } from './session.js';
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
    expect((await readdir(join(dir, 'cache'))).filter((f) => f.endsWith('.vjp.onnx'))).toHaveLength(2);
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
