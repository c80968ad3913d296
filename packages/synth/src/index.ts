export { createRng, type Rng } from './random.js';
export * from './vocabulary.js';
export { partShape, defectPositions, type PartShape, type Point2 } from './shapes.js';
export {
  sampleSpec,
  makeTwin,
  makeRerender,
  captionOf,
  defectPhrase,
  positionsFor,
  type ItemSpec,
  type ItemLabels,
  type Pose,
  type TwinEdit,
  type RerenderChanges,
} from './spec.js';
export { renderSvg } from './render.js';
export { noiseBank, valueNoise, NOISE_KINDS, type NoiseBank, type NoiseKind } from './noise.js';
export {
  generateCatalog,
  renderImage,
  manifestRecord,
  CatalogOptionsError,
  GENERATOR,
  MAX_RERENDERS,
  RERENDERS_MANIFEST,
  DISTORTED_MANIFEST,
  type CatalogOptions,
  type CatalogInfo,
  type ManifestRecord,
  type RerenderRecord,
  type ImageFormat,
} from './catalog.js';
export { distortionRecipe, renderDistorted, type DistortionRecipe } from './distorted.js';
export {
  DISTORTION_KINDS,
  distortImage,
  distortionParameter,
  qualityTarget,
  type Distortion,
  type DistortionKind,
  type RgbImage,
} from './distort.js';
