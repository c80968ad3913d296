/**
 * Builds a vector-Jacobian-product model from a forward ONNX image encoder, with default-domain ops only:
 * inputs `(pixels [N,3,H,W], cotangent [N,D])`, outputs `(embedding [N,D], grad [N,3,H,W])` where
 * `grad = ∂⟨embedding, cotangent⟩/∂pixels`. The backward graph is emitted by reverse-mode differentiation over the
 * nodes between the image input and the embedding; forward values it needs are reused by name.
 */
import { ModelError } from '@lookalike/core';
import { isOne, probe, sameDim, fixedSize, type Dim, type TensorFacts } from './probe.js';
import {
  A,
  DataType,
  attr,
  attrFloat,
  attrInt,
  attrInts,
  makeTensor,
  opsetOf,
  readModel,
  tensorValues,
  toNumber,
  writeModel,
  type AttributeProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
} from './onnx.js';

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

interface Ctx {
  node: NodeProto;
  /** Gradient of each output (undefined where no gradient flows). */
  gy: (string | undefined)[];
  e: Emitter;
  facts: Map<string, TensorFacts>;
  opset: number;
  isDx(name: string): boolean;
  constValues(name: string): number[] | undefined;
}

type Rule = (c: Ctx) => (string | undefined)[];

function dimsOf(c: Ctx, name: string): Dim[] {
  const f = c.facts.get(name);
  if (!f) throw new ModelError(`no shape known for tensor ${name} (node ${c.node.name ?? c.node.opType})`);
  return f.dims;
}

function fixedDims(c: Ctx, name: string, what: string, from = 0): number[] {
  return dimsOf(c, name)
    .slice(from)
    .map((d) => {
      const v = fixedSize(d);
      if (v === undefined)
        throw new ModelError(`${c.node.opType} node ${c.node.name ?? ''}: ${what} must not depend on the batch size`);
      return v;
    });
}

const normAxis = (axis: number, rank: number): number => (axis < 0 ? axis + rank : axis);
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** Collects the backward nodes and their constants. */
class Emitter {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private counter = 0;
  private readonly shapes = new Map<string, string>();
  private readonly consts = new Map<string, string>();

  /** @param taken names already used by the forward graph, never reused for a backward tensor. */
  constructor(
    readonly opset: number,
    private readonly taken: ReadonlySet<string> = new Set(),
  ) {}

  fresh(base: string): string {
    let name: string;
    do name = `vjp_${this.counter++}_${base.replace(/[^A-Za-z0-9_]/g, '_').slice(-40)}`;
    while (this.taken.has(name));
    return name;
  }

  op(type: string, inputs: string[], attrs: AttributeProto[] = [], hint = type): string {
    const out = this.fresh(hint);
    this.nodes.push({ opType: type, input: inputs, output: [out], name: `${out}_node`, attribute: attrs });
    return out;
  }

  opMulti(type: string, inputs: string[], outputs: number, attrs: AttributeProto[] = []): string[] {
    const outs = Array.from({ length: outputs }, () => this.fresh(type));
    this.nodes.push({ opType: type, input: inputs, output: outs, name: `${outs[0]}_node`, attribute: attrs });
    return outs;
  }

  private constant(key: string, make: (name: string) => TensorProto): string {
    let name = this.consts.get(key);
    if (!name) {
      name = this.fresh('const');
      this.initializers.push(make(name));
      this.consts.set(key, name);
    }
    return name;
  }

  i64(values: number[], dims: number[] = [values.length]): string {
    return this.constant(`i64:${dims.join(',')}:${values.join(',')}`, (n) => makeTensor(n, 'int64', dims, values));
  }

  f32(values: number[], dims: number[] = []): string {
    return this.constant(`f32:${dims.join(',')}:${values.join(',')}`, (n) => makeTensor(n, 'float', dims, values));
  }

  shape(of: string): string {
    let s = this.shapes.get(of);
    if (!s) {
      s = this.op('Shape', [of]);
      this.shapes.set(of, s);
    }
    return s;
  }

  reshapeLike(g: string, like: string): string {
    return this.op('Reshape', [g, this.shape(like)]);
  }

  reduceSum(g: string, axes: number[], keepdims: boolean): string {
    return this.op('ReduceSum', [g, this.i64(axes)], [A.int('keepdims', keepdims ? 1 : 0)]);
  }

  reduceMean(g: string, axes: number[], keepdims: boolean): string {
    return this.opset >= 18
      ? this.op('ReduceMean', [g, this.i64(axes)], [A.int('keepdims', keepdims ? 1 : 0)])
      : this.op('ReduceMean', [g], [A.ints('axes', axes), A.int('keepdims', keepdims ? 1 : 0)]);
  }

  transpose(g: string, perm: number[]): string {
    return this.op('Transpose', [g], [A.ints('perm', perm)]);
  }

  /** Swaps the last two axes of a rank-`rank` tensor. */
  swapLast(g: string, rank: number): string {
    const perm = Array.from({ length: rank }, (_, i) => i);
    [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1]!, perm[rank - 2]!];
    return this.transpose(g, perm);
  }

  sum(terms: string[]): string {
    return terms.length === 1 ? terms[0]! : this.op('Sum', terms);
  }
}

/**
 * Reduces a gradient shaped like `from` to the shape of `to` (undoing broadcasting): sums the leading axes `to`
 * lacks and the axes where `to` has size 1, then reshapes to `to`'s runtime shape.
 */
function unbroadcast(c: Ctx, g: string, fromName: string, to: string, fromDims?: Dim[]): string {
  const from = fromDims ?? dimsOf(c, fromName);
  const target = dimsOf(c, to);
  const lead = from.length - target.length;
  if (lead < 0) throw new ModelError(`cannot unbroadcast ${fromName} to the larger ${to}`);
  const axes: number[] = [];
  for (let i = 0; i < from.length; i++) {
    if (i < lead) axes.push(i);
    else {
      const t = target[i - lead]!;
      const f = from[i]!;
      if (sameDim(t, f)) continue;
      if (isOne(t)) axes.push(i);
      else throw new ModelError(`shapes of ${fromName} and ${to} do not broadcast at axis ${i}`);
    }
  }
  if (axes.length === 0) return g;
  return c.e.reshapeLike(c.e.reduceSum(g, axes, true), to);
}

function inputAxes(c: Ctx, attrName: string, inputIndex: number): number[] | undefined {
  const fromAttr = attrInts(c.node, attrName);
  if (fromAttr) return fromAttr;
  const name = c.node.input[inputIndex];
  if (!name) return undefined;
  const v = c.constValues(name);
  if (!v) throw new ModelError(`${c.node.opType} node ${c.node.name ?? ''}: its ${attrName} are not constant`);
  return v;
}

const out0 = (c: Ctx): string => c.node.output[0]!;
const in_ = (c: Ctx, i: number): string => c.node.input[i]!;
const g0 = (c: Ctx): string => c.gy[0]!;

function elementwiseBinary(grad: (c: Ctx, which: 0 | 1) => string): Rule {
  return (c) =>
    [0, 1].map((i) => (c.isDx(in_(c, i)) ? unbroadcast(c, grad(c, i as 0 | 1), out0(c), in_(c, i)) : undefined));
}

function reduceRule(kind: 'sum' | 'mean' | 'l2' | 'sumsquare'): Rule {
  return (c) => {
    const x = in_(c, 0);
    const rank = dimsOf(c, x).length;
    const keep = attrInt(c.node, 'keepdims', 1) === 1;
    const given =
      c.node.opType === 'ReduceSum' && c.opset >= 13 ? inputAxes(c, '__none__', 1) : inputAxes(c, 'axes', 1);
    // An empty axes list reduces everything, unless noop_with_empty_axes (opset 13+/18+) makes the op an identity.
    if ((!given || given.length === 0) && attrInt(c.node, 'noop_with_empty_axes', 0) === 1) return [g0(c)];
    const axes = (given && given.length ? given : Array.from({ length: rank }, (_, i) => i)).map((a) =>
      normAxis(a, rank),
    );
    let gk = g0(c);
    let yk = out0(c);
    if (!keep) {
      gk = c.e.op('Unsqueeze', [gk, c.e.i64(axes)]);
      yk = c.e.op('Unsqueeze', [yk, c.e.i64(axes)]);
    }
    const expand = (t: string) => c.e.op('Expand', [t, c.e.shape(x)]);
    switch (kind) {
      case 'sum':
        return [expand(gk)];
      case 'mean': {
        const dims = dimsOf(c, x);
        const count = axes.reduce((n, a) => {
          const v = fixedSize(dims[a]!);
          if (v === undefined)
            throw new ModelError(`ReduceMean node ${c.node.name ?? ''} averages over the batch axis`);
          return n * v;
        }, 1);
        return [expand(c.e.op('Div', [gk, c.e.f32([count])]))];
      }
      case 'l2':
        return [c.e.op('Mul', [gk, c.e.op('Div', [x, yk])])];
      case 'sumsquare':
        return [c.e.op('Mul', [gk, c.e.op('Mul', [x, c.e.f32([2])])])];
    }
  };
}

const RULES: Record<string, Rule> = {
  Identity: (c) => [g0(c)],
  Dropout: (c) => [g0(c)],
  Cast: (c) => {
    if (attrInt(c.node, 'to', 0) !== DataType.FLOAT)
      throw new ModelError(`Cast node ${c.node.name ?? ''} leaves float32`);
    return [g0(c)];
  },
  Neg: (c) => [c.e.op('Neg', [g0(c)])],
  Add: elementwiseBinary((c) => g0(c)),
  Sub: elementwiseBinary((c, i) => (i === 0 ? g0(c) : c.e.op('Neg', [g0(c)]))),
  Mul: elementwiseBinary((c, i) => c.e.op('Mul', [g0(c), in_(c, 1 - i)])),
  Div: elementwiseBinary((c, i) =>
    i === 0
      ? c.e.op('Div', [g0(c), in_(c, 1)])
      : c.e.op('Neg', [c.e.op('Div', [c.e.op('Mul', [g0(c), out0(c)]), in_(c, 1)])]),
  ),
  Sum: (c) => c.node.input.map((x) => (c.isDx(x) ? unbroadcast(c, g0(c), out0(c), x) : undefined)),
  MatMul: (c) => {
    const [a, b] = [in_(c, 0), in_(c, 1)];
    const [ra, rb] = [dimsOf(c, a).length, dimsOf(c, b).length];
    if (ra < 2 || rb < 2) throw new ModelError(`MatMul node ${c.node.name ?? ''} has a vector operand`);
    // The gradient of each operand has the output's batch dimensions and that operand's matrix dimensions.
    const batch = dimsOf(c, out0(c)).slice(0, -2);
    const [da, db] = [dimsOf(c, a), dimsOf(c, b)];
    return [
      c.isDx(a)
        ? unbroadcast(c, c.e.op('MatMul', [g0(c), c.e.swapLast(b, rb)]), out0(c), a, [...batch, ...da.slice(-2)])
        : undefined,
      c.isDx(b)
        ? unbroadcast(c, c.e.op('MatMul', [c.e.swapLast(a, ra), g0(c)]), out0(c), b, [...batch, ...db.slice(-2)])
        : undefined,
    ];
  },
  Gemm: (c) => {
    const [a, b, bias] = [in_(c, 0), in_(c, 1), c.node.input[2]];
    const transA = attrInt(c.node, 'transA', 0) === 1;
    const transB = attrInt(c.node, 'transB', 0) === 1;
    const alpha = attrFloat(c.node, 'alpha', 1);
    const beta = attrFloat(c.node, 'beta', 1);
    const scale = (t: string, s: number) => (s === 1 ? t : c.e.op('Mul', [t, c.e.f32([s])]));
    let ga: string | undefined;
    let gb: string | undefined;
    if (c.isDx(a)) {
      const gap = scale(c.e.op('MatMul', [g0(c), transB ? b : c.e.swapLast(b, 2)]), alpha);
      ga = transA ? c.e.swapLast(gap, 2) : gap;
    }
    if (c.isDx(b)) {
      const gbp = scale(c.e.op('MatMul', [transA ? a : c.e.swapLast(a, 2), g0(c)]), alpha);
      gb = transB ? c.e.swapLast(gbp, 2) : gbp;
    }
    const gc = bias && c.isDx(bias) ? unbroadcast(c, scale(g0(c), beta), out0(c), bias) : undefined;
    return [ga, gb, gc];
  },
  Conv: (c) => {
    const [x, w] = [in_(c, 0), in_(c, 1)];
    if (c.isDx(w) || (c.node.input[2] && c.isDx(c.node.input[2])))
      throw new ModelError(
        `Conv node ${c.node.name ?? ''}: gradients of weights computed from the image are not supported`,
      );
    const autoPad = attr(c.node, 'auto_pad');
    if (autoPad?.s && new TextDecoder().decode(autoPad.s) !== 'NOTSET')
      throw new ModelError(`Conv node ${c.node.name ?? ''}: auto_pad is not supported; export with explicit pads`);
    const xd = fixedDims(c, x, 'spatial sizes', 2);
    const yd = dimsOf(c, out0(c))
      .slice(2)
      .map((d) => fixedSize(d)!);
    const kd = fixedDims(c, w, 'kernel').slice(2);
    const nsp = xd.length;
    const strides = attrInts(c.node, 'strides') ?? new Array<number>(nsp).fill(1);
    const dil = attrInts(c.node, 'dilations') ?? new Array<number>(nsp).fill(1);
    const pads = attrInts(c.node, 'pads') ?? new Array<number>(2 * nsp).fill(0);
    const outputPadding = xd.map(
      (xs, i) => xs - ((yd[i]! - 1) * strides[i]! - pads[i]! - pads[i + nsp]! + dil[i]! * (kd[i]! - 1) + 1),
    );
    return [
      c.e.op(
        'ConvTranspose',
        [g0(c), w],
        [
          A.ints('strides', strides),
          A.ints('pads', pads),
          A.ints('dilations', dil),
          A.int('group', attrInt(c.node, 'group', 1)),
          A.ints('output_padding', outputPadding),
          A.ints('kernel_shape', kd),
        ],
      ),
    ];
  },
  Reshape: (c) => [c.e.reshapeLike(g0(c), in_(c, 0))],
  Flatten: (c) => [c.e.reshapeLike(g0(c), in_(c, 0))],
  Squeeze: (c) => [c.e.reshapeLike(g0(c), in_(c, 0))],
  Unsqueeze: (c) => [c.e.reshapeLike(g0(c), in_(c, 0))],
  Transpose: (c) => {
    const rank = dimsOf(c, in_(c, 0)).length;
    const perm = attrInts(c.node, 'perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
    const inverse = new Array<number>(rank);
    perm.forEach((p, i) => (inverse[p] = i));
    return [c.e.transpose(g0(c), inverse)];
  },
  Expand: (c) => [unbroadcast(c, g0(c), out0(c), in_(c, 0))],
  Concat: (c) => {
    const rank = dimsOf(c, out0(c)).length;
    const axis = normAxis(attrInt(c.node, 'axis', 0), rank);
    const sizes = c.node.input.map((x) => {
      const v = fixedSize(dimsOf(c, x)[axis]!);
      if (v === undefined) throw new ModelError(`Concat node ${c.node.name ?? ''} concatenates along the batch axis`);
      return v;
    });
    const parts = c.e.opMulti('Split', [g0(c), c.e.i64(sizes)], sizes.length, [A.int('axis', axis)]);
    return c.node.input.map((x, i) => (c.isDx(x) ? parts[i] : undefined));
  },
  Split: (c) => {
    const rank = dimsOf(c, in_(c, 0)).length;
    const axis = normAxis(attrInt(c.node, 'axis', 0), rank);
    const grads = c.node.output.map(
      (o, i) =>
        c.gy[i] ??
        c.e.op('ConstantOfShape', [c.e.shape(o)], [A.tensor('value', makeTensor('zero', 'float', [1], [0]))]),
    );
    return [c.e.op('Concat', grads, [A.int('axis', axis)])];
  },
  Slice: (c) => {
    const x = in_(c, 0);
    const dims = dimsOf(c, x);
    const rank = dims.length;
    const starts = c.constValues(in_(c, 1));
    const ends = c.constValues(in_(c, 2));
    const axes = c.node.input[3]
      ? c.constValues(c.node.input[3])
      : Array.from({ length: starts?.length ?? 0 }, (_, i) => i);
    const steps = c.node.input[4] ? c.constValues(c.node.input[4]) : undefined;
    if (!starts || !ends || !axes) throw new ModelError(`Slice node ${c.node.name ?? ''}: bounds are not constant`);
    if (steps?.some((s) => s !== 1))
      throw new ModelError(`Slice node ${c.node.name ?? ''}: steps other than 1 are not supported`);
    const pads = new Array<number>(2 * rank).fill(0);
    axes.forEach((a0, i) => {
      const a = normAxis(a0, rank);
      const size = fixedSize(dims[a]!);
      if (size === undefined) throw new ModelError(`Slice node ${c.node.name ?? ''} slices the batch axis`);
      const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + size : v, 0), size);
      const s = clamp(starts[i]!);
      const e = Math.max(clamp(ends[i]!), s);
      pads[a] = s;
      pads[a + rank] = size - e;
    });
    return [c.e.op('Pad', [g0(c), c.e.i64(pads)], [])];
  },
  Gather: (c) => {
    const [x, idx] = [in_(c, 0), in_(c, 1)];
    const values = c.constValues(idx);
    if (!values) throw new ModelError(`Gather node ${c.node.name ?? ''}: indices are not constant`);
    const dims = dimsOf(c, x);
    const rank = dims.length;
    const axis = normAxis(attrInt(c.node, 'axis', 0), rank);
    const size = fixedSize(dims[axis]!);
    if (size === undefined) throw new ModelError(`Gather node ${c.node.name ?? ''} gathers along the batch axis`);
    const idxRank = dimsOf(c, idx).length;
    if (idxRank > 1) throw new ModelError(`Gather node ${c.node.name ?? ''}: indices of rank > 1 are not supported`);
    const k = values.length;
    // One-hot [K, D]: the gradient of a gather is a scatter-add, which a matrix product with it expresses exactly.
    const onehot = new Array<number>(k * size).fill(0);
    values.forEach((v, i) => (onehot[i * size + (v < 0 ? v + size : v)] = 1));
    const g1 = idxRank === 0 ? c.e.op('Unsqueeze', [g0(c), c.e.i64([axis])]) : g0(c);
    const perm = [...Array.from({ length: rank }, (_, i) => i).filter((i) => i !== axis), axis];
    const inverse = new Array<number>(rank);
    perm.forEach((p, i) => (inverse[p] = i));
    const moved = c.e.transpose(g1, perm);
    const scattered = c.e.op('MatMul', [moved, c.e.f32(onehot, [k, size])]);
    return [c.e.transpose(scattered, inverse), undefined];
  },
  Where: (c) => {
    const [cond, a, b] = [in_(c, 0), in_(c, 1), in_(c, 2)];
    const zero = c.e.f32([0]);
    return [
      undefined,
      c.isDx(a) ? unbroadcast(c, c.e.op('Where', [cond, g0(c), zero]), out0(c), a) : undefined,
      c.isDx(b) ? unbroadcast(c, c.e.op('Where', [cond, zero, g0(c)]), out0(c), b) : undefined,
    ];
  },
  Softmax: (c) => {
    const rank = dimsOf(c, out0(c)).length;
    if (c.opset < 13) throw new ModelError('Softmax before opset 13 (flattening semantics) is not supported');
    const axis = normAxis(attrInt(c.node, 'axis', -1), rank);
    const y = out0(c);
    const dot = c.e.reduceSum(c.e.op('Mul', [g0(c), y]), [axis], true);
    return [c.e.op('Mul', [y, c.e.op('Sub', [g0(c), dot])])];
  },
  Erf: (c) => {
    const x = in_(c, 0);
    const d = c.e.op('Exp', [c.e.op('Neg', [c.e.op('Mul', [x, x])])]);
    return [c.e.op('Mul', [g0(c), c.e.op('Mul', [d, c.e.f32([2 / Math.sqrt(Math.PI)])])])];
  },
  Sigmoid: (c) => {
    const y = out0(c);
    return [c.e.op('Mul', [g0(c), c.e.op('Mul', [y, c.e.op('Sub', [c.e.f32([1]), y])])])];
  },
  Tanh: (c) => {
    const y = out0(c);
    return [c.e.op('Mul', [g0(c), c.e.op('Sub', [c.e.f32([1]), c.e.op('Mul', [y, y])])])];
  },
  Relu: (c) => [c.e.op('Where', [c.e.op('Greater', [in_(c, 0), c.e.f32([0])]), g0(c), c.e.f32([0])])],
  Exp: (c) => [c.e.op('Mul', [g0(c), out0(c)])],
  Log: (c) => [c.e.op('Div', [g0(c), in_(c, 0)])],
  Sqrt: (c) => [c.e.op('Div', [g0(c), c.e.op('Mul', [out0(c), c.e.f32([2])])])],
  Reciprocal: (c) => [c.e.op('Neg', [c.e.op('Mul', [g0(c), c.e.op('Mul', [out0(c), out0(c)])])])],
  Pow: (c) => {
    const [x, p] = [in_(c, 0), in_(c, 1)];
    if (c.isDx(p))
      throw new ModelError(`Pow node ${c.node.name ?? ''}: exponents computed from the image are not supported`);
    const e = c.constValues(p);
    if (!e || e.length !== 1)
      throw new ModelError(`Pow node ${c.node.name ?? ''}: the exponent must be a constant scalar`);
    const deriv = c.e.op('Mul', [c.e.op('Pow', [x, c.e.f32([e[0]! - 1])]), c.e.f32([e[0]!])]);
    return [c.e.op('Mul', [g0(c), deriv]), undefined];
  },
  Clip: (c) => {
    const x = in_(c, 0);
    const zero = c.e.f32([0]);
    let mask: string | undefined;
    const [lo, hi] = [c.node.input[1], c.node.input[2]];
    if (lo) mask = c.e.op('GreaterOrEqual', [x, lo]);
    if (hi) {
      const m = c.e.op('LessOrEqual', [x, hi]);
      mask = mask ? c.e.op('And', [mask, m]) : m;
    }
    return [mask ? c.e.op('Where', [mask, g0(c), zero]) : g0(c), undefined, undefined];
  },
  Max: (c) => {
    if (c.node.input.length !== 2) throw new ModelError(`Max node ${c.node.name ?? ''}: only two inputs are supported`);
    const [a, b] = [in_(c, 0), in_(c, 1)];
    const zero = c.e.f32([0]);
    const aWins = c.e.op('GreaterOrEqual', [a, b]);
    return [
      c.isDx(a) ? unbroadcast(c, c.e.op('Where', [aWins, g0(c), zero]), out0(c), a) : undefined,
      c.isDx(b) ? unbroadcast(c, c.e.op('Where', [aWins, zero, g0(c)]), out0(c), b) : undefined,
    ];
  },
  Min: (c) => {
    if (c.node.input.length !== 2) throw new ModelError(`Min node ${c.node.name ?? ''}: only two inputs are supported`);
    const [a, b] = [in_(c, 0), in_(c, 1)];
    const zero = c.e.f32([0]);
    const aWins = c.e.op('LessOrEqual', [a, b]);
    return [
      c.isDx(a) ? unbroadcast(c, c.e.op('Where', [aWins, g0(c), zero]), out0(c), a) : undefined,
      c.isDx(b) ? unbroadcast(c, c.e.op('Where', [aWins, zero, g0(c)]), out0(c), b) : undefined,
    ];
  },
  Abs: (c) => [c.e.op('Mul', [g0(c), c.e.op('Sign', [in_(c, 0)])])],
  Pad: (c) => {
    // Constant-mode Pad is linear: its adjoint crops what was added and zero-pads what was cropped, i.e. a Pad by
    // the negated amounts (ONNX Pad removes elements for negative pads).
    const x = in_(c, 0);
    const mode = attr(c.node, 'mode')?.s;
    if (mode && new TextDecoder().decode(mode) !== 'constant')
      throw new ModelError(`Pad node ${c.node.name ?? ''}: only constant mode is supported`);
    const rank = dimsOf(c, x).length;
    const pads = c.constValues(in_(c, 1));
    const axes = c.node.input[3] ? c.constValues(c.node.input[3]) : Array.from({ length: rank }, (_, i) => i);
    if (!pads || !axes) throw new ModelError(`Pad node ${c.node.name ?? ''}: pads are not constant`);
    const full = new Array<number>(2 * rank).fill(0);
    axes.forEach((a0, i) => {
      const a = normAxis(a0, rank);
      full[a] = -pads[i]!;
      full[a + rank] = -pads[i + axes.length]!;
    });
    return [c.e.op('Pad', [g0(c), c.e.i64(full)]), undefined, undefined, undefined];
  },
  ReduceSum: reduceRule('sum'),
  ReduceMean: reduceRule('mean'),
  ReduceL2: reduceRule('l2'),
  ReduceSumSquare: reduceRule('sumsquare'),
  GlobalAveragePool: (c) => {
    const x = in_(c, 0);
    const spatial = fixedDims(c, x, 'spatial sizes', 2).reduce((a, b) => a * b, 1);
    return [c.e.op('Expand', [c.e.op('Div', [g0(c), c.e.f32([spatial])]), c.e.shape(x)])];
  },
  BatchNormalization: (c) => {
    // Inference mode: y = scale·(x − mean)/√(var + ε) + B per channel (axis 1), so ∂y/∂x is the per-channel
    // factor scale/√(var + ε) broadcast over the batch and spatial axes. Training mode normalises with the batch's
    // own statistics, another function; it is refused rather than differentiated as if it were inference.
    const [x, scale, , , variance] = c.node.input as [string, string, string, string, string];
    if (c.node.input.slice(1).some((t) => t && c.isDx(t)))
      throw new ModelError(
        `BatchNormalization node ${c.node.name ?? ''}: image-dependent scale, bias, mean or variance is not supported`,
      );
    if (attrInt(c.node, 'training_mode', 0) === 1 || c.node.output.slice(1).some(Boolean))
      throw new ModelError(
        `BatchNormalization node ${c.node.name ?? ''} is in training mode; export the model in eval mode`,
      );
    const rank = dimsOf(c, x).length;
    const e = c.e;
    const eps = attrFloat(c.node, 'epsilon', 1e-5);
    const factor = e.op('Div', [scale, e.op('Sqrt', [e.op('Add', [variance, e.f32([eps])])])]);
    // [C] → [C, 1, …, 1], aligned with axis 1 of x.
    const perChannel =
      rank > 2 ? e.op('Reshape', [factor, e.i64([-1, ...new Array<number>(rank - 2).fill(1)])]) : factor;
    return [e.op('Mul', [g0(c), perChannel]), undefined, undefined, undefined, undefined];
  },
  MaxPool: (c) => {
    // Each output is the max of one window; its gradient goes to that window's first maximal element in row-major
    // kernel order (ties go to the first, as PyTorch's and onnxruntime's Indices pick it). Every window is a strided
    // Slice of x padded with −∞, one per kernel offset; ArgMax over the stacked offsets picks the winner, and the
    // routed gradients scatter back through a ConvTranspose whose one-hot kernels put each offset in its place,
    // summing where windows overlap.
    const x = in_(c, 0);
    const autoPad = attr(c.node, 'auto_pad');
    if (autoPad?.s && new TextDecoder().decode(autoPad.s) !== 'NOTSET')
      throw new ModelError(`MaxPool node ${c.node.name ?? ''}: auto_pad is not supported; export with explicit pads`);
    const [channels, ...xd] = fixedDims(c, x, 'channels and spatial sizes', 1) as [number, ...number[]];
    const yd = fixedDims(c, out0(c), 'spatial sizes', 2);
    const nsp = xd.length;
    const kernel = attrInts(c.node, 'kernel_shape');
    if (!kernel || kernel.length !== nsp) throw new ModelError(`MaxPool node ${c.node.name ?? ''}: no kernel_shape`);
    const strides = attrInts(c.node, 'strides') ?? new Array<number>(nsp).fill(1);
    const dil = attrInts(c.node, 'dilations') ?? new Array<number>(nsp).fill(1);
    const pads = attrInts(c.node, 'pads') ?? new Array<number>(2 * nsp).fill(0);
    const begin = pads.slice(0, nsp);
    // The padded extent the windows span; with ceil_mode the last window may reach past the end padding.
    const span = yd.map((o, i) => (o - 1) * strides[i]! + dil[i]! * (kernel[i]! - 1) + 1);
    const end = span.map((s, i) => Math.max(pads[nsp + i]!, s - xd[i]! - begin[i]!));
    const e = c.e;
    const padded = e.op('Pad', [x, e.i64([0, 0, ...begin, 0, 0, ...end]), e.f32([-Infinity])]);
    // Kernel offsets in row-major order: offset k sits at cell k of the kernel.
    let offsets: number[][] = [[]];
    for (const size of kernel) offsets = offsets.flatMap((o) => range(size).map((j) => [...o, j]));
    const axes = e.i64(range(nsp).map((i) => i + 2));
    const windows = offsets.map((o) => {
      const starts = o.map((j, i) => j * dil[i]!);
      const ends = starts.map((s, i) => s + (yd[i]! - 1) * strides[i]! + 1);
      const w = e.op('Slice', [padded, e.i64(starts), e.i64(ends), axes, e.i64(strides)]);
      return e.op('Unsqueeze', [w, e.i64([2])]);
    });
    const K = offsets.length;
    // [N, C, K, ...y]: every window's values, one offset per index along axis 2.
    const stacked = K === 1 ? windows[0]! : e.op('Concat', windows, [A.int('axis', 2)]);
    const winner = e.op('ArgMax', [stacked], [A.int('axis', 2), A.int('keepdims', 1), A.int('select_last_index', 0)]);
    const mask = e.op('Equal', [winner, e.i64(range(K), [K, ...new Array<number>(nsp).fill(1)])]);
    const routed = e.op('Where', [mask, e.op('Unsqueeze', [g0(c), e.i64([2])]), e.f32([0])]);
    const flat = e.op('Reshape', [routed, e.i64([0, channels * K, ...yd])]);
    // Weight [C·K, 1, ...kernel]: input channel c·K + k of group c puts its value at kernel offset k.
    const cells = kernel.reduce((a, b) => a * b, 1);
    const onehot = new Array<number>(channels * K * cells).fill(0);
    for (let ch = 0; ch < channels; ch++) for (let k = 0; k < K; k++) onehot[(ch * K + k) * cells + k] = 1;
    const outputPadding = xd.map((size, i) => size + begin[i]! + end[i]! - span[i]!);
    return [
      e.op(
        'ConvTranspose',
        [flat, e.f32(onehot, [channels * K, 1, ...kernel])],
        [
          A.ints('strides', strides),
          A.ints('pads', [...begin, ...end]),
          A.ints('dilations', dil),
          A.int('group', channels),
          A.ints('output_padding', outputPadding),
          A.ints('kernel_shape', kernel),
        ],
      ),
    ];
  },
  LayerNormalization: (c) => {
    const [x, scale] = [in_(c, 0), c.node.input[1]];
    if ((scale && c.isDx(scale)) || (c.node.input[2] && c.isDx(c.node.input[2])))
      throw new ModelError(
        `LayerNormalization node ${c.node.name ?? ''}: image-dependent scale or bias is not supported`,
      );
    if (c.gy.slice(1).some((g) => g !== undefined))
      throw new ModelError(
        `LayerNormalization node ${c.node.name ?? ''}: gradients through Mean/InvStdDev outputs are not supported`,
      );
    const rank = dimsOf(c, x).length;
    const axis = normAxis(attrInt(c.node, 'axis', -1), rank);
    const axes = Array.from({ length: rank - axis }, (_, i) => axis + i);
    const eps = attrFloat(c.node, 'epsilon', 1e-5);
    const e = c.e;
    // Reuse the forward pass's Mean and InvStdDev ([..., 1, …, 1], keepdims over the normalised axes): the node's
    // optional outputs 1 and 2, added to it when the exporter left them out. Only float32 statistics are reused.
    const stash = attrInt(c.node, 'stash_type', 1);
    let mu: string;
    let inv: string;
    if (stash === 1) {
      while (c.node.output.length < 3) c.node.output.push('');
      if (!c.node.output[1]) c.node.output[1] = e.fresh(`${c.node.name ?? 'ln'}_mean`);
      if (!c.node.output[2]) c.node.output[2] = e.fresh(`${c.node.name ?? 'ln'}_inv_std`);
      [mu, inv] = [c.node.output[1], c.node.output[2]];
    } else {
      mu = e.reduceMean(x, axes, true);
      const xc0 = e.op('Sub', [x, mu]);
      const variance = e.reduceMean(e.op('Mul', [xc0, xc0]), axes, true);
      inv = e.op('Reciprocal', [e.op('Sqrt', [e.op('Add', [variance, e.f32([eps])])])]);
    }
    const xhat = e.op('Mul', [e.op('Sub', [x, mu]), inv]);
    const gh = scale ? e.op('Mul', [g0(c), scale]) : g0(c);
    const m1 = e.reduceMean(gh, axes, true);
    const m2 = e.reduceMean(e.op('Mul', [gh, xhat]), axes, true);
    const inner = e.op('Sub', [e.op('Sub', [gh, m1]), e.op('Mul', [xhat, m2])]);
    return [e.op('Mul', [inner, inv]), undefined, undefined];
  },
};

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
