/** Gradient rules of the ops that move values without computing on them: reshapes, transposes, slices, gathers, concatenation, padding, selection. */
import { ModelError } from '@lookalike/core';
import { fixedSize } from '../../probe.js';
import { A, attr, attrInt, attrInts, makeTensor } from '../../onnx.js';
import { dimsOf, normAxis, unbroadcast, out0, in_, g0, type Rule } from '../context.js';

export const shapeRules: Record<string, Rule> = {
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
};
