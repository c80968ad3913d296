/** Gradient rules of reductions and pooling: ReduceSum/Mean/SumSquare, GlobalAveragePool, MaxPool. */
import { ModelError } from '@lookalike/core';
import { A, attr, attrInts } from '../../onnx.js';
import { fixedDims, range, out0, in_, g0, reduceRule, type Rule } from '../context.js';

export const reducePoolRules: Record<string, Rule> = {
  ReduceSum: reduceRule('sum'),
  ReduceMean: reduceRule('mean'),
  ReduceL2: reduceRule('l2'),
  ReduceSumSquare: reduceRule('sumsquare'),
  GlobalAveragePool: (c) => {
    const x = in_(c, 0);
    const spatial = fixedDims(c, x, 'spatial sizes', 2).reduce((a, b) => a * b, 1);
    return [c.e.op('Expand', [c.e.op('Div', [g0(c), c.e.f32([spatial])]), c.e.shape(x)])];
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
};
