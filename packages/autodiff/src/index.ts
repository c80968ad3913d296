export { buildVjpModel, SUPPORTED_OPS, type VjpOptions } from './vjp.js';
export {
  VjpSession,
  loadVjp,
  loadVjpModel,
  VJP_BUILDER_VERSION,
  type VjpResult,
  type VjpSessionOptions,
} from './session.js';
export {
  readModel,
  writeModel,
  makeTensor,
  opsetOf,
  type ModelProto,
  type NodeProto,
  type TensorProto,
} from './onnx.js';
export { probe, type Dim, type TensorFacts } from './probe.js';
