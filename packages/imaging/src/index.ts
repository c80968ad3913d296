export {
  decodeImage,
  sniffFormat,
  DEFAULT_LIMITS,
  SUPPORTED_FORMATS,
  type DecodeLimits,
  type DecodedImage,
  type ImageFormat,
} from './decode.js';
export { resizeRgb, type RgbImage, type ResampleFilter } from './resize.js';
export {
  resizedSize,
  resizeAndCrop,
  toPixels,
  normalize,
  preprocessBatch,
  pixelsFromBytes,
  preprocessHash,
  PREPROCESS_VERSION,
} from './preprocess.js';
