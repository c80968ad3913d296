/**
 * This machine's float32 limits, for the benchmarks' "of limit" columns: the rate of a large MatMul run through
 * onnxruntime-node itself (its MLAS kernels use AVX-512 where the CPU has it, which Debian's PyTorch and OpenBLAS do
 * not), and the theoretical peak from /proc/cpuinfo beside it.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import * as ort from 'onnxruntime-node';
import { makeTensor, writeModel } from '@lookalike/autodiff';

/** The theoretical float32 peak and how it was worked out. */
export interface TheoreticalPeak {
  gflops: number;
  cores: number;
  ghz: number;
  /** float32 FLOPs per cycle per core: SIMD lanes × 2 (a fused multiply-add) × FMA units. */
  flopsPerCycle: number;
  /** The assumption behind `flopsPerCycle`, in words. */
  basis: string;
}

/**
 * cores × clock × float32 FLOPs per cycle. The clock is /proc/cpuinfo's `cpu MHz` (in a VM the nominal clock; turbo
 * can run above it). FLOPs per cycle come from the flags: `avx512f` counts 16 lanes × 2 (FMA) × 2 FMA units = 64
 * (Xeon Scalable Gold and Platinum have two 512-bit FMA units; parts with one have half this peak), `avx2` + `fma`
 * 8 × 2 × 2 = 32, plain `avx` 8 lanes with a multiply and an add port = 16, otherwise SSE's 4 × 2 = 8. AMX and
 * AVX-512 FP16/BF16 do not count: they do not compute float32.
 */
export function theoreticalPeak(cpuinfo = readFileSync('/proc/cpuinfo', 'utf8')): TheoreticalPeak {
  const flags = new Set((/^flags\s*:(.*)$/m.exec(cpuinfo)?.[1] ?? '').trim().split(/\s+/));
  const mhz = Math.max(...[...cpuinfo.matchAll(/^cpu MHz\s*:\s*([\d.]+)/gm)].map((m) => Number(m[1])), 0);
  const cores = availableParallelism();
  const [flopsPerCycle, basis] = flags.has('avx512f')
    ? [64, 'AVX-512: 16 float32 lanes × 2 (FMA) × 2 FMA units']
    : flags.has('avx2') && flags.has('fma')
      ? [32, 'AVX2: 8 float32 lanes × 2 (FMA) × 2 FMA units']
      : flags.has('avx')
        ? [16, 'AVX: 8 float32 lanes, one multiply and one add per cycle']
        : [8, 'SSE: 4 float32 lanes, one multiply and one add per cycle'];
  const ghz = mhz / 1000;
  return { gflops: cores * ghz * flopsPerCycle, cores, ghz, flopsPerCycle, basis };
}

/** An ONNX graph `C = A · B` for `[n, n]` float32 `A` (the input) and a constant `B`. */
function matmulModel(n: number): Uint8Array {
  const b = new Float32Array(n * n);
  for (let i = 0; i < b.length; i++) b[i] = ((i * 2654435761) % 1000) / 1000 - 0.5;
  const square = { dim: [{ dimValue: n }, { dimValue: n }] };
  return writeModel({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    producerName: 'lookalike-bench-peak',
    graph: {
      name: 'matmul',
      node: [{ opType: 'MatMul', input: ['a', 'b'], output: ['c'], name: 'matmul' }],
      initializer: [makeTensor('b', 'float', [n, n], b)],
      input: [{ name: 'a', type: { tensorType: { elemType: 1, shape: square } } }],
      output: [{ name: 'c', type: { tensorType: { elemType: 1, shape: square } } }],
    },
  });
}

/**
 * GFLOP/s of an `[n, n] × [n, n]` float32 MatMul in onnxruntime-node with `threads` intra-op threads, the best of
 * the sizes given, each run for about `seconds`. 2n³ FLOPs per product.
 */
export async function ortMatmulGflops(threads: number, sizes = [1024, 2048], seconds = 2): Promise<number> {
  let best = 0;
  for (const n of sizes) {
    const session = await ort.InferenceSession.create(matmulModel(n), {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
    });
    const a = new ort.Tensor(
      'float32',
      Float32Array.from({ length: n * n }, (_, i) => (i % 7) / 7),
      [n, n],
    );
    for (let i = 0; i < 2; i++) await session.run({ a });
    let reps = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < seconds * 1000) {
      await session.run({ a });
      reps++;
    }
    best = Math.max(best, (2 * n ** 3 * reps) / ((performance.now() - t0) / 1000) / 1e9);
    await session.release();
  }
  return best;
}
