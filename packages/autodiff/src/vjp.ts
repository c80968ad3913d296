/**
 * Builds a vector-Jacobian-product model from a forward ONNX image encoder, with default-domain ops only:
 * inputs `(pixels [N,3,H,W], cotangent [N,D])`, outputs `(embedding [N,D], grad [N,3,H,W])` where
 * `grad = ∂⟨embedding, cotangent⟩/∂pixels`. The backward graph is emitted by reverse-mode differentiation over the
 * nodes between the image input and the embedding; forward values it needs are reused by name. This file walks the
 * graph; the gradient of each op is a rule in `vjp/rules/` (one file per op family, one registry), written with the
 * emitter and helpers of `vjp/context.ts`.
 */
import { ModelError } from '@lookalike/core';
import { probe, type TensorFacts } from './probe.js';
import {
  DataType,
  attr,
  opsetOf,
  readModel,
  tensorValues,
  toNumber,
  writeModel,
  type ModelProto,
  type NodeProto,
  type TensorProto,
} from './onnx.js';
import { Emitter, type Ctx } from './vjp/context.js';
import { RULES } from './vjp/rules/index.js';

/** Names of the VJP model's extra input and output. */
export interface VjpOptions {
  /** Name of the cotangent input `[N, D]` (default `cotangent`). */
  cotangentName?: string;
  /** Name of the gradient output `[N, C, H, W]` (default `grad`). */
  gradName?: string;
}

/** Ops whose outputs never carry a gradient (shape computations, comparisons, integer arithmetic). */
const NON_DIFFERENTIABLE = new Set([
  'Shape',
  'Size',
  'ConstantOfShape',
  'Constant',
  'Equal',
  'Greater',
  'GreaterOrEqual',
  'Less',
  'LessOrEqual',
  'Not',
  'And',
  'Or',
  'Range',
  'NonZero',
  'ArgMax',
  'ArgMin',
]);

/** Float element types (as onnxruntime names them) the gradient graph does not handle. */
const OTHER_FLOATS = new Set(['float16', 'float64', 'bfloat16']);

/** Nodes in an order where every input is produced before it is used (ONNX requires it; not all writers obey). */
function topologicalOrder(nodes: NodeProto[], available: string[]): NodeProto[] {
  const ready = new Set(['', ...available]);
  const pending = [...nodes];
  const out: NodeProto[] = [];
  while (pending.length) {
    const i = pending.findIndex((n) => n.input.every((x) => ready.has(x)));
    if (i < 0) {
      const n = pending[0]!;
      throw new ModelError(
        `node ${n.name || n.opType} uses a tensor that no node produces: ${n.input.filter((x) => !ready.has(x)).join(', ')}`,
      );
    }
    const [n] = pending.splice(i, 1);
    out.push(n!);
    for (const o of n!.output) ready.add(o);
  }
  return out;
}

/**
 * The tensors that depend differentiably on the image (`dx`) and the nodes on a path from the image to the output,
 * in reverse topological order (`active`). A node outside the default domain is never assumed non-differentiable:
 * its outputs join the path, so {@link refuseUnsupported} names it instead of the gradient being silently cut.
 * @param isFloat whether a node output is a float32 tensor (integer and boolean tensors carry no gradient).
 */
function differentiablePath(
  nodes: NodeProto[],
  xName: string,
  yName: string,
  isFloat: (node: NodeProto, output: string) => boolean,
): { dx: Set<string>; active: NodeProto[] } {
  const dx = new Set([xName]);
  for (const n of nodes) {
    const foreign = !!n.domain && n.domain !== 'ai.onnx';
    if (NON_DIFFERENTIABLE.has(n.opType) && !foreign) continue;
    if (!n.input.some((i) => dx.has(i))) continue;
    for (const o of n.output) if (o && (isFloat(n, o) || foreign)) dx.add(o);
  }
  if (!dx.has(yName)) throw new ModelError(`the output ${yName} does not depend on the image input ${xName}`);
  const needed = new Set([yName]);
  const active: NodeProto[] = [];
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i]!;
    if (!n.output.some((o) => needed.has(o))) continue;
    if (!n.input.some((inp) => dx.has(inp))) continue;
    active.push(n);
    for (const inp of n.input) if (dx.has(inp)) needed.add(inp);
  }
  return { dx, active };
}

/** Throws a `ModelError` listing every node on the path whose op has no rule (op type, domain and node name). */
function refuseUnsupported(active: NodeProto[], cause?: unknown): void {
  const unsupported = active.filter((n) => !RULES[n.opType] || (n.domain && n.domain !== 'ai.onnx'));
  if (!unsupported.length) return;
  const list = unsupported.map((n) => `${n.domain ? `${n.domain}.` : ''}${n.opType} (node ${n.name || n.output[0]})`);
  throw new ModelError(
    `cannot differentiate through ${list.join(', ')}: supported ops are ${SUPPORTED_OPS.join(', ')}`,
    {
      details: { unsupported: list },
      ...(cause === undefined ? {} : { cause }),
    },
  );
}

/** Ops the builder can differentiate through. */
export const SUPPORTED_OPS: readonly string[] = Object.keys(RULES).sort();

/**
 * Builds the vector-Jacobian-product model of a forward image encoder.
 *
 * Input: an ONNX model (bytes) with one float input `[N, C, H, W]` (C, H, W fixed; N symbolic) and a float output
 * `[N, D]` (the first graph output), default-domain opset 13 to 18. Output: an ONNX model with the same opset
 * imports whose inputs are `(image [N, C, H, W], cotangent [N, D])` and outputs
 * `(embedding [N, D], grad [N, C, H, W])`, `grad = ∂⟨embedding, cotangent⟩/∂image`. The forward graph is kept as is
 * (LayerNormalization nodes gain their Mean/InvStdDev outputs, which the backward reuses) and the backward nodes use
 * only default-domain ops.
 *
 * Shapes are found by running the forward model in onnxruntime-node at batch 1 and 2 (see {@link probe}), so the
 * build is async and the result works for any batch size. Throws `ModelError` naming the op and node when the path
 * from the image to the embedding holds an op outside {@link SUPPORTED_OPS} (or of another domain, or a cast to a
 * non-float32 float type), before any backward node is emitted; never returns a graph with a silently wrong
 * gradient. Integer and shape computations, constants and weights are not differentiated.
 */
export async function buildVjpModel(forward: Uint8Array, options: VjpOptions = {}): Promise<Uint8Array> {
  const model: ModelProto = readModel(forward);
  const opset = opsetOf(model);
  if (opset < 13 || opset > 18) throw new ModelError(`opset ${opset} is not supported; export with opset 13 to 18`);
  const graph = model.graph;
  graph.node = topologicalOrder(graph.node, [
    ...graph.input.map((i) => i.name),
    ...graph.initializer.map((t) => t.name ?? ''),
  ]);
  const initNames = new Set(graph.initializer.map((t) => t.name ?? ''));
  const inputs = graph.input.filter((i) => !initNames.has(i.name));
  if (inputs.length !== 1) throw new ModelError(`the model must have exactly one image input; it has ${inputs.length}`);
  if (graph.output.length < 1) throw new ModelError('the model has no output');
  const xName = inputs[0]!.name;
  const yName = graph.output[0]!.name;
  const shape = inputs[0]!.type?.tensorType?.shape?.dim ?? [];
  const [channels, height, width] = shape.slice(1).map((d) => toNumber(d.dimValue));
  if (shape.length !== 4 || !channels || !height || !width)
    throw new ModelError(`the image input ${xName} must be [N, C, H, W] with fixed C, H and W`);

  let facts: Map<string, TensorFacts>;
  try {
    facts = await probe(forward, { name: xName, channels, height, width });
  } catch (error) {
    // onnxruntime could not run the model (an op or domain it lacks, …). Name an unsupported op on the path if the
    // graph's structure alone shows one (every tensor counted as float), else report onnxruntime's error.
    refuseUnsupported(differentiablePath(graph.node, xName, yName, () => true).active, error);
    throw new ModelError(`onnxruntime cannot run the forward model: ${(error as Error).message}`, { cause: error });
  }
  facts.set(xName, {
    dims: [{ perBatch: 1 }, { fixed: channels }, { fixed: height }, { fixed: width }],
    type: 'float32',
  });
  for (const t of graph.initializer)
    facts.set(t.name ?? '', { dims: (t.dims ?? []).map((d) => ({ fixed: toNumber(d) })), type: 'const' });

  const constTensors = new Map<string, TensorProto>(graph.initializer.map((t) => [t.name ?? '', t]));
  for (const n of graph.node) {
    if (n.opType === 'Constant') {
      const t = attr(n, 'value')?.t;
      if (t) {
        constTensors.set(n.output[0]!, t);
        facts.set(n.output[0]!, { dims: (t.dims ?? []).map((d) => ({ fixed: toNumber(d) })), type: 'const' });
      }
    }
  }
  const constValues = (name: string): number[] | undefined => {
    const t = constTensors.get(name);
    if (t) return tensorValues(t);
    return facts.get(name)?.values;
  };

  const { dx, active } = differentiablePath(graph.node, xName, yName, (n, o) => {
    const type = facts.get(o)?.type;
    if (type && OTHER_FLOATS.has(type))
      throw new ModelError(
        `${n.opType} node ${n.name || o} turns the image-dependent tensor into ${type}; only float32 is supported`,
        { details: { op: n.opType, node: n.name || o, type } },
      );
    return type === 'float32';
  });
  refuseUnsupported(active);

  const taken = new Set<string>([
    ...graph.input.map((i) => i.name),
    ...graph.initializer.map((t) => t.name ?? ''),
    ...graph.node.flatMap((n) => [...n.output, n.name ?? '']),
  ]);
  const e = new Emitter(opset, taken);
  const cotangent = options.cotangentName ?? 'cotangent';
  const gradName = options.gradName ?? 'grad';
  for (const name of [cotangent, gradName])
    if (taken.has(name))
      throw new ModelError(`the forward model already has a tensor named ${name}; pass another name in VjpOptions`);
  const grads = new Map<string, string[]>([[yName, [cotangent]]]);
  for (const n of active) {
    const gy = n.output.map((o) => {
      const g = grads.get(o);
      return g && g.length ? e.sum(g) : undefined;
    });
    if (gy.every((g) => g === undefined)) continue;
    const ctx: Ctx = { node: n, gy, e, facts, opset, isDx: (name) => dx.has(name), constValues };
    const inGrads = RULES[n.opType]!(ctx);
    n.input.forEach((inp, i) => {
      const g = inGrads[i];
      if (!g || !dx.has(inp)) return;
      const list = grads.get(inp) ?? [];
      list.push(g);
      grads.set(inp, list);
    });
  }
  const gx = grads.get(xName);
  if (!gx) throw new ModelError('no gradient reached the image input');
  e.nodes.push({ opType: 'Identity', input: [e.sum(gx)], output: [gradName], name: `${gradName}_identity` });

  const dOut = graph.output[0]!.type?.tensorType?.shape?.dim?.[1];
  graph.node.push(...e.nodes);
  graph.initializer.push(...e.initializers);
  graph.input.push({
    name: cotangent,
    type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: [{ dimParam: 'N' }, dOut ?? { dimParam: 'D' }] } } },
  });
  graph.output = [
    graph.output[0]!,
    { name: gradName, type: { tensorType: { elemType: DataType.FLOAT, shape: inputs[0]!.type!.tensorType!.shape! } } },
  ];
  return writeModel(model);
}
