/** Small ONNX graphs for tests: an image input `[N, C, H, W]`, some nodes, a flattened `[N, D]` output. */
import { A, DataType, makeTensor, writeModel, type AttributeProto, type NodeProto, type TensorProto } from './onnx.js';

export interface TinyGraph {
  nodes: NodeProto[];
  initializers?: TensorProto[];
  /** The tensor to flatten into the `[N, D]` output. */
  out: string;
  shape?: [number, number, number];
  opset?: number;
  /** Extra opset imports, e.g. `{ domain: 'com.microsoft', version: 1 }`. */
  extraOpsets?: { domain: string; version: number }[];
}

let counter = 0;
/** A node with a unique name. */
export function n(op: string, inputs: string[], outputs: string[], attrs: AttributeProto[] = []): NodeProto {
  return { opType: op, input: inputs, output: outputs, name: `${op}_${counter++}`, attribute: attrs };
}
export { A, makeTensor };

/** Serialises a tiny test model. */
export function tinyModel(g: TinyGraph): Uint8Array {
  const [c, h, w] = g.shape ?? [3, 4, 4];
  const nodes = [...g.nodes, n('Flatten', [g.out], ['embedding'], [A.int('axis', 1)])];
  return writeModel({
    irVersion: 8,
    opsetImport: [{ domain: '', version: g.opset ?? 17 }, ...(g.extraOpsets ?? [])],
    producerName: 'lookalike-autodiff-tests',
    graph: {
      name: 'tiny',
      node: nodes,
      initializer: g.initializers ?? [],
      input: [
        {
          name: 'x',
          type: {
            tensorType: {
              elemType: DataType.FLOAT,
              shape: { dim: [{ dimParam: 'N' }, { dimValue: c }, { dimValue: h }, { dimValue: w }] },
            },
          },
        },
      ],
      output: [{ name: 'embedding', type: { tensorType: { elemType: DataType.FLOAT } } }],
    },
  });
}
