/**
 * Cost of an input gradient: VJP-model time ÷ forward time per image, at batch 1 and 16, for the tiny tower and
 * random-weight ViT-B/32, both run by onnxruntime-node in this process, plus the build time of the gradient graph
 * and peak memory. Writes bench/results/autodiff.json and prints a markdown table.
 *
 *   npm run bench:autodiff [-- --models tiny,vitb32 --batches 1,16 --seconds 6]
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { buildVjpModel, VjpSession } from '@lookalike/autodiff';
import { benchTower } from './models.js';

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: 'tiny,vitb32' },
    batches: { type: 'string', default: '1,16' },
    seconds: { type: 'string', default: '6' },
    threads: { type: 'string', default: String(availableParallelism()) },
  },
});
const seconds = Number(values.seconds);
const threads = Number(values.threads);

async function timeIt(fn: () => Promise<unknown>): Promise<number> {
  await fn();
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    await fn();
    n++;
  }
  return (performance.now() - t0) / n;
}

let peakRss = 0;
const sample = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);

const rows: string[] = [];
const results: Record<string, unknown> = { threads, models: {} };
for (const name of values.models.split(',')) {
  const tower = await benchTower(name);
  const manifest = { input: tower.spec, output: { dim: tower.dim } };
  const forwardBytes = await readFile(tower.modelPath);
  const t0 = performance.now();
  const vjpBytes = await buildVjpModel(forwardBytes);
  const buildSeconds = (performance.now() - t0) / 1000;
  const opts = { intraOpNumThreads: threads, graphOptimizationLevel: 'all' } as const;
  const forward = await ort.InferenceSession.create(forwardBytes, opts);
  // On this thread, like the forward session it is compared with: the engine's own cost, no thread hop.
  const vjp = await VjpSession.open(vjpBytes, { threads, worker: false });
  const S = manifest.input.size;
  const D = manifest.output.dim;
  const modelRows = [];
  for (const batch of values.batches.split(',').map(Number)) {
    const x = Float32Array.from({ length: batch * 3 * S * S }, (_, i) => Math.sin(i) * 0.5);
    const u = Float32Array.from({ length: batch * D }, (_, i) => Math.cos(i));
    const fwd = await timeIt(() => forward.run({ pixel_values: new ort.Tensor('float32', x, [batch, 3, S, S]) }));
    const back = await timeIt(() => vjp.run(x, batch, u));
    modelRows.push({ batch, forwardMsPerImage: fwd / batch, vjpMsPerImage: back / batch, ratio: back / fwd });
    rows.push(
      `| ${name} | ${batch} | ${(fwd / batch).toFixed(2)} | ${(back / batch).toFixed(2)} | ${(back / fwd).toFixed(2)}× | ${(1000 / (back / batch)).toFixed(1)} |`,
    );
  }
  // Directional finite-difference spot check of the gradient (central differences, float32, h = 1e-2).
  const n = 2;
  const x = Float32Array.from({ length: n * 3 * S * S }, (_, i) => Math.sin(i * 0.37) * 1.5);
  const u = Float32Array.from({ length: n * D }, (_, i) => Math.cos(i * 0.91));
  const v = Float32Array.from({ length: x.length }, (_, i) => Math.sin(i * 1.13 + 0.5));
  const { grad } = await vjp.run(x, n, u);
  const f = async (sign: number) =>
    (
      await forward.run({
        pixel_values: new ort.Tensor(
          'float32',
          x.map((xi, i) => xi + sign * 1e-2 * v[i]!),
          [n, 3, S, S],
        ),
      })
    ).embedding!.data as Float32Array;
  const [plus, minus] = [await f(1), await f(-1)];
  let fd = 0;
  for (let i = 0; i < u.length; i++) fd += (u[i]! * (plus[i]! - minus[i]!)) / 2e-2;
  let analytic = 0;
  for (let i = 0; i < v.length; i++) analytic += grad[i]! * v[i]!;
  const relError = Math.abs(fd - analytic) / Math.abs(analytic);
  console.error(
    `${name}: directional derivative ${analytic.toExponential(4)} vs finite differences ${fd.toExponential(4)} (relative error ${relError.toExponential(1)})`,
  );
  await forward.release();
  await vjp.release();
  (results.models as Record<string, unknown>)[name] = {
    buildSeconds,
    vjpBytes: vjpBytes.length,
    fdRelativeError: relError,
    rows: modelRows,
  };
  console.error(`${name}: gradient graph built in ${buildSeconds.toFixed(1)} s`);
}
clearInterval(sample);
results.peakRssMiB = peakRss / 2 ** 20;
await mkdir('bench/results', { recursive: true });
await writeFile('bench/results/autodiff.json', JSON.stringify(results, null, 2) + '\n');
console.log(`onnxruntime-node, ${threads} threads; peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB\n`);
console.log('| tower | batch | forward ms/img | forward+VJP ms/img | VJP ÷ forward | gradients/s |');
console.log('| --- | --- | --- | --- | --- | --- |');
for (const r of rows) console.log(r);
