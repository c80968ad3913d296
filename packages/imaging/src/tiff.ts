/**
 * The second route for TIFF files, through geotiff (a JavaScript TIFF reader) instead of libvips. libvips refuses
 * valid TIFFs with 64-bit samples ("tiff2vips: samples out of range") and decodes others to wrong pixels without an
 * error: 32-bit integer samples come out as noise, 32-bit float greyscale as black, and float RGB is read as linear
 * light (scRGB) although writers such as ImageMagick store it sRGB-encoded. Files with such samples — anything but
 * 1–16-bit unsigned integers — are decoded here, always; libvips keeps everything else (JPEG-in-TIFF, YCbCr, CMYK,
 * palette, 8/16-bit), and a TIFF that libvips refuses for any other reason gets one more try here.
 *
 * One convention for every sample type: a sample is a fraction of its full scale — unsigned integers of 2^bits − 1,
 * signed integers of 2^(bits−1) − 1, floats of 1.0 — clamped to [0, 1] and taken as sRGB-encoded, like 8-bit
 * samples; alpha and other extra samples are dropped. Only the first page (IFD) is read, as for GIF frames.
 */
import { ImageRejectedError, ownsWholeBuffer } from '@lookalike/core';
import type { GeoTIFFImage } from 'geotiff';
import sharp from 'sharp';

/** TIFF tag values used here (TIFF 6.0). */
const PHOTOMETRIC = { minIsWhite: 0, minIsBlack: 1, rgb: 2 } as const;
const SAMPLE_FORMAT = { uint: 1, int: 2, float: 3 } as const;

/** What IFD 0 of a TIFF declares, read without decoding any pixels. */
export interface TiffHeader {
  width: number;
  height: number;
  samplesPerPixel: number;
  bitsPerSample: number;
  /** 1 unsigned integer, 2 signed integer, 3 IEEE float. */
  sampleFormat: number;
  photometric: number | undefined;
  /** EXIF/TIFF orientation 1–8, when the file carries one. */
  orientation: number | undefined;
}

/** A TIFF whose first IFD has been read (no pixels yet): what {@link decodeTiff} decodes. */
export interface TiffFile {
  header: TiffHeader;
  image: GeoTIFFImage;
}

async function parse(input: Buffer): Promise<TiffFile> {
  // Loaded on first use: geotiff's `web-worker` dependency takes over a worker thread whose workerData is undefined
  // when it is imported, so only TIFF input should load it (the preprocessing pool gives its threads workerData).
  const { fromArrayBuffer } = await import('geotiff');
  // geotiff reads from an ArrayBuffer: the input's own when it spans all of it, else a copy of its bytes.
  const bytes = ownsWholeBuffer(input)
    ? input.buffer
    : (input.buffer.slice(input.byteOffset, input.byteOffset + input.byteLength) as ArrayBuffer);
  const tiff = await fromArrayBuffer(bytes);
  const image = await tiff.getImage(0);
  const dir = image.fileDirectory;
  const number = async (name: 'PhotometricInterpretation' | 'Orientation'): Promise<number | undefined> => {
    if (!dir.hasTag(name)) return undefined;
    const v: unknown = await dir.loadValue(name);
    return typeof v === 'number' ? v : undefined;
  };
  return {
    image,
    header: {
      width: image.getWidth(),
      height: image.getHeight(),
      samplesPerPixel: image.getSamplesPerPixel(),
      bitsPerSample: image.getBitsPerSample(0),
      sampleFormat: image.getSampleFormat(0),
      photometric: await number('PhotometricInterpretation'),
      orientation: await number('Orientation'),
    },
  };
}

/**
 * The TIFF with IFD 0 read when geotiff can read it, else `undefined` (then libvips decides, and says why it
 * cannot). Read once: its header chooses the route and {@link decodeTiff} decodes from it.
 */
export async function readTiff(input: Buffer): Promise<TiffFile | undefined> {
  try {
    return await parse(input);
  } catch {
    return undefined;
  }
}

/** Whether libvips misreads or refuses these samples, so the file must take {@link decodeTiff}. */
export function needsTiffRoute(h: TiffHeader): boolean {
  return h.sampleFormat !== SAMPLE_FORMAT.uint || h.bitsPerSample > 16;
}

/** Whether {@link decodeTiff} can decode this header (greyscale or RGB of any sample type geotiff reads). */
export function tiffRouteSupports(h: TiffHeader): boolean {
  const grey = h.photometric === PHOTOMETRIC.minIsBlack || h.photometric === PHOTOMETRIC.minIsWhite;
  const rgb = h.photometric === PHOTOMETRIC.rgb && h.samplesPerPixel >= 3;
  return (
    (grey || rgb) &&
    h.samplesPerPixel >= 1 &&
    Object.values(SAMPLE_FORMAT).includes(h.sampleFormat as 1 | 2 | 3) &&
    h.bitsPerSample >= 1 &&
    h.bitsPerSample <= 64
  );
}

/** The full-scale value of one sample, for its fraction in [0, 1]. */
function fullScale(h: TiffHeader): number {
  if (h.sampleFormat === SAMPLE_FORMAT.float) return 1;
  if (h.sampleFormat === SAMPLE_FORMAT.int) return 2 ** (h.bitsPerSample - 1) - 1;
  return 2 ** h.bitsPerSample - 1;
}

/** The sharp operations that turn stored pixels upright for an EXIF/TIFF orientation (what `.rotate()` does). */
function upright(image: sharp.Sharp, orientation: number | undefined): sharp.Sharp {
  // sharp rotates before it mirrors, so 5 (transpose) = rotate 90° then mirror, 7 (transverse) = 270° then mirror.
  switch (orientation) {
    case 2:
      return image.flop();
    case 3:
      return image.rotate(180);
    case 4:
      return image.flip();
    case 5:
      return image.rotate(90).flop();
    case 6:
      return image.rotate(90);
    case 7:
      return image.rotate(270).flop();
    case 8:
      return image.rotate(270);
    default:
      return image;
  }
}

/** Upright 8-bit sRGB RGB pixels of a TIFF's first page, `[H, W, 3]`. */
export interface DecodedTiff {
  data: Buffer;
  width: number;
  height: number;
  header: TiffHeader;
}

/**
 * Decodes IFD 0 of a greyscale or RGB TIFF of any sample type (see the module comment for the convention) to
 * upright 8-bit RGB. The caller has checked the byte and pixel limits against the file's header.
 *
 * @throws ImageRejectedError `IMAGE_DECODE_FAILED` for a layout this route does not read or data that fails to decode.
 */
export async function decodeTiff(file: TiffFile): Promise<DecodedTiff> {
  let samples: ArrayLike<number>;
  try {
    if (!tiffRouteSupports(file.header)) throw new Error('unsupported layout');
    // Interleaved: one typed array [H, W, samplesPerPixel] of the file's own sample type.
    samples = await file.image.readRasters({ interleave: true });
  } catch (error) {
    throw new ImageRejectedError(
      'IMAGE_DECODE_FAILED',
      `the TIFF file could not be decoded (${error instanceof Error ? error.message : String(error)}); ` +
        'save it as 8- or 16-bit RGB and upload it again',
      { details: { format: 'tiff' }, cause: error },
    );
  }
  const { header } = file;
  const { width, height, samplesPerPixel: spp } = header;
  if (samples.length !== width * height * spp)
    throw new ImageRejectedError(
      'IMAGE_DECODE_FAILED',
      `the TIFF file holds ${samples.length} samples instead of ${width} × ${height} × ${spp}; re-export it`,
      { details: { format: 'tiff', width, height, samplesPerPixel: spp } },
    );
  const scale = 255 / fullScale(header);
  const invert = header.photometric === PHOTOMETRIC.minIsWhite;
  const grey = header.photometric !== PHOTOMETRIC.rgb;
  const out = Buffer.allocUnsafe(width * height * 3);
  const to8 = (v: number): number => {
    const x = Number.isFinite(v) ? Math.min(255, Math.max(0, v * scale)) : 0;
    return Math.round(invert ? 255 - x : x);
  };
  for (let p = 0, s = 0, o = 0; p < width * height; p++, s += spp, o += 3) {
    if (grey) {
      const g = to8(samples[s]!);
      out[o] = g;
      out[o + 1] = g;
      out[o + 2] = g;
    } else {
      out[o] = to8(samples[s]!);
      out[o + 1] = to8(samples[s + 1]!);
      out[o + 2] = to8(samples[s + 2]!);
    }
  }
  if (header.orientation === undefined || header.orientation === 1) return { data: out, width, height, header };
  const { data, info } = await upright(sharp(out, { raw: { width, height, channels: 3 } }), header.orientation)
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, header };
}
