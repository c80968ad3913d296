import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ModelError } from '@lookalike/core';
import { describe, expect, it } from 'vitest';
import { OnnxImageEncoder } from './image-encoder.js';
import { ModelRegistry } from './registry.js';
import { imageTowerThreads } from './runtime.js';
import { InThreadSession, WorkerSession, sessionOptions, type TensorData } from '@lookalike/onnx-session';

// The committed clean tower (a CNN); its input side comes from its manifest.
const MODELS = fileURLToPath(new URL('../../../models/', import.meta.url));
const MODEL = fileURLToPath(new URL('../../../models/defect-cnn-clean/model.onnx', import.meta.url));
const S = (
  JSON.parse(
    readFileSync(fileURLToPath(new URL('../../../models/defect-cnn-clean/manifest.json', import.meta.url)), 'utf8'),
  ) as {
    input: { size: number };
  }
).input.size;

function pixels(n: number, seed: number): TensorData {
  const data = new Float32Array(n * 3 * S * S);
  let s = seed;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    data[i] = s / 2 ** 31 - 0.5;
  }
  return { type: 'float32', data, dims: [n, 3, S, S] };
}

describe(WorkerSession.name, () => {
  it('gives the same outputs, bit for bit, as the session on this thread, and moves its inputs when asked', async () => {
    const here = await InThreadSession.open(MODEL, { threads: 1 });
    const there = await WorkerSession.open(MODEL, { threads: 1 });
    try {
      expect(there.inputNames).toEqual(here.inputNames);
      expect(there.outputNames).toEqual(here.outputNames);
      const input = here.inputNames[0]!;
      const output = here.outputNames[0]!;
      for (const n of [1, 5]) {
        const a = await here.run({ [input]: pixels(n, n) }, [output]);
        const moved = pixels(n, n);
        const b = await there.run({ [input]: moved }, [output], { transfer: true });
        expect(b[output]!.dims).toEqual(a[output]!.dims);
        expect(Buffer.from(b[output]!.data.buffer).equals(Buffer.from(a[output]!.data.buffer))).toBe(true);
        // The input buffer went to the thread: detached here.
        expect(moved.data.byteLength).toBe(0);
      }
      // Concurrent calls are answered in order, each with its own result.
      const runs = await Promise.all([1, 2, 3].map((n) => there.run({ [input]: pixels(n, 10 + n) }, [output])));
      expect(runs.map((r) => r[output]!.dims[0])).toEqual([1, 2, 3]);
    } finally {
      await here.release();
      await there.release();
    }
  });

  it('turns an onnxruntime failure into a ModelError for that call only, and refuses calls after release', async () => {
    const session = await WorkerSession.open(MODEL, { threads: 1 });
    const input = session.inputNames[0]!;
    const output = session.outputNames[0]!;
    const wrong: TensorData = { type: 'float32', data: new Float32Array(3 * 7 * 7), dims: [1, 3, 7, 7] };
    await expect(session.run({ [input]: wrong }, [output])).rejects.toBeInstanceOf(ModelError);
    const ok = await session.run({ [input]: pixels(1, 3) }, [output]);
    expect(ok[output]!.dims).toEqual([1, 128]);
    await session.release();
    await expect(session.run({ [input]: pixels(1, 3) }, [output])).rejects.toThrow(/released/);
    await session.release(); // twice is fine
  });

  it('fails to open a file that is not a model with a clear error', async () => {
    await expect(WorkerSession.open(fileURLToPath(import.meta.url), { threads: 1 })).rejects.toThrow();
  });

  it('embeds identically through the encoder on either thread', async () => {
    const registry = await ModelRegistry.open(MODELS);
    const inWorker = await OnnxImageEncoder.load(registry, 'defect-cnn-clean', { worker: true });
    const inThread = await OnnxImageEncoder.load(registry, 'defect-cnn-clean', { worker: false });
    try {
      const batch = { data: pixels(3, 99).data as Float32Array, n: 3, height: S, width: S };
      batch.data.forEach((v, i) => (batch.data[i] = v + 0.5)); // [0, 1) pixels
      const a = await inThread.embed({ ...batch, data: batch.data.slice() });
      const b = await inWorker.embed({ ...batch, data: batch.data.slice() });
      expect(b.map((v) => [...v])).toEqual(a.map((v) => [...v]));
    } finally {
      await inWorker.close();
      await inThread.close();
    }
  });

  it('never keeps a process alive: a script that leaves an encoder open still exits', () => {
    const script = `
      const { ModelRegistry, OnnxImageEncoder } = await import('@lookalike/encoder');
      const registry = await ModelRegistry.open(${JSON.stringify(MODELS)});
      const encoder = await OnnxImageEncoder.load(registry, 'defect-cnn-clean');
      const [v] = await encoder.embed({ data: new Float32Array(3 * ${S} * ${S}).fill(0.5), n: 1, height: ${S}, width: ${S} });
      console.log('embedded', v.length);
    `;
    const result = spawnSync(
      process.execPath,
      ['--import', 'tsx', '--conditions=source', '--input-type=module', '-e', script],
      { encoding: 'utf8', timeout: 60_000, cwd: fileURLToPath(new URL('.', import.meta.url)) },
    );
    expect(result.stderr).toBe('');
    expect(result.stdout.trim()).toBe('embedded 128');
    expect(result.status).toBe(0);
  });
});

describe(imageTowerThreads.name, () => {
  it('gives each of the two towers half the cores, at least one', () => {
    expect([1, 2, 3, 8, 32].map((cores) => imageTowerThreads(cores))).toEqual([1, 1, 1, 4, 16]);
  });
});

describe(sessionOptions.name, () => {
  it('turns spinning off only when asked, and leaves the thread count to onnxruntime at 0', () => {
    expect(sessionOptions({ threads: 0 })).not.toHaveProperty('intraOpNumThreads');
    expect(sessionOptions({ threads: 0 })).not.toHaveProperty('extra');
    expect(sessionOptions({ threads: 3, spinning: false })).toMatchObject({
      intraOpNumThreads: 3,
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
  });

  it('opens a session without spinning that embeds as one with it', async () => {
    const input: TensorData = {
      type: 'float32',
      data: new Float32Array(2 * 3 * S * S).fill(0.25),
      dims: [2, 3, S, S],
    };
    const [spin, calm] = await Promise.all([
      InThreadSession.open(MODEL, { threads: 2 }),
      InThreadSession.open(MODEL, { threads: 2, spinning: false }),
    ]);
    try {
      const name = spin.outputNames[0]!;
      const a = await spin.run({ [spin.inputNames[0]!]: input }, [name]);
      const b = await calm.run({ [calm.inputNames[0]!]: input }, [name]);
      expect(Array.from(b[name]!.data as Float32Array)).toEqual(Array.from(a[name]!.data as Float32Array));
    } finally {
      await Promise.all([spin.release(), calm.release()]);
    }
  });
});
