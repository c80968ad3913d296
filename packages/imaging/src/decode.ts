/**
 * Safe decoding of untrusted image bytes. Cheap checks come first (size, magic bytes, declared dimensions from
 * the header), so hostile input is refused before any pixel buffer is allocated; then sharp decodes the first
 * frame, applies EXIF orientation and converts whatever it got (CMYK, greyscale, palette, 16-bit, alpha) to
 * 8-bit sRGB RGB.
 */
import { ImageRejectedError } from '@lookalike/core';
import sharp from 'sharp';
import type { RgbImage } from './resize.js';

// One decode at a time per call; no file cache (inputs are buffers, and a cache would hold untrusted data).
sharp.cache(false);

/** Formats Lookalike decodes. AVIF arrives from libheif as `heif`. */
export const SUPPORTED_FORMATS = ['jpeg', 'png', 'webp', 'gif', 'tiff', 'avif'] as const;
export type ImageFormat = (typeof SUPPORTED_FORMATS)[number];

export interface DecodeLimits {
  /** Largest accepted file, in bytes. Default 25 MiB. */
  maxBytes?: number;
  /** Largest accepted width × height, checked from the header before decoding. Default 40 megapixels. */
  maxPixels?: number;
}

export const DEFAULT_LIMITS: Required<DecodeLimits> = { maxBytes: 25 * 1024 * 1024, maxPixels: 40_000_000 };

/** A decoded image: upright 8-bit sRGB RGB pixels plus what the header said. */
export interface DecodedImage extends RgbImage {
  format: ImageFormat;
  /** EXIF orientation that was applied (1 when none). */
  orientation: number;
  /** Bytes of the original file. */
  bytes: number;
}

type Sniffed = ImageFormat | 'svg' | 'unsupported' | 'text' | 'unknown';

const startsWith = (b: Uint8Array, sig: readonly number[], at = 0): boolean =>
  b.length >= at + sig.length && sig.every((v, i) => b[at + i] === v);

const ascii = (b: Uint8Array, at: number, len: number): string => String.fromCharCode(...b.subarray(at, at + len));

/** Identifies the container from its first bytes, never trusting file names or declared types. */
export function sniffFormat(b: Uint8Array): { kind: Sniffed; name?: string } {
  if (startsWith(b, [0xff, 0xd8, 0xff])) return { kind: 'jpeg' };
  if (startsWith(b, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return { kind: 'png' };
  if (ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 4) === 'WEBP') return { kind: 'webp' };
  if (ascii(b, 0, 6) === 'GIF87a' || ascii(b, 0, 6) === 'GIF89a') return { kind: 'gif' };
  if (startsWith(b, [0x49, 0x49, 0x2a, 0x00]) || startsWith(b, [0x4d, 0x4d, 0x00, 0x2a])) return { kind: 'tiff' };
  if (ascii(b, 4, 4) === 'ftyp') {
    const brand = ascii(b, 8, 4);
    if (brand === 'avif' || brand === 'avis') return { kind: 'avif' };
    return { kind: 'unsupported', name: brand.startsWith('hei') || brand === 'mif1' ? 'HEIC' : `ISO media (${brand})` };
  }
  if (ascii(b, 0, 2) === 'BM') return { kind: 'unsupported', name: 'BMP' };
  if (ascii(b, 0, 5) === '%PDF-') return { kind: 'unsupported', name: 'PDF' };
  if (startsWith(b, [0x00, 0x00, 0x01, 0x00])) return { kind: 'unsupported', name: 'ICO' };
  if (ascii(b, 0, 4) === '8BPS') return { kind: 'unsupported', name: 'Photoshop (PSD)' };
  if (startsWith(b, [0xff, 0x0a]) || startsWith(b, [0x00, 0x00, 0x00, 0x0c, 0x4a, 0x58, 0x4c, 0x20]))
    return { kind: 'unsupported', name: 'JPEG XL' };
  // Text: skip a UTF-8 BOM and whitespace, then look for markup.
  let i = startsWith(b, [0xef, 0xbb, 0xbf]) ? 3 : 0;
  while (i < b.length && i < 4096 && (b[i] === 0x20 || b[i] === 0x09 || b[i] === 0x0a || b[i] === 0x0d)) i++;
  const head = ascii(b, i, Math.min(512, b.length - i)).toLowerCase();
  if (
    head.startsWith('<svg') ||
    (head.startsWith('<?xml') && head.includes('<svg')) ||
    head.startsWith('<!doctype svg')
  )
    return { kind: 'svg' };
  const sample = b.subarray(0, 512);
  const printable = sample.filter((c) => c === 9 || c === 10 || c === 13 || (c >= 32 && c < 127) || c >= 128).length;
  if (sample.length > 0 && printable / sample.length > 0.95) return { kind: 'text' };
  return { kind: 'unknown' };
}

function fmtBytes(n: number): string {
  return n >= 1024 * 1024 ? `${(n / (1024 * 1024)).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`;
}

function decodeFailure(error: unknown, format: string): ImageRejectedError {
  const message = error instanceof Error ? error.message : String(error);
  const truncated =
    /premature end|truncat|unexpected end|end of (file|stream)|not enough data|incomplete|read error|short read/i.test(
      message,
    );
  return truncated
    ? new ImageRejectedError('IMAGE_TRUNCATED', `the ${format} file is truncated: it ends before the image data does`, {
        details: { reason: message.split('\n')[0] },
      })
    : new ImageRejectedError('IMAGE_DECODE_FAILED', `the ${format} file is damaged and could not be decoded`, {
        details: { reason: message.split('\n')[0] },
      });
}

/**
 * Decodes untrusted bytes to upright 8-bit sRGB RGB. Throws `ImageRejectedError` with a code and a message the
 * uploader can act on: `IMAGE_EMPTY`, `IMAGE_TOO_MANY_BYTES`, `IMAGE_NOT_AN_IMAGE`, `IMAGE_UNSUPPORTED_FORMAT`
 * (SVG is always refused: it can reference external files and run parsers we do not need),
 * `IMAGE_TOO_MANY_PIXELS` (from the header, before decoding), `IMAGE_TRUNCATED`, `IMAGE_DECODE_FAILED`.
 * Animated images give their first frame; alpha is dropped as PIL's `convert('RGB')` drops it.
 */
export async function decodeImage(bytes: Uint8Array, limits: DecodeLimits = {}): Promise<DecodedImage> {
  const { maxBytes, maxPixels } = { ...DEFAULT_LIMITS, ...limits };
  if (bytes.length === 0) throw new ImageRejectedError('IMAGE_EMPTY', 'the file is empty (0 bytes)');
  if (bytes.length > maxBytes)
    throw new ImageRejectedError(
      'IMAGE_TOO_MANY_BYTES',
      `the file is ${fmtBytes(bytes.length)}; the limit is ${fmtBytes(maxBytes)}`,
      { details: { bytes: bytes.length, maxBytes } },
    );
  const sniffed = sniffFormat(bytes);
  switch (sniffed.kind) {
    case 'svg':
      throw new ImageRejectedError(
        'IMAGE_UNSUPPORTED_FORMAT',
        'SVG is not accepted: vector files can reference external resources; upload a PNG or JPEG rendering instead',
        { details: { format: 'svg' } },
      );
    case 'unsupported':
      throw new ImageRejectedError(
        'IMAGE_UNSUPPORTED_FORMAT',
        `${sniffed.name ?? 'this'} files are not supported; use JPEG, PNG, WebP, GIF, TIFF or AVIF`,
        { details: { format: sniffed.name } },
      );
    case 'text':
      throw new ImageRejectedError('IMAGE_NOT_AN_IMAGE', 'the file is text, not an image');
    case 'unknown':
      throw new ImageRejectedError(
        'IMAGE_NOT_AN_IMAGE',
        'the file is not an image in any known format (its first bytes match no image signature)',
      );
    default:
      break;
  }
  const format = sniffed.kind;
  const input = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // limitInputPixels is ours to check (with a better message), so sharp's is off; failOn 'error' rejects
  // corrupt data instead of returning grey rows.
  const options = {
    limitInputPixels: false,
    failOn: 'error',
    pages: 1,
    animated: false,
    sequentialRead: true,
  } as const;

  let meta: sharp.Metadata;
  try {
    meta = await sharp(input, options).metadata();
  } catch (error) {
    throw decodeFailure(error, format);
  }
  const width = meta.width;
  const height = meta.height;
  if (!width || !height) throw new ImageRejectedError('IMAGE_DECODE_FAILED', `the ${format} header has no dimensions`);
  if (width * height > maxPixels)
    throw new ImageRejectedError(
      'IMAGE_TOO_MANY_PIXELS',
      `the image is ${width} × ${height} pixels (${((width * height) / 1e6).toFixed(1)} megapixels); ` +
        `the limit is ${(maxPixels / 1e6).toFixed(1)} megapixels`,
      { details: { width, height, maxPixels } },
    );
  try {
    const { data, info } = await sharp(input, options)
      .rotate()
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || data.length !== info.width * info.height * 3)
      throw new Error(`decoder returned ${info.channels} channels of ${info.width} × ${info.height}`);
    return {
      data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      width: info.width,
      height: info.height,
      format,
      orientation: meta.orientation ?? 1,
      bytes: bytes.length,
    };
  } catch (error) {
    throw decodeFailure(error, format);
  }
}
