export { MicroBatcher, type MicroBatcherOptions } from './batcher.js';
export { OnnxImageEncoder } from './image-encoder.js';
export {
  imageManifestSchema,
  modelManifestSchema,
  qualityManifestSchema,
  textManifestSchema,
  type ImageModelManifest,
  type ModelManifest,
  type QualityModelManifest,
  type TextModelManifest,
} from './manifest.js';
export { OnnxQualityModel } from './quality-model.js';
export { ModelRegistry, sha256File } from './registry.js';
export { DEFAULT_RUNTIME_OPTIONS, imageTowerThreads, type EncoderRuntimeOptions } from './runtime.js';
export { MAX_TEXT_LENGTH, OnnxTextEncoder } from './text-encoder.js';
