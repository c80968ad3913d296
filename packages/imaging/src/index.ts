/**
 * `@lookalike/imaging`: safe decoding of untrusted image bytes and CLIP preprocessing that matches
 * Pillow + torchvision bit for bit.
 */
export {
  decodeImage,
  decodeLimitsOf,
  declaredPixels,
  sniffFormat,
  DEFAULT_LIMITS,
  SUPPORTED_FORMATS,
  type DecodeLimits,
  type DecodeResize,
  type DecodedImage,
  type ImageFormat,
  type SniffedKind,
} from './decode.js';
export { resizeRgb, type RgbImage, type ResampleFilter } from './resize.js';
export { encodePng, thumbnailJpeg, type ThumbnailOptions } from './encode.js';
export {
  resizedSize,
  resizeAndCrop,
  toPixels,
  normalize,
  preprocessBatch,
  fromBytes,
  fastResize,
  FAST_MIN_REDUCTION,
  preprocessHash,
  PREPROCESS_VERSION,
} from './preprocess.js';
export {
  PreprocessPool,
  MainThreadPreparer,
  prepareImage,
  defaultPreprocessThreads,
  isPrepareFailure,
  type ImagePreparer,
  type PreprocessPoolOptions,
  type PixelSpec,
  type PreparedImage,
  type PrepareFailure,
  type PrepareOutcome,
} from './preprocess-pool.js';
