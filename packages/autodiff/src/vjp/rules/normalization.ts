/** Gradient rules of BatchNormalization (inference form) and LayerNormalization. */
import { ModelError } from '@lookalike/core';
import { attrFloat, attrInt } from '../../onnx.js';
import { dimsOf, normAxis, in_, g0, type Rule } from '../context.js';

export const normalizationRules: Record<string, Rule> = {
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
