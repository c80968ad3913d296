/**
 * What every gradient rule works with: the node being differentiated and the gradients of its outputs ({@link Ctx}),
 * the {@link Emitter} that collects backward nodes and constants, and the helpers rules share (unbroadcasting, axes,
 * the element-wise and reduction rule makers).
 */
import { ModelError } from '@lookalike/core';
import { isOne, sameDim, fixedSize, type Dim, type TensorFacts } from '../probe.js';
import { A, attrInt, attrInts, makeTensor, type AttributeProto, type NodeProto, type TensorProto } from '../onnx.js';

export interface Ctx {
  node: NodeProto;
  /** Gradient of each output (undefined where no gradient flows). */
  gy: (string | undefined)[];
  e: Emitter;
  facts: Map<string, TensorFacts>;
  opset: number;
  isDx(name: string): boolean;
  constValues(name: string): number[] | undefined;
}

export type Rule = (c: Ctx) => (string | undefined)[];

export function dimsOf(c: Ctx, name: string): Dim[] {
  const f = c.facts.get(name);
  if (!f) throw new ModelError(`no shape known for tensor ${name} (node ${c.node.name ?? c.node.opType})`);
  return f.dims;
}

export function fixedDims(c: Ctx, name: string, what: string, from = 0): number[] {
  return dimsOf(c, name)
    .slice(from)
    .map((d) => {
      const v = fixedSize(d);
      if (v === undefined)
        throw new ModelError(`${c.node.opType} node ${c.node.name ?? ''}: ${what} must not depend on the batch size`);
      return v;
    });
}

export const normAxis = (axis: number, rank: number): number => (axis < 0 ? axis + rank : axis);
export const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** Collects the backward nodes and their constants. */
export class Emitter {
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
export function unbroadcast(c: Ctx, g: string, fromName: string, to: string, fromDims?: Dim[]): string {
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

export function inputAxes(c: Ctx, attrName: string, inputIndex: number): number[] | undefined {
  const fromAttr = attrInts(c.node, attrName);
  if (fromAttr) return fromAttr;
  const name = c.node.input[inputIndex];
  if (!name) return undefined;
  const v = c.constValues(name);
  if (!v) throw new ModelError(`${c.node.opType} node ${c.node.name ?? ''}: its ${attrName} are not constant`);
  return v;
}

export const out0 = (c: Ctx): string => c.node.output[0]!;
export const in_ = (c: Ctx, i: number): string => c.node.input[i]!;
export const g0 = (c: Ctx): string => c.gy[0]!;

export function elementwiseBinary(grad: (c: Ctx, which: 0 | 1) => string): Rule {
  return (c) =>
    [0, 1].map((i) => (c.isDx(in_(c, i)) ? unbroadcast(c, grad(c, i as 0 | 1), out0(c), in_(c, i)) : undefined));
}

export function reduceRule(kind: 'sum' | 'mean' | 'l2' | 'sumsquare'): Rule {
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
