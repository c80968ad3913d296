/**
 * Encoding pixels for people to look at: report images and thumbnails. With `decode.ts`, the only place sharp is
 * called on product images, so its settings (no operation cache, first frame only, `failOn: 'error'`, a pixel
 * limit) are chosen once. The synthetic catalog's renderer (`@lookalike/synth`) rasterises its own SVG and is the
 * one other sharp user.
 */
import sharp from 'sharp';
import { DEFAULT_LIMITS } from './decode.js';

/** Interleaved 8-bit RGB `[H * W * 3]` → PNG bytes. */
export function encodePng(rgb: Uint8Array, width: number, height: number): Promise<Buffer> {
  if (rgb.length !== width * height * 3)
    throw new RangeError(`encodePng: ${rgb.length} bytes is not ${width}×${height}×3`);
  return sharp(rgb, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}

/** How {@link thumbnailJpeg} renders. */
export interface ThumbnailOptions {
  /** Longest side in pixels; smaller images are not enlarged. */
  side: number;
  /** JPEG quality, 1–100. Default 82. */
  quality?: number;
  /** Largest width × height decoded; default the decode limit ({@link DEFAULT_LIMITS}). */
  maxPixels?: number;
}

/**
 * A JPEG thumbnail of an image file's bytes: first frame, EXIF orientation applied, longest side at most `side`,
 * transparency flattened onto white. Throws sharp's error for bytes it cannot decode.
 */
export function thumbnailJpeg(bytes: Uint8Array, options: ThumbnailOptions): Promise<Buffer> {
  const maxPixels = options.maxPixels ?? DEFAULT_LIMITS.maxPixels;
  return sharp(bytes, { limitInputPixels: maxPixels, failOn: 'error', pages: 1 })
    .rotate()
    .resize(options.side, options.side, { fit: 'inside', withoutEnlargement: true })
    .flatten({ background: '#ffffff' })
    .jpeg({ quality: options.quality ?? 82 })
    .toBuffer();
}
