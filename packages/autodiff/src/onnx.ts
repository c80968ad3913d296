/**
 * ONNX models as plain objects, read and written with protobufjs and the official `onnx.proto` (ONNX 1.12,
 * `proto/onnx.proto`, Apache-2.0). Only the fields Lookalike touches are typed; every other field survives a
 * read–write round trip because decoding keeps the full message.
 */
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

const root = protobuf.loadSync(fileURLToPath(new URL('../proto/onnx.proto', import.meta.url)));
const ModelProto = root.lookupType('onnx.ModelProto');

/** `TensorProto.DataType` values used here. */
export const DataType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, BOOL: 9, DOUBLE: 11 } as const;
/** `AttributeProto.AttributeType` values. */
export const AttrType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8 } as const;

type Int = number | { toNumber(): number };

export interface TensorProto {
  dims?: Int[];
  dataType?: number;
  name?: string;
  rawData?: Uint8Array;
  floatData?: number[];
  int64Data?: Int[];
  int32Data?: number[];
  doubleData?: number[];
  dataLocation?: number;
}
export interface AttributeProto {
  name: string;
  type?: number;
  f?: number;
  i?: Int;
  s?: Uint8Array;
  t?: TensorProto;
  floats?: number[];
  ints?: Int[];
}
export interface NodeProto {
  input: string[];
  output: string[];
  name?: string;
  opType: string;
  domain?: string;
  attribute?: AttributeProto[];
}
export interface ValueInfoProto {
  name: string;
  type?: {
    tensorType?: { elemType?: number; shape?: { dim?: { dimValue?: Int; dimParam?: string }[] } };
  };
}
export interface GraphProto {
  node: NodeProto[];
  name?: string;
  initializer: TensorProto[];
  input: ValueInfoProto[];
  output: ValueInfoProto[];
  valueInfo?: ValueInfoProto[];
}
export interface OperatorSetIdProto {
  domain?: string;
  version?: Int;
}
export interface ModelProto {
  irVersion?: Int;
  opsetImport: OperatorSetIdProto[];
  producerName?: string;
  graph: GraphProto;
}

export const toNumber = (v: Int | undefined | null): number =>
  v === undefined || v === null ? 0 : typeof v === 'number' ? v : v.toNumber();

/** Decodes an ONNX model. */
export function readModel(bytes: Uint8Array): ModelProto {
  const message = ModelProto.decode(bytes);
  const model = message as unknown as ModelProto;
  model.graph.node ??= [];
  model.graph.initializer ??= [];
  return model;
}

/** Encodes an ONNX model. */
export function writeModel(model: ModelProto): Uint8Array {
  const error = ModelProto.verify(model);
  if (error) throw new Error(`invalid ONNX model: ${error}`);
  return ModelProto.encode(ModelProto.fromObject(model)).finish();
}

/** The default-domain opset version a model imports. */
export function opsetOf(model: ModelProto): number {
  const entry = model.opsetImport.find((o) => !o.domain || o.domain === 'ai.onnx');
  return toNumber(entry?.version);
}

/** Values of a constant tensor as numbers (float, double, int32, int64, bool). */
export function tensorValues(t: TensorProto): number[] {
  const type = t.dataType ?? DataType.FLOAT;
  const raw = t.rawData && t.rawData.length > 0 ? t.rawData : undefined;
  if (raw) {
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const out: number[] = [];
    const step = {
      [DataType.FLOAT]: 4,
      [DataType.DOUBLE]: 8,
      [DataType.INT32]: 4,
      [DataType.INT64]: 8,
      [DataType.BOOL]: 1,
      [DataType.UINT8]: 1,
      [DataType.INT8]: 1,
    }[type];
    if (!step) throw new Error(`tensor ${t.name ?? ''} has unsupported data type ${type}`);
    for (let o = 0; o < raw.byteLength; o += step) {
      if (type === DataType.FLOAT) out.push(view.getFloat32(o, true));
      else if (type === DataType.DOUBLE) out.push(view.getFloat64(o, true));
      else if (type === DataType.INT32) out.push(view.getInt32(o, true));
      else if (type === DataType.INT64) out.push(Number(view.getBigInt64(o, true)));
      else if (type === DataType.INT8) out.push(view.getInt8(o));
      else out.push(view.getUint8(o));
    }
    return out;
  }
  if (type === DataType.FLOAT) return [...(t.floatData ?? [])];
  if (type === DataType.DOUBLE) return [...(t.doubleData ?? [])];
  if (type === DataType.INT64) return (t.int64Data ?? []).map(toNumber);
  return [...(t.int32Data ?? [])];
}

/** A constant tensor (float32 or int64) for initializers and `Constant` nodes. */
export function makeTensor(
  name: string,
  type: 'float' | 'int64',
  dims: number[],
  values: ArrayLike<number>,
): TensorProto {
  const n = dims.reduce((a, b) => a * b, 1);
  if (values.length !== n)
    throw new RangeError(`tensor ${name}: ${values.length} values for dims [${dims.join(', ')}]`);
  if (type === 'float') {
    const raw = new Uint8Array(Float32Array.from(values).buffer);
    return { name, dataType: DataType.FLOAT, dims, rawData: raw };
  }
  const big = new BigInt64Array(n);
  for (let i = 0; i < n; i++) big[i] = BigInt(Math.trunc(values[i] as number));
  return { name, dataType: DataType.INT64, dims, rawData: new Uint8Array(big.buffer) };
}

/** Reads an attribute by name. */
export function attr(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute?.find((a) => a.name === name);
}
export const attrInt = (node: NodeProto, name: string, fallback: number): number => {
  const a = attr(node, name);
  return a ? toNumber(a.i) : fallback;
};
export const attrFloat = (node: NodeProto, name: string, fallback: number): number => attr(node, name)?.f ?? fallback;
export const attrInts = (node: NodeProto, name: string): number[] | undefined => attr(node, name)?.ints?.map(toNumber);

/** Attribute constructors. */
export const A = {
  int: (name: string, i: number): AttributeProto => ({ name, type: AttrType.INT, i }),
  float: (name: string, f: number): AttributeProto => ({ name, type: AttrType.FLOAT, f }),
  ints: (name: string, ints: number[]): AttributeProto => ({ name, type: AttrType.INTS, ints }),
  tensor: (name: string, t: TensorProto): AttributeProto => ({ name, type: AttrType.TENSOR, t }),
  string: (name: string, s: string): AttributeProto => ({
    name,
    type: AttrType.STRING,
    s: new TextEncoder().encode(s),
  }),
};
