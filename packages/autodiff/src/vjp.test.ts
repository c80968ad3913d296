import { ModelError } from '@lookalike/core';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { readModel, writeModel } from './onnx.js';
import { A, makeTensor, n, tinyModel, type TinyGraph } from './testing.js';
import { buildVjpModel } from './vjp.js';

// The VJP graph builder against two independent oracles (finite differences, the transpose of affine maps), one
// tiny graph per op family. Over 400 lines on purpose: one table of graphs and their checks, read as a list.

const N = 2;

function rand(len: number, seed: number, scale = 1, offset = -0.5): Float32Array {
  const out = new Float32Array(len);
  let s = seed >>> 0;
  for (let i = 0; i < len; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32 + offset) * scale;
  }
  return out;
}

async function sessions(g: TinyGraph) {
  const fwdBytes = tinyModel(g);
  const vjpBytes = await buildVjpModel(fwdBytes);
  const fwd = await ort.InferenceSession.create(fwdBytes);
  const vjp = await ort.InferenceSession.create(vjpBytes);
  const [c, h, w] = g.shape ?? [3, 4, 4];
  const dims = [N, c, h, w];
  const forward = async (x: Float32Array) =>
    (await fwd.run({ x: new ort.Tensor('float32', x, dims) })).embedding!.data as Float32Array;
  const backward = async (x: Float32Array, u: Float32Array) => {
    const out = await vjp.run({
      x: new ort.Tensor('float32', x, dims),
      cotangent: new ort.Tensor('float32', u, [N, u.length / N]),
    });
    return { y: out.embedding!.data as Float32Array, g: out.grad!.data as Float32Array };
  };
  return { forward, backward, size: N * c * h * w, vjpBytes };
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] as number) * (b[i] as number);
  return s;
};

/**
 * Central finite differences in float32 along random directions: |fd − ⟨grad, v⟩| ≤ 2e-3·(|fd| + 1e-2), a bound
 * that float32 rounding at h = 1e-2 meets for these smooth ops with room to spare, while a wrong rule misses it by
 * orders of magnitude.
 */
async function checkFiniteDifferences(
  g: TinyGraph,
  opts: { seed?: number; scale?: number; offset?: number; h?: number } = {},
) {
  const s = await sessions(g);
  const x = rand(s.size, opts.seed ?? 1, opts.scale ?? 2, opts.offset ?? -0.5);
  const y = await s.forward(x);
  const u = rand(y.length, 2);
  const { y: y2, g: grad } = await s.backward(x, u);
  for (let i = 0; i < y.length; i++) expect(Math.abs(y2[i]! - y[i]!)).toBeLessThan(1e-5);
  const h = opts.h ?? 1e-2;
  for (let trial = 0; trial < 2; trial++) {
    const v = rand(s.size, 10 + trial);
    const plus = await s.forward(x.map((xi, i) => xi + h * v[i]!));
    const minus = await s.forward(x.map((xi, i) => xi - h * v[i]!));
    let fd = 0;
    for (let i = 0; i < u.length; i++) fd += (u[i]! * (plus[i]! - minus[i]!)) / (2 * h);
    const an = dot(grad, v);
    expect(Math.abs(fd - an), `fd ${fd} vs vjp ${an}`).toBeLessThanOrEqual(2e-3 * (Math.abs(fd) + 1e-2));
  }
}

/**
 * For affine maps f(v) = Lv + b: ⟨f(v) − f(0), u⟩ = ⟨v, Lᵀu⟩ up to float32 rounding (relative 1e-5), where Lᵀu is
 * the VJP model's gradient at an unrelated point (a linear map's Jacobian is the same everywhere).
 */
async function checkAdjoint(g: TinyGraph) {
  const s = await sessions(g);
  const v = rand(s.size, 3);
  const f0 = await s.forward(new Float32Array(s.size));
  const fv = (await s.forward(v)).map((y, i) => y - f0[i]!);
  const u = rand(fv.length, 4);
  const { g: ftu } = await s.backward(rand(s.size, 5), u);
  const [lhs, rhs] = [dot(fv, u), dot(v, ftu)];
  expect(Math.abs(lhs - rhs)).toBeLessThanOrEqual(1e-5 * (Math.abs(lhs) + 1));
}

const W = (name: string, dims: number[], seed: number) =>
  makeTensor(
    name,
    'float',
    dims,
    rand(
      dims.reduce((a, b) => a * b, 1),
      seed,
    ),
  );
const I = (name: string, values: number[], dims = [values.length]) => makeTensor(name, 'int64', dims, values);

// x: [2, 3, 4, 4]. Reshaped views used below: t = [2, 3, 16] ("tokens"), m = [2, 16, 3].
const toTokens = [n('Reshape', ['x', 'shape3'], ['t'])];
const tokensInit = [I('shape3', [0, 3, 16])];

const LINEAR: Record<string, TinyGraph> = {
  'Conv (stride 2, pad 1, depthwise groups)': {
    nodes: [
      n(
        'Conv',
        ['x', 'w', 'b'],
        ['y'],
        [A.ints('strides', [2, 2]), A.ints('pads', [1, 1, 1, 1]), A.int('group', 3), A.ints('kernel_shape', [3, 3])],
      ),
    ],
    initializers: [W('w', [6, 1, 3, 3], 7), makeTensor('b', 'float', [6], [0, 0, 0, 0, 0, 0])],
    out: 'y',
  },
  'Conv (patch embedding, stride = kernel, odd size)': {
    nodes: [n('Conv', ['x', 'w'], ['y'], [A.ints('strides', [2, 2]), A.ints('kernel_shape', [2, 2])])],
    initializers: [W('w', [4, 3, 2, 2], 8)],
    out: 'y',
    shape: [3, 5, 5],
  },
  'MatMul (weights), Transpose, Reshape': {
    nodes: [...toTokens, n('Transpose', ['t'], ['tt'], [A.ints('perm', [0, 2, 1])]), n('MatMul', ['tt', 'w'], ['y'])],
    initializers: [...tokensInit, W('w', [3, 5], 9)],
    out: 'y',
  },
  'Gemm (transB, alpha)': {
    nodes: [
      n('Flatten', ['x'], ['f'], [A.int('axis', 1)]),
      n('Gemm', ['f', 'w'], ['y'], [A.int('transB', 1), A.float('alpha', 0.5)]),
    ],
    initializers: [W('w', [7, 48], 10)],
    out: 'y',
  },
  'Slice, Gather (scalar and vector), Unsqueeze, Expand, Concat, Split (one output unused), Squeeze': {
    nodes: [
      ...toTokens,
      n('Slice', ['t', 's0', 's1', 's2'], ['sl']),
      n('Gather', ['t', 'gi'], ['g0'], [A.int('axis', 2)]),
      n('Unsqueeze', ['g0', 'ax2'], ['g0u']),
      n('Expand', ['g0u', 'eshape'], ['ex']),
      n('Gather', ['t', 'gv'], ['g1'], [A.int('axis', 2)]),
      n('Concat', ['sl', 'ex', 'g1'], ['cat'], [A.int('axis', 2)]),
      n('Split', ['cat', 'sp'], ['p0', 'p1'], [A.int('axis', 2)]),
      n('Unsqueeze', ['p1', 'ax1'], ['uq']),
      n('Squeeze', ['uq', 'ax1'], ['sq']),
      n('Mul', ['sq', 'k'], ['y']),
    ],
    initializers: [
      ...tokensInit,
      I('s0', [2]),
      I('s1', [11]),
      I('s2', [2]),
      I('gi', [0], []),
      I('gv', [5, 1, 5]),
      I('ax2', [2]),
      I('eshape', [1, 1, 4]),
      I('sp', [6, 10]),
      I('ax1', [1]),
      W('k', [3, 10], 11),
    ],
    out: 'y',
  },
  'Gemm (transA, beta, bias from the image)': {
    nodes: [
      n('Flatten', ['x'], ['f'], [A.int('axis', 1)]),
      n('Transpose', ['f'], ['ft'], [A.ints('perm', [1, 0])]),
      n('Gemm', ['f', 'w'], ['h']),
      n('Gemm', ['ft', 'w', 'h'], ['y'], [A.int('transA', 1), A.float('alpha', 2), A.float('beta', 0.25)]),
    ],
    initializers: [W('w', [48, 7], 14)],
    out: 'y',
  },
  'Conv (dilation 2, asymmetric pads, stride 2, bias) and ConvTranspose shapes for odd sizes': {
    nodes: [
      n(
        'Conv',
        ['x', 'w', 'b'],
        ['y'],
        [A.ints('strides', [2, 2]), A.ints('pads', [2, 0, 1, 3]), A.ints('dilations', [2, 2])],
      ),
    ],
    initializers: [W('w', [4, 3, 3, 3], 15), W('b', [4], 16)],
    out: 'y',
    shape: [3, 7, 6],
  },
  'Pad (constant; positive and negative pads), GlobalAveragePool': {
    nodes: [
      n('Pad', ['x', 'pads', 'cv'], ['p']),
      n('Mul', ['p', 'k'], ['y0']),
      n('GlobalAveragePool', ['p'], ['gap']),
      n('Flatten', ['y0'], ['yf'], [A.int('axis', 1)]),
      n('Flatten', ['gap'], ['gf'], [A.int('axis', 1)]),
      n('Concat', ['yf', 'gf'], ['y'], [A.int('axis', 1)]),
    ],
    initializers: [I('pads', [0, 0, 1, -1, 0, 0, -2, 2]), makeTensor('cv', 'float', [], [0]), W('k', [3, 3, 5], 17)],
    out: 'y',
  },
  'BatchNormalization (inference; after a Conv on [N, C, H, W], and on [N, C])': {
    nodes: [
      n('Conv', ['x', 'w'], ['cv'], [A.ints('kernel_shape', [3, 3]), A.ints('pads', [1, 1, 1, 1])]),
      n('BatchNormalization', ['cv', 'scale', 'bias', 'mean', 'var'], ['bn'], [A.float('epsilon', 1e-3)]),
      n('Flatten', ['bn'], ['f'], [A.int('axis', 1)]),
      n('BatchNormalization', ['f', 'scale2', 'bias2', 'mean2', 'var2'], ['y']),
    ],
    initializers: [
      W('w', [4, 3, 3, 3], 19),
      W('scale', [4], 20),
      W('bias', [4], 21),
      W('mean', [4], 22),
      makeTensor('var', 'float', [4], [0.5, 2, 0.01, 1]),
      W('scale2', [64], 23),
      W('bias2', [64], 24),
      W('mean2', [64], 25),
      makeTensor('var2', 'float', [64], rand(64, 26, 1, 0.1)),
    ],
    out: 'y',
  },
};

const SMOOTH: Record<string, TinyGraph> = {
  'Add, Sub, Mul, Div with broadcasting between image tensors': {
    nodes: [
      ...toTokens,
      n('ReduceMean', ['t'], ['mu'], [A.ints('axes', [2]), A.int('keepdims', 1)]),
      n('Sub', ['t', 'mu'], ['c']),
      n('Mul', ['c', 't'], ['m']),
      n('Add', ['m', 'mu'], ['a']),
      // Out of order on purpose: the builder sorts nodes topologically.
      n('Div', ['a', 'den'], ['y']),
      n('Add', ['t', 'two'], ['den0']),
      n('Mul', ['den0', 'den0'], ['den']),
    ],
    initializers: [...tokensInit, makeTensor('two', 'float', [], [2])],
    out: 'y',
  },
  'MatMul of two image tensors (attention scores) and Softmax': {
    nodes: [
      ...toTokens,
      n('Transpose', ['t'], ['tt'], [A.ints('perm', [0, 2, 1])]),
      n('MatMul', ['tt', 't'], ['s']),
      n('Softmax', ['s'], ['p'], [A.int('axis', -1)]),
      n('MatMul', ['p', 'tt'], ['y']),
    ],
    initializers: tokensInit,
    out: 'y',
  },
  'LayerNormalization, Erf GELU, QuickGELU (Sigmoid)': {
    nodes: [
      ...toTokens,
      n('Transpose', ['t'], ['tt'], [A.ints('perm', [0, 2, 1])]),
      n('LayerNormalization', ['tt', 'gamma', 'beta'], ['ln'], [A.int('axis', -1), A.float('epsilon', 1e-5)]),
      n('Div', ['ln', 'sqrt2'], ['d']),
      n('Erf', ['d'], ['e']),
      n('Add', ['e', 'one'], ['e1']),
      n('Mul', ['ln', 'e1'], ['gelu']),
      n('Mul', ['gelu', 'k'], ['q']),
      n('Sigmoid', ['q'], ['sg']),
      n('Mul', ['gelu', 'sg'], ['y']),
    ],
    initializers: [
      ...tokensInit,
      W('gamma', [3], 12),
      W('beta', [3], 13),
      makeTensor('sqrt2', 'float', [], [Math.SQRT2]),
      makeTensor('one', 'float', [], [1]),
      makeTensor('k', 'float', [], [1.702]),
    ],
    out: 'y',
  },
  'decomposed LayerNorm (ReduceMean, Pow, Sqrt) and F.normalize (ReduceL2, Clip, Expand, Div)': {
    nodes: [
      n('Flatten', ['x'], ['f'], [A.int('axis', 1)]),
      n('ReduceMean', ['f'], ['mu'], [A.ints('axes', [-1])]),
      n('Sub', ['f', 'mu'], ['c']),
      n('Pow', ['c', 'two'], ['c2']),
      n('ReduceMean', ['c2'], ['var'], [A.ints('axes', [-1])]),
      n('Add', ['var', 'eps'], ['ve']),
      n('Sqrt', ['ve'], ['sd']),
      n('Div', ['c', 'sd'], ['z']),
      n('ReduceL2', ['z'], ['nrm'], [A.ints('axes', [1]), A.int('keepdims', 1)]),
      n('Clip', ['nrm', 'eps'], ['nc']),
      n('Shape', ['z'], ['zs']),
      n('Expand', ['nc', 'zs'], ['ne']),
      n('Div', ['z', 'ne'], ['y']),
    ],
    initializers: [makeTensor('two', 'float', [], [2]), makeTensor('eps', 'float', [], [1e-5])],
    out: 'y',
  },
  'Tanh, Exp, Neg, ReduceSum (axes input), ReduceSumSquare, GlobalAveragePool, Cast, Identity': {
    nodes: [
      n('Tanh', ['x'], ['a']),
      n('Exp', ['a'], ['b']),
      n('Neg', ['b'], ['c']),
      n('Cast', ['c'], ['d'], [A.int('to', 1)]),
      n('Identity', ['d'], ['e']),
      n('GlobalAveragePool', ['e'], ['gap']),
      n('ReduceSum', ['e', 'ax'], ['rs'], [A.int('keepdims', 0)]),
      n('ReduceSumSquare', ['e'], ['rss'], [A.ints('axes', [1]), A.int('keepdims', 0)]),
      n('Flatten', ['gap'], ['gf'], [A.int('axis', 1)]),
      n('Flatten', ['rs'], ['rf'], [A.int('axis', 1)]),
      n('Flatten', ['rss'], ['sf'], [A.int('axis', 1)]),
      n('Concat', ['gf', 'rf', 'sf'], ['y'], [A.int('axis', 1)]),
    ],
    initializers: [I('ax', [3])],
    out: 'y',
  },
  'Pow (exponent 3), Sqrt, Reciprocal, Log, Sum of three, Sub and Div by image tensors': {
    nodes: [
      n('Mul', ['x', 'x'], ['sq']),
      n('Add', ['sq', 'one'], ['pos']),
      n('Pow', ['x', 'three'], ['cube']),
      n('Sqrt', ['pos'], ['rt']),
      n('Reciprocal', ['pos'], ['rc']),
      n('Log', ['pos'], ['lg']),
      n('Sum', ['cube', 'rt', 'rc'], ['s']),
      n('Sub', ['lg', 's'], ['d']),
      n('Div', ['d', 'pos'], ['y']),
    ],
    initializers: [makeTensor('one', 'float', [], [1]), makeTensor('three', 'float', [], [3])],
    out: 'y',
  },
  'opset 18: ReduceMean and ReduceL2 with axes as input, Split with num_outputs, LayerNormalization over 2 axes': {
    nodes: [
      ...toTokens,
      n('ReduceMean', ['t', 'ax2'], ['mu']),
      n('Sub', ['t', 'mu'], ['c']),
      n('ReduceL2', ['c', 'ax1'], ['nrm'], [A.int('keepdims', 0)]),
      n('Unsqueeze', ['nrm', 'ax1'], ['nrmu']),
      n('Div', ['c', 'nrmu'], ['z']),
      n('Split', ['z'], ['z0', 'z1'], [A.int('axis', 2), A.int('num_outputs', 2)]),
      n('Mul', ['z0', 'z1'], ['zz']),
      n('LayerNormalization', ['x', 'gamma'], ['ln'], [A.int('axis', 2)]),
      n('Flatten', ['zz'], ['zf'], [A.int('axis', 1)]),
      n('Flatten', ['ln'], ['lf'], [A.int('axis', 1)]),
      n('Concat', ['zf', 'lf'], ['y'], [A.int('axis', 1)]),
    ],
    initializers: [...tokensInit, I('ax1', [1]), I('ax2', [2]), W('gamma', [4, 4], 18)],
    out: 'y',
    opset: 18,
  },
};

const MAXPOOL_ODD = [
  A.ints('kernel_shape', [2, 3]),
  A.ints('strides', [1, 2]),
  A.ints('dilations', [2, 1]),
  A.ints('pads', [1, 0, 0, 1]),
  A.int('ceil_mode', 1),
];

const PIECEWISE: Record<string, TinyGraph> = {
  'Min, Abs, Clip with only a lower bound (clamp_min)': {
    nodes: [
      n('Abs', ['x'], ['a']),
      n('Min', ['x', 'a2'], ['m']),
      n('Mul', ['a', 'half'], ['a2']),
      n('Clip', ['m', 'lo'], ['cl']),
      n('Add', ['cl', 'a'], ['y']),
    ],
    initializers: [makeTensor('half', 'float', [], [0.5]), makeTensor('lo', 'float', [], [-0.3])],
    out: 'y',
  },
  'Relu, Where, Max, Clip': {
    nodes: [
      n('Relu', ['x'], ['r']),
      n('Greater', ['x', 'zero'], ['pos']),
      n('Where', ['pos', 'x', 'r2'], ['w']),
      n('Mul', ['x', 'half'], ['r2']),
      n('Max', ['w', 'r'], ['m']),
      n('Clip', ['m', 'lo', 'hi'], ['cl']),
      n('Add', ['cl', 'r'], ['y']),
    ],
    initializers: [
      makeTensor('zero', 'float', [], [0]),
      makeTensor('half', 'float', [], [0.5]),
      makeTensor('lo', 'float', [], [-0.3]),
      makeTensor('hi', 'float', [], [0.4]),
    ],
    out: 'y',
  },
  'MaxPool (2×2, stride 2: disjoint windows)': {
    nodes: [n('MaxPool', ['x'], ['y'], [A.ints('kernel_shape', [2, 2]), A.ints('strides', [2, 2])])],
    out: 'y',
  },
  'MaxPool (3×3, stride 2, pad 1: overlapping windows, as in a ResNet stem) after Relu': {
    nodes: [
      n('Relu', ['x'], ['r']),
      n(
        'MaxPool',
        ['r'],
        ['y'],
        [A.ints('kernel_shape', [3, 3]), A.ints('strides', [2, 2]), A.ints('pads', [1, 1, 1, 1])],
      ),
    ],
    out: 'y',
    shape: [3, 7, 5],
  },
  'MaxPool (ceil_mode, dilation 2, asymmetric pads, stride 1 × 2)': {
    nodes: [n('MaxPool', ['x'], ['y'], MAXPOOL_ODD)],
    out: 'y',
    shape: [2, 6, 7],
  },
};

describe(buildVjpModel.name, () => {
  describe('linear ops: adjoint identity and finite differences', () => {
    for (const [name, g] of Object.entries(LINEAR)) {
      it(name, async () => {
        await checkAdjoint(g);
        await checkFiniteDifferences(g);
      });
    }
  });

  describe('smooth ops: central finite differences in float32', () => {
    for (const [name, g] of Object.entries(SMOOTH)) it(name, () => checkFiniteDifferences(g));
  });

  describe('piecewise-linear ops: finite differences away from kinks', () => {
    // Steps of 1e-3 on inputs spread over ±2 rarely cross a kink (the seeds are fixed: these cases cross none).
    for (const [name, g] of Object.entries(PIECEWISE)) it(name, () => checkFiniteDifferences(g, { h: 1e-3, scale: 4 }));
  });

  describe('MaxPool with ties: the gradient goes where onnxruntime’s Indices point (the first maximum)', () => {
    const cases: [string, ReturnType<typeof A.ints>[], [number, number, number]][] = [
      ['2×2, stride 2', [A.ints('kernel_shape', [2, 2]), A.ints('strides', [2, 2])], [3, 4, 4]],
      [
        '3×3, stride 2, pad 1',
        [A.ints('kernel_shape', [3, 3]), A.ints('strides', [2, 2]), A.ints('pads', [1, 1, 1, 1])],
        [3, 7, 5],
      ],
      ['3×3, stride 1 (each element in up to nine windows)', [A.ints('kernel_shape', [3, 3])], [2, 5, 5]],
      ['ceil_mode, dilation 2, asymmetric pads', MAXPOOL_ODD, [2, 6, 7]],
    ];
    it.each(cases)('%s', async (_, attrs, shape) => {
      const pool: TinyGraph = { nodes: [n('MaxPool', ['x'], ['y'], attrs)], out: 'y', shape };
      const s = await sessions(pool);
      // Values in {−1, −½, 0, ½, 1} and a constant negative block: most windows hold several maxima, and a padded
      // border window's maximum is often negative (padding must never win).
      const x = rand(s.size, 31).map((v) => Math.round(v * 4) / 2);
      x.fill(-1, 0, shape[1] * shape[2]);
      const u = rand((await s.forward(x)).length, 32);
      const { g } = await s.backward(x, u);
      const indices = tinyModel({
        nodes: [n('MaxPool', ['x'], ['p', 'idx'], attrs), n('Cast', ['idx'], ['y'], [A.int('to', 1)])],
        out: 'y',
        shape,
      });
      const session = await ort.InferenceSession.create(indices);
      const idx = (await session.run({ x: new ort.Tensor('float32', x, [N, ...shape]) })).embedding!
        .data as Float32Array;
      // ONNX Indices count over the whole [N, C, H, W] tensor: scatter-add the cotangent there.
      const expected = new Float32Array(s.size);
      idx.forEach((at, j) => (expected[at] = expected[at]! + u[j]!));
      for (let i = 0; i < s.size; i++) expect(g[i], `element ${i}`).toBeCloseTo(expected[i]!, 6);
    });
  });

  it('refuses a BatchNormalization in training mode instead of differentiating it as inference', async () => {
    const g = tinyModel({
      nodes: [
        n('BatchNormalization', ['x', 'scale', 'bias', 'mean', 'var'], ['y', 'rm', 'rv'], [A.int('training_mode', 1)]),
      ],
      initializers: ['scale', 'bias', 'mean', 'var'].map((name, i) =>
        makeTensor(name, 'float', [3], name === 'var' ? [1, 1, 1] : rand(3, 40 + i)),
      ),
      out: 'y',
    });
    const error: unknown = await buildVjpModel(g).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelError);
    expect((error as Error).message).toMatch(/BatchNormalization node \S+ is in training mode; export .* in eval mode/);
  });

  it('emits only default-domain ops and keeps the forward output', async () => {
    const { vjpBytes } = await sessions(SMOOTH['LayerNormalization, Erf GELU, QuickGELU (Sigmoid)']!);
    const model = readModel(vjpBytes);
    expect(model.graph.node.every((node) => !node.domain || node.domain === 'ai.onnx')).toBe(true);
    expect(model.graph.output.map((o) => o.name)).toEqual(['embedding', 'grad']);
    expect(model.graph.input.map((i) => i.name)).toEqual(['x', 'cotangent']);
  });

  it('refuses an op it cannot differentiate, naming the op and the node, before emitting anything', async () => {
    const g = tinyModel({ nodes: [n('Sin', ['x'], ['s']), n('Mul', ['s', 's'], ['y'])], out: 'y' });
    const error: unknown = await buildVjpModel(g).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelError);
    expect((error as Error).message).toMatch(/cannot differentiate through Sin \(node Sin_\d+\)/);
  });

  it.each([
    ['LpNormalization', [n('LpNormalization', ['x'], ['s'], [A.int('axis', 1), A.int('p', 2)])], []],
    [
      'Resize',
      [n('Resize', ['x', '', 'scales'], ['s'], [A.string('mode', 'linear')])],
      [makeTensor('scales', 'float', [4], [1, 1, 2, 2])],
    ],
    ['Sin', [n('Sin', ['x'], ['s'])], []],
  ] as const)(
    'refuses %s on the differentiable path with an error naming the op and the node',
    async (op, nodes, inits) => {
      const g = tinyModel({
        nodes: [...nodes, n('Mul', ['s', 'two'], ['y'])],
        initializers: [...inits, makeTensor('two', 'float', [], [2])],
        out: 'y',
      });
      const error: unknown = await buildVjpModel(g).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ModelError);
      expect((error as Error).message).toContain(`${op} (node ${nodes[0].name})`);
      expect((error as ModelError).details).toEqual({ unsupported: [`${op} (node ${nodes[0].name})`] });
    },
  );

  it('refuses ops of other domains and casts to other float types instead of cutting the gradient', async () => {
    // com.microsoft.Gelu runs in onnxruntime but is not a default-domain op: a silent zero gradient would be wrong.
    const gelu = n('Gelu', ['x'], ['g']);
    gelu.domain = 'com.microsoft';
    const foreign = tinyModel({
      nodes: [gelu, n('Add', ['g', 'x'], ['y'])],
      out: 'y',
      extraOpsets: [{ domain: 'com.microsoft', version: 1 }],
    });
    await expect(buildVjpModel(foreign)).rejects.toThrow(`com.microsoft.Gelu (node ${gelu.name})`);
    // An op onnxruntime cannot even run is still named (from the graph's structure) rather than failing obscurely.
    const mystery = n('Mystery', ['x'], ['m']);
    mystery.domain = 'example.custom';
    const unknown = tinyModel({
      nodes: [mystery, n('Add', ['m', 'x'], ['y'])],
      out: 'y',
      extraOpsets: [{ domain: 'example.custom', version: 1 }],
    });
    await expect(buildVjpModel(unknown)).rejects.toThrow(`example.custom.Mystery (node ${mystery.name})`);
    const half = n('Cast', ['x'], ['h'], [A.int('to', 10)]);
    const cast = tinyModel({
      nodes: [half, n('Cast', ['h'], ['f'], [A.int('to', 1)]), n('Add', ['f', 'x'], ['y'])],
      out: 'y',
    });
    await expect(buildVjpModel(cast)).rejects.toThrow(
      `Cast node ${half.name} turns the image-dependent tensor into float16`,
    );
  });

  it('ignores an unsupported op whose result does not reach the embedding', async () => {
    const g = tinyModel({ nodes: [n('Sin', ['x'], ['unused']), n('Tanh', ['x'], ['y'])], out: 'y' });
    await expect(buildVjpModel(g)).resolves.toBeInstanceOf(Uint8Array);
  });

  it('ignores ops off the differentiable path (shape arithmetic) and refuses models whose output ignores the image', async () => {
    const g = tinyModel({
      nodes: [n('Shape', ['x'], ['s']), n('Cast', ['s'], ['sf'], [A.int('to', 1)]), n('Mul', ['x', 'x'], ['y'])],
      out: 'y',
    });
    await expect(buildVjpModel(g)).resolves.toBeInstanceOf(Uint8Array);
    const constant = tinyModel({
      nodes: [n('Identity', ['c'], ['y'])],
      initializers: [makeTensor('c', 'float', [2, 3], [1, 2, 3, 4, 5, 6])],
      out: 'y',
    });
    await expect(buildVjpModel(constant)).rejects.toThrow(/does not depend on the image/);
  });
});

describe('ONNX read/write', () => {
  it('round-trips a model with the same outputs', async () => {
    const bytes = tinyModel(SMOOTH['MatMul of two image tensors (attention scores) and Softmax']!);
    const again = writeModel(readModel(bytes));
    const x = rand(N * 48, 5);
    const run = async (b: Uint8Array) =>
      (await (await ort.InferenceSession.create(b)).run({ x: new ort.Tensor('float32', x, [N, 3, 4, 4]) })).embedding!
        .data;
    expect(await run(again)).toEqual(await run(bytes));
  });
});
