/**
 * Safe decoding of untrusted image bytes. Cheap checks come first (size, magic bytes, declared dimensions from
 * the header), so hostile input is refused before any pixel buffer is allocated; then sharp decodes the first
 * frame, applies EXIF orientation and converts whatever it got (CMYK, greyscale, palette, 16-bit, alpha) to
 * 8-bit sRGB RGB.
 */
import { ImageRejectedError } from '@lookalike/core';
import sharp from 'sharp';
import type { RgbImage } from './resize.js';
import { decodeTiff, needsTiffRoute, readTiff, tiffRouteSupports, type TiffFile } from './tiff.js';

// No operation cache: inputs are untrusted buffers that must not outlive the call. Concurrency stays default.
sharp.cache(false);

/** Raster formats Lookalike decodes, identified from their signatures (never from names or declared types). */
export const SUPPORTED_FORMATS = ['jpeg', 'png', 'webp', 'gif', 'tiff', 'avif'] as const;
/** One of {@link SUPPORTED_FORMATS}, or `svg` when {@link DecodeLimits.allowSvg} let one through. */
export type ImageFormat = (typeof SUPPORTED_FORMATS)[number] | 'svg';

/** What {@link decodeImage} accepts. Everything is checked before a pixel buffer is allocated. */
export interface DecodeLimits {
  /** Largest accepted file, in bytes. Default 25 MiB. */
  maxBytes?: number;
  /** Largest accepted width × height of the first frame, read from the header before decoding. Default 40e6. */
  maxPixels?: number;
  /**
   * Rasterise SVG instead of refusing it. Default `false`: SVG is markup that can reference other resources and
   * runs a large parser, so only turn this on for trusted input.
   */
  allowSvg?: boolean;
}

/** The decode limits of a configuration's image intake (MAX_UPLOAD_BYTES… in `config.images`), and nothing else. */
export function decodeLimitsOf(images: Required<DecodeLimits>): Required<DecodeLimits> {
  return { maxBytes: images.maxBytes, maxPixels: images.maxPixels, allowSvg: images.allowSvg };
}

/** The limits {@link decodeImage} applies when none are given. */
export const DEFAULT_LIMITS: Readonly<Required<DecodeLimits>> = {
  maxBytes: 25 * 1024 * 1024,
  maxPixels: 40_000_000,
  allowSvg: false,
};

/** A decoded image: upright 8-bit sRGB pixels plus what the header said. */
export interface DecodedImage extends RgbImage {
  /** `[H, W, 3]` RGB, 8-bit sRGB, row-major, upright (EXIF orientation applied). */
  data: Uint8Array;
  /** Upright width in pixels. */
  width: number;
  /** Upright height in pixels. */
  height: number;
  /** Container format, sniffed from the bytes. */
  format: ImageFormat;
  /** Width as stored in the file, before EXIF orientation. */
  originalWidth: number;
  /** Height as stored in the file, before EXIF orientation. */
  originalHeight: number;
  /** EXIF orientation (1–8) that was applied, when the file carried one. */
  orientation?: number;
}

/**
 * A resize done by libvips while it decodes ({@link decodeImage}'s third argument): JPEG is decoded at 1/2, 1/4 or
 * 1/8 scale straight from its DCT coefficients (WebP and AVIF shrink on load too), and libvips' resize does the
 * rest with the given kernel, widened with the reduction so that it anti-aliases as Pillow's does. A 4000 × 3000
 * photo never exists at full size.
 */
export interface DecodeResize {
  /** The size to resize to, given the upright (EXIF-oriented) size of the image; undefined decodes at full size. */
  size(width: number, height: number): { width: number; height: number } | undefined;
  /** libvips' kernel: `cubic` is Catmull-Rom (a = −0.5, Pillow's BICUBIC), `linear` is the triangle (BILINEAR). */
  kernel: 'cubic' | 'linear';
}

/** What the first bytes of a file say it is. */
export type SniffedKind = ImageFormat | 'unsupported' | 'text' | 'unknown';

const startsWith = (b: Uint8Array, sig: readonly number[], at = 0): boolean =>
  b.length >= at + sig.length && sig.every((v, i) => b[at + i] === v);

const ascii = (b: Uint8Array, at: number, len: number): string => String.fromCharCode(...b.subarray(at, at + len));

/** How far into a file the XML prolog is read for its root element; a prolog longer than this is not an image. */
const PROLOG_LIMIT = 64 * 1024;

/**
 * The local name of the first element of an XML document (`svg` for `<svg` and `<svg:svg`), after a UTF-8 BOM and
 * the prolog: whitespace, the XML declaration and other processing instructions, comments and a DOCTYPE with its
 * internal subset. `undefined` when the bytes do not start that way or the prolog runs past {@link PROLOG_LIMIT}.
 */
function rootElement(b: Uint8Array): string | undefined {
  const text = Buffer.from(b.buffer, b.byteOffset, Math.min(b.byteLength, PROLOG_LIMIT)).toString('latin1');
  let i = text.startsWith('\xef\xbb\xbf') ? 3 : 0;
  const skip = (end: string) => {
    const at = text.indexOf(end, i);
    i = at < 0 ? text.length : at + end.length;
    return at >= 0;
  };
  for (;;) {
    while (i < text.length && ' \t\r\n'.includes(text[i]!)) i++;
    if (text.startsWith('<?', i)) {
      if (!skip('?>')) return undefined;
    } else if (text.startsWith('<!--', i)) {
      if (!skip('-->')) return undefined;
    } else if (text.slice(i, i + 9).toUpperCase() === '<!DOCTYPE') {
      if (!skipDoctype()) return undefined;
    } else break;
  }
  const name = /^<([A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)[\s/>]/.exec(text.slice(i, i + 256));
  return name?.[2]!.toLowerCase();

  /** Past `<!DOCTYPE … [ internal subset ] >`: quoted strings, comments and PIs may hold `>` or `]`. */
  function skipDoctype(): boolean {
    i += 9;
    let subset = false;
    while (i < text.length) {
      const c = text[i]!;
      if (c === '"' || c === "'") {
        i++;
        if (!skip(c)) return false;
      } else if (subset && text.startsWith('<!--', i)) {
        if (!skip('-->')) return false;
      } else if (subset && text.startsWith('<?', i)) {
        if (!skip('?>')) return false;
      } else if (c === '[') {
        subset = true;
        i++;
      } else if (c === ']' && subset) {
        subset = false;
        i++;
      } else if (c === '>' && !subset) {
        i++;
        return true;
      } else i++;
    }
    return false;
  }
}

/** Identifies the container from its first bytes, never trusting file names or declared types. */
export function sniffFormat(b: Uint8Array): { kind: SniffedKind; name?: string } {
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
  if (rootElement(b) === 'svg') return { kind: 'svg' };
  const sample = b.subarray(0, 512);
  const printable = sample.filter((c) => c === 9 || c === 10 || c === 13 || (c >= 32 && c < 127) || c >= 128).length;
  if (sample.length > 0 && printable / sample.length > 0.95) return { kind: 'text' };
  return { kind: 'unknown' };
}

function fmtBytes(n: number): string {
  return n >= 1024 * 1024 ? `${(n / (1024 * 1024)).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`;
}

/** Megapixels as a person writes them: 2928, 40, 12.3, 0.004. */
function fmtMegapixels(pixels: number): string {
  const mp = pixels / 1e6;
  return String(Number(mp >= 1 ? mp.toFixed(1) : mp.toPrecision(2)));
}

/** The first line of a library error, for `details`; never the stack. */
function reasonOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return (message.split('\n')[0] ?? '').trim();
}

const TRUNCATED =
  /premature end|truncat|unexpected end|end of (file|stream|data)|not enough data|incomplete|read error|short read/i;

/** Maps a libvips failure to a typed rejection: truncation when the message says so, otherwise damage. */
function decodeFailure(error: unknown, format: ImageFormat): ImageRejectedError {
  const reason = reasonOf(error);
  const name = format.toUpperCase();
  return TRUNCATED.test(reason)
    ? new ImageRejectedError(
        'IMAGE_TRUNCATED',
        `the ${name} file is truncated: it ends before its image data does; upload the complete file`,
        { details: { format, reason }, cause: error },
      )
    : new ImageRejectedError(
        'IMAGE_DECODE_FAILED',
        `the ${name} file is damaged and could not be decoded (${reason}); re-export it and upload it again`,
        { details: { format, reason }, cause: error },
      );
}

/** Refuses what the first bytes identify as anything but a format we decode. Returns the format otherwise. */
function acceptedFormat(bytes: Uint8Array, allowSvg: boolean): ImageFormat {
  const sniffed = sniffFormat(bytes);
  switch (sniffed.kind) {
    case 'svg':
      if (allowSvg) return 'svg';
      throw new ImageRejectedError(
        'IMAGE_UNSUPPORTED_FORMAT',
        'SVG is refused: vector files can reference external resources; upload a PNG or JPEG rendering of it instead',
        { details: { format: 'svg' } },
      );
    case 'unsupported':
      throw new ImageRejectedError(
        'IMAGE_UNSUPPORTED_FORMAT',
        `${sniffed.name ?? 'this'} files are not supported; convert it to JPEG, PNG, WebP, GIF, TIFF or AVIF`,
        { details: { format: sniffed.name } },
      );
    case 'text':
      throw new ImageRejectedError(
        'IMAGE_NOT_AN_IMAGE',
        'the file is text, not an image; upload a JPEG, PNG, WebP, GIF, TIFF or AVIF file',
      );
    case 'unknown':
      throw new ImageRejectedError(
        'IMAGE_NOT_AN_IMAGE',
        'the file is not an image: its first bytes match no known image format; upload a JPEG, PNG, WebP, GIF, ' +
          'TIFF or AVIF file',
      );
    default:
      return sniffed.kind;
  }
}

// limitInputPixels is ours to check (from the header, with a better message), so sharp's is off; failOn 'error'
// rejects corrupt data instead of returning grey rows; only the first frame of animations and multi-page files.
const SHARP_OPTIONS = {
  limitInputPixels: false,
  failOn: 'error',
  pages: 1,
  animated: false,
  sequentialRead: true,
} as const satisfies sharp.SharpOptions;

/**
 * The pixel count the image's header declares (width × height), read without decoding; undefined when the bytes
 * have no header sharp can read (decoding them then says why). For choosing where to decode, never for refusing.
 */
export async function declaredPixels(bytes: Uint8Array): Promise<number | undefined> {
  if (bytes.length === 0) return undefined;
  const input = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  try {
    const { width, height } = await sharp(input, SHARP_OPTIONS).metadata();
    return width && height ? width * height : undefined;
  } catch {
    return undefined;
  }
}

/** `IMAGE_TOO_MANY_PIXELS` when the header's size is over the limit. */
function refuseTooManyPixels(width: number, height: number, maxPixels: number): void {
  if (width * height > maxPixels)
    throw new ImageRejectedError(
      'IMAGE_TOO_MANY_PIXELS',
      `the image is ${width} × ${height} pixels (${fmtMegapixels(width * height)} megapixels); the limit is ` +
        `${fmtMegapixels(maxPixels)} megapixels; upload a smaller version`,
      { details: { width, height, maxPixels } },
    );
}

/** Decodes a TIFF through geotiff (`./tiff.ts`), after the same pixel check as libvips' route. */
async function decodeTiffRoute(file: TiffFile, maxPixels: number): Promise<DecodedImage> {
  const { header } = file;
  refuseTooManyPixels(header.width, header.height, maxPixels);
  const { data, width, height } = await decodeTiff(file);
  return {
    data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    width,
    height,
    format: 'tiff',
    originalWidth: header.width,
    originalHeight: header.height,
    ...(header.orientation === undefined ? {} : { orientation: header.orientation }),
  };
}

/**
 * Decodes untrusted bytes to upright 8-bit sRGB RGB, `[H, W, 3]`. Checks, in order and before any pixel buffer
 * exists: `IMAGE_EMPTY`, `IMAGE_TOO_MANY_BYTES`, the signature (`IMAGE_UNSUPPORTED_FORMAT` for SVG unless
 * allowed, BMP, PDF, HEIC, …; `IMAGE_NOT_AN_IMAGE` for text and unknown bytes), then `IMAGE_TOO_MANY_PIXELS` from
 * the header. Decoding failures are `IMAGE_TRUNCATED` or `IMAGE_DECODE_FAILED`. Animated images give their first
 * frame; EXIF orientation is applied; CMYK, greyscale, palette and 16-bit images become 8-bit sRGB; alpha is
 * dropped as PIL's `convert('RGB')` drops it (not blended), which is what CLIP's preprocessing does. TIFFs with
 * samples libvips cannot read right (over 16 bits, signed or float) are decoded through geotiff (`./tiff.ts`), and a
 * TIFF libvips refuses gets that second route before it is called damaged.
 *
 * With `resize`, libvips resizes while it decodes and `data`, `width` and `height` are the resized image (the
 * checks above still read the full size from the header; `originalWidth`, `originalHeight` and `orientation` still
 * describe the file).
 *
 * @throws ImageRejectedError
 */
export async function decodeImage(
  bytes: Uint8Array,
  limits: DecodeLimits = {},
  resize?: DecodeResize,
): Promise<DecodedImage> {
  const maxBytes = limits.maxBytes ?? DEFAULT_LIMITS.maxBytes;
  const maxPixels = limits.maxPixels ?? DEFAULT_LIMITS.maxPixels;
  if (bytes.length === 0)
    throw new ImageRejectedError('IMAGE_EMPTY', 'the file is empty (0 bytes); upload the image again');
  if (bytes.length > maxBytes)
    throw new ImageRejectedError(
      'IMAGE_TOO_MANY_BYTES',
      `the file is ${fmtBytes(bytes.length)}; the limit is ${fmtBytes(maxBytes)}; upload a smaller or more ` +
        'compressed version',
      { details: { bytes: bytes.length, maxBytes } },
    );
  const format = acceptedFormat(bytes, limits.allowSvg ?? DEFAULT_LIMITS.allowSvg);
  const input = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

  // TIFF samples libvips misreads (over 16 bits, signed, float) take the geotiff route; so does a TIFF libvips
  // refuses, before it is called damaged.
  const tiff = format === 'tiff' ? await readTiff(input) : undefined;
  if (tiff && needsTiffRoute(tiff.header)) return decodeTiffRoute(tiff, maxPixels);
  const secondRoute = async (error: unknown): Promise<DecodedImage> => {
    const failure = decodeFailure(error, format);
    if (!tiff || !tiffRouteSupports(tiff.header) || failure.code === 'IMAGE_TRUNCATED') throw failure;
    try {
      return await decodeTiffRoute(tiff, maxPixels);
    } catch (second) {
      if (second instanceof ImageRejectedError && second.code === 'IMAGE_TOO_MANY_PIXELS') throw second;
      throw failure;
    }
  };

  let meta: sharp.Metadata;
  try {
    meta = await sharp(input, SHARP_OPTIONS).metadata();
  } catch (error) {
    return secondRoute(error);
  }
  const { width, height } = meta;
  if (!width || !height)
    throw new ImageRejectedError('IMAGE_DECODE_FAILED', `the ${format.toUpperCase()} header declares no size`, {
      details: { format },
    });
  refuseTooManyPixels(width, height, maxPixels);
  const orientation = meta.orientation;
  const swaps = orientation !== undefined && orientation >= 5 && orientation <= 8;

  const upright = swaps ? { width: height, height: width } : { width, height };
  const target = resize?.size(upright.width, upright.height);
  let decoded: { data: Buffer; info: sharp.OutputInfo };
  try {
    const full = sharp(input, SHARP_OPTIONS).rotate().toColourspace('srgb').removeAlpha().raw({ depth: 'uchar' });
    if (!resize || !target) decoded = await full.toBuffer({ resolveWithObject: true });
    else if (meta.hasAlpha) {
      // sharp premultiplies alpha around a resize, which blackens transparent pixels; PIL's convert('RGB') keeps
      // their colour, so alpha goes first, at full size (PNG and GIF shrink only after decoding anyway).
      const rgb = await full.toBuffer({ resolveWithObject: true });
      decoded = await sharp(rgb.data, { raw: { width: rgb.info.width, height: rgb.info.height, channels: 3 } })
        .resize({ ...target, fit: 'fill', kernel: resize.kernel })
        .raw({ depth: 'uchar' })
        .toBuffer({ resolveWithObject: true });
    } else
      decoded = await sharp(input, SHARP_OPTIONS)
        .rotate()
        .resize({ ...target, fit: 'fill', kernel: resize.kernel })
        .toColourspace('srgb')
        .removeAlpha()
        .raw({ depth: 'uchar' })
        .toBuffer({ resolveWithObject: true });
  } catch (error) {
    return secondRoute(error);
  }
  const { data, info } = decoded;
  const expected = target ?? upright;
  if (
    info.channels !== 3 ||
    info.width !== expected.width ||
    info.height !== expected.height ||
    data.length !== info.width * info.height * 3
  )
    throw new ImageRejectedError(
      'IMAGE_DECODE_FAILED',
      `the ${format.toUpperCase()} file decoded to ${info.width} × ${info.height} × ${info.channels} instead of ` +
        `${expected.width} × ${expected.height} × 3; re-export it and upload it again`,
      { details: { format, width: info.width, height: info.height, channels: info.channels } },
    );
  return {
    data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    width: info.width,
    height: info.height,
    format,
    originalWidth: width,
    originalHeight: height,
    ...(orientation === undefined ? {} : { orientation }),
  };
}
