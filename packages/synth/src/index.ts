export { createRng, type Rng } from './random.js';
export * from './vocabulary.js';
export { partShape, defectPositions, type PartShape, type Point2 } from './shapes.js';
export {
  sampleSpec,
  makeTwin,
  captionOf,
  defectPhrase,
  positionsFor,
  type ItemSpec,
  type ItemLabels,
  type Pose,
  type TwinEdit,
} from './spec.js';
export { renderSvg } from './render.js';
export { noiseBank, valueNoise, NOISE_KINDS, type NoiseBank, type NoiseKind } from './noise.js';
export {
  generateCatalog,
  renderImage,
  manifestRecord,
  CatalogOptionsError,
  GENERATOR,
  type CatalogOptions,
  type CatalogInfo,
  type ManifestRecord,
  type ImageFormat,
} from './catalog.js';
