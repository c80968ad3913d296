/** Gradient rules of the linear ops: MatMul, Gemm and Conv (grouped, strided, dilated, padded). */
import { ModelError } from '@lookalike/core';
import { fixedSize } from '../../probe.js';
import { A, attr, attrFloat, attrInt, attrInts } from '../../onnx.js';
import { dimsOf, fixedDims, unbroadcast, out0, in_, g0, type Rule } from '../context.js';

export const linearRules: Record<string, Rule> = {
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
};
