/**
 * One-off measurement: VJP-model time ÷ forward time on the ViT test fixture (random weights, 32×32 image, patch 8,
 * width 32, 2 layers), at batch 1 and 16, both in onnxruntime-node on the CPU with the same session options.
 * Forward and VJP are timed in alternating short windows and the median of the per-window ratios is reported, so
 * that load from other processes affects both alike.
 *
 *   npx tsx --conditions=source packages/autodiff/scripts/measure.ts [fixture.onnx] [seconds] [threads]
 */
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { buildVjpModel, VjpSession } from '@lookalike/autodiff';

const fixture = process.argv[2] ?? fileURLToPath(new URL('../test/fixtures/vit-gelu.onnx', import.meta.url));
const seconds = Number(process.argv[3] ?? 3);
const threads = Number(process.argv[4] ?? availableParallelism());
const WINDOWS = 9;

/** Mean milliseconds per call over about `ms` milliseconds (at least 3 calls). */
async function timeIt(fn: () => Promise<unknown>, ms: number): Promise<number> {
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < ms || n < 3) {
    await fn();
    n++;
  }
  return (performance.now() - t0) / n;
}
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;

const forwardBytes = await readFile(fixture);
const t0 = performance.now();
const vjpBytes = await buildVjpModel(forwardBytes);
const buildMs = performance.now() - t0;
const forward = await ort.InferenceSession.create(forwardBytes, {
  intraOpNumThreads: threads,
  graphOptimizationLevel: 'all',
});
const vjp = await VjpSession.open(vjpBytes, { threads, worker: false });
const { channels, height, width } = vjp.shape;
const [inputName] = forward.inputNames;
const [outputName] = forward.outputNames;
const dim = (
  await forward.run({
    [inputName!]: new ort.Tensor('float32', new Float32Array(channels * height * width), [1, channels, height, width]),
  })
)[outputName!]!.dims[1] as number;

console.log(`fixture ${fixture}; ${threads} threads; VJP graph built in ${buildMs.toFixed(0)} ms`);
console.log('| batch | forward ms (median) | VJP ms (median) | VJP ÷ forward (median of windows) |');
console.log('|---:|---:|---:|---:|');
for (const batch of [1, 16]) {
  const x = Float32Array.from({ length: batch * channels * height * width }, (_, i) => (Math.sin(i * 0.37) + 1) / 2);
  const u = Float32Array.from({ length: batch * dim }, (_, i) => Math.cos(i * 0.91));
  const feeds = { [inputName!]: new ort.Tensor('float32', x, [batch, channels, height, width]) };
  const runForward = () => forward.run(feeds);
  const runVjp = () => vjp.run(x, batch, u);
  await timeIt(runForward, 200);
  await timeIt(runVjp, 200);
  const fwds: number[] = [];
  const backs: number[] = [];
  const ratios: number[] = [];
  for (let w = 0; w < WINDOWS; w++) {
    const fwd = await timeIt(runForward, (seconds * 500) / WINDOWS);
    const back = await timeIt(runVjp, (seconds * 500) / WINDOWS);
    fwds.push(fwd);
    backs.push(back);
    ratios.push(back / fwd);
  }
  console.log(
    `| ${batch} | ${median(fwds).toFixed(3)} | ${median(backs).toFixed(3)} | ${median(ratios).toFixed(2)}× |`,
  );
}
await forward.release();
await vjp.release();
