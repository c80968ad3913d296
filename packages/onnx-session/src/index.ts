/**
 * `@lookalike/onnx-session`: where an onnxruntime-node session runs. Every model of Lookalike (the towers, their
 * gradient graphs, the attacks' forward passes) opens through {@link openModelSession}, so no `session.run` holds
 * an event loop that serves requests or renews job locks.
 */
export {
  InThreadSession,
  WorkerSession,
  openModelSession,
  sessionOptions,
  type InputShape,
  type ModelSource,
  type ModelSession,
  type SessionSettings,
  type TensorData,
} from './session.js';
