/**
 * Shapes and constant values of every tensor in a forward graph, found by running it: each intermediate tensor
 * becomes a graph output and the model runs at batch 1 and batch 2. A dimension equal in both runs is static; one
 * that doubles is a multiple of the batch. Integer tensors that are equal in both runs are constants (slice bounds,
 * gather indices, reshape targets), so the gradient graph can use their values.
 */
import * as ort from 'onnxruntime-node';
import { readModel, writeModel, type ModelProto } from './onnx.js';

/** A dimension: a fixed size, or `perBatch` × N. */
export type Dim = { fixed: number } | { perBatch: number };

export interface TensorFacts {
  dims: Dim[];
  /** Element type name as onnxruntime reports it (`float32`, `int64`, `bool`, …). */
  type: string;
  /** Values, for integer and boolean tensors whose values do not depend on the batch size. */
  values?: number[];
}

export const sameDim = (a: Dim, b: Dim): boolean =>
  'fixed' in a ? 'fixed' in b && a.fixed === b.fixed : 'perBatch' in b && a.perBatch === b.perBatch;
export const isOne = (d: Dim): boolean => 'fixed' in d && d.fixed === 1;
export const fixedSize = (d: Dim): number | undefined => ('fixed' in d ? d.fixed : undefined);

function seeded(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32;
  }
  return out;
}

/** Runs the forward model with every node output exposed, at batch 1 and 2. */
export async function probe(
  bytes: Uint8Array,
  input: { name: string; channels: number; height: number; width: number },
): Promise<Map<string, TensorFacts>> {
  const model: ModelProto = readModel(bytes);
  const declared = new Set(model.graph.output.map((o) => o.name));
  for (const node of model.graph.node)
    for (const out of node.output) if (out && !declared.has(out)) model.graph.output.push({ name: out });
  const session = await ort.InferenceSession.create(writeModel(model), { graphOptimizationLevel: 'disabled' });
  try {
    const runs: Record<string, ort.Tensor>[] = [];
    for (const n of [1, 2]) {
      const size = n * input.channels * input.height * input.width;
      // Different pixels in the two runs (not one image repeated), so that an integer tensor computed from the pixels
      // (an argmax, a data-dependent mask) differs between them and is never mistaken for a constant.
      const x = new ort.Tensor('float32', seeded(size, 7 + n), [n, input.channels, input.height, input.width]);
      runs.push(await session.run({ [input.name]: x }));
    }
    const facts = new Map<string, TensorFacts>();
    for (const name of session.outputNames) {
      const a = runs[0]![name]!;
      const b = runs[1]![name]!;
      if (a.dims.length !== b.dims.length) throw new Error(`tensor ${name} changes rank with the batch size`);
      const dims: Dim[] = a.dims.map((da, i) => {
        const db = b.dims[i]!;
        if (da === db) return { fixed: da };
        if (db === 2 * da) return { perBatch: da };
        throw new Error(`tensor ${name} dimension ${i} is ${da} at batch 1 and ${db} at batch 2`);
      });
      const fact: TensorFacts = { dims, type: a.type };
      if (a.type !== 'float32' && a.type !== 'float64' && a.size <= 4096) {
        const va = Array.from(a.data as ArrayLike<number | bigint>, Number);
        const vb = Array.from(b.data as ArrayLike<number | bigint>, Number);
        if (va.length === vb.length && va.every((v, i) => v === vb[i])) fact.values = va;
      }
      facts.set(name, fact);
    }
    return facts;
  } finally {
    await session.release();
  }
}
