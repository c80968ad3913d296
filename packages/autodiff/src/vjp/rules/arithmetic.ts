/** Gradient rules of identities, casts and element-wise arithmetic (Add, Sub, Mul, Div, Neg, Sum). */
import { ModelError } from '@lookalike/core';
import { DataType, attrInt } from '../../onnx.js';
import { unbroadcast, out0, in_, g0, elementwiseBinary, type Rule } from '../context.js';

export const arithmeticRules: Record<string, Rule> = {
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
};
