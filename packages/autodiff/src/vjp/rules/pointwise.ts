/** Gradient rules of the point-wise non-linearities and Softmax. */
import { ModelError } from '@lookalike/core';
import { attrInt } from '../../onnx.js';
import { dimsOf, normAxis, unbroadcast, out0, in_, g0, type Rule } from '../context.js';

export const pointwiseRules: Record<string, Rule> = {
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
};
