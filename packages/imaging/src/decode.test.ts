import { deflateSync } from 'node:zlib';
import { isAppError, ImageRejectedError } from '@lookalike/core';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeImage, sniffFormat } from './decode.js';

/** A w × h RGB test card: left half red, right half blue, a green top-left quadrant marker. */
async function card(w: number, h: number): Promise<Buffer> {
  const data = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 3;
      const marker = x < w / 4 && y < h / 4;
      data[o] = marker ? 0 : x < w / 2 ? 220 : 20;
      data[o + 1] = marker ? 200 : 30;
      data[o + 2] = marker ? 0 : x < w / 2 ? 20 : 220;
    }
  return sharp(data, { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toBuffer();
}

function crc32(buf: Buffer): number {
  let c = ~0;
  for (const byte of buf) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}

/** A syntactically valid PNG whose header declares `w` × `h` but whose data is tiny: a decompression bomb. */
function bombPng(w: number, h: number): Buffer {
  const chunk = (type: string, body: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(body.length);
    const tb = Buffer.concat([Buffer.from(type, 'ascii'), body]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(tb));
    return Buffer.concat([len, tb, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.alloc(1024))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

async function rejects(bytes: Uint8Array, code: string, message?: RegExp, limits?: Parameters<typeof decodeImage>[1]) {
  const error: unknown = await decodeImage(bytes, limits).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ImageRejectedError);
  expect(isAppError(error) && error.code).toBe(code);
  if (message) expect((error as Error).message).toMatch(message);
}

describe(decodeImage.name, () => {
  describe('refuses broken and hostile input with a typed error', () => {
    it('empty', () => rejects(new Uint8Array(0), 'IMAGE_EMPTY', /empty/));
    it('over the byte limit', async () =>
      rejects(await card(64, 64), 'IMAGE_TOO_MANY_BYTES', /limit is 0\.1 KiB/, { maxBytes: 100 }));
    it('text', () => rejects(Buffer.from('hello, this is not a picture\n'.repeat(20)), 'IMAGE_NOT_AN_IMAGE', /text/));
    it('random bytes', () =>
      rejects(
        Buffer.from(Array.from({ length: 4096 }, (_, i) => (((i * 7919) % 251) & 0x7 ? 0 : 255))),
        'IMAGE_NOT_AN_IMAGE',
      ));
    it('SVG, plain and with an external reference', async () => {
      await rejects(
        Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>'),
        'IMAGE_UNSUPPORTED_FORMAT',
        /SVG/,
      );
      await rejects(
        Buffer.from(
          '\ufeff  <?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">' +
            '<image xlink:href="http://169.254.169.254/latest/meta-data" width="10" height="10"/></svg>',
        ),
        'IMAGE_UNSUPPORTED_FORMAT',
      );
    });
    it('BMP and PDF', async () => {
      await rejects(Buffer.concat([Buffer.from('BM'), Buffer.alloc(100)]), 'IMAGE_UNSUPPORTED_FORMAT', /BMP/);
      await rejects(Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj'), 'IMAGE_UNSUPPORTED_FORMAT', /PDF/);
    });
    it('a decompression bomb, from its header, before decoding', () =>
      rejects(
        bombPng(100_000, 100_000),
        'IMAGE_TOO_MANY_PIXELS',
        /100000 × 100000 pixels .*limit is 40\.0 megapixels/,
      ));
    it('truncated PNG and JPEG', async () => {
      const png = await card(64, 64);
      await rejects(png.subarray(0, Math.floor(png.length / 2)), 'IMAGE_TRUNCATED');
      const jpeg = await sharp(png).jpeg().toBuffer();
      await rejects(jpeg.subarray(0, Math.floor(jpeg.length / 2)), 'IMAGE_TRUNCATED');
    });
    it('a PNG with a corrupt data chunk', async () => {
      const png = Buffer.from(await card(32, 32));
      png.fill(0x55, 60, png.length - 20);
      const error: unknown = await decodeImage(png).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ImageRejectedError);
      expect(['IMAGE_DECODE_FAILED', 'IMAGE_TRUNCATED']).toContain((error as ImageRejectedError).code);
    });
  });

  describe('normalises awkward but valid images to 8-bit sRGB RGB', () => {
    it('decodes WebP, GIF, TIFF and AVIF', async () => {
      const png = await card(40, 20);
      for (const [format, bytes] of [
        ['webp', await sharp(png).webp({ lossless: true }).toBuffer()],
        ['gif', await sharp(png).gif().toBuffer()],
        ['tiff', await sharp(png).tiff().toBuffer()],
        ['avif', await sharp(png).avif({ quality: 90 }).toBuffer()],
      ] as const) {
        const img = await decodeImage(bytes);
        expect(img).toMatchObject({ format, width: 40, height: 20 });
        expect(img.data.length).toBe(40 * 20 * 3);
        expect(img.data[0]).toBeLessThan(80); // green marker at the top left
        expect(img.data[1]).toBeGreaterThan(150);
      }
    });
    it('takes the first frame of an animated GIF', async () => {
      const frames = Buffer.concat([
        Buffer.alloc(8 * 8 * 4, Buffer.from([255, 0, 0, 255])),
        Buffer.alloc(8 * 8 * 4, Buffer.from([0, 0, 255, 255])),
      ]);
      const gif = await sharp(frames, {
        raw: { width: 8, height: 16, channels: 4, pageHeight: 8 },
      } as sharp.SharpOptions)
        .gif()
        .toBuffer();
      const img = await decodeImage(gif);
      expect({ w: img.width, h: img.height }).toEqual({ w: 8, h: 8 });
      expect(img.data[0]).toBeGreaterThan(200);
      expect(img.data[2]).toBeLessThan(50);
    });
    it('applies EXIF orientation', async () => {
      const jpeg = await sharp(await card(40, 20))
        .jpeg({ quality: 95 })
        .withMetadata({ orientation: 6 })
        .toBuffer();
      const img = await decodeImage(jpeg);
      // Orientation 6: rotate 90° clockwise to display; the top-left marker moves to the top right.
      expect(img).toMatchObject({ width: 20, height: 40, orientation: 6 });
      const at = (x: number, y: number) => Array.from(img.data.subarray((y * 20 + x) * 3, (y * 20 + x) * 3 + 3));
      expect(at(18, 1)[1]).toBeGreaterThan(150);
      expect(at(1, 1)[1]).toBeLessThan(100);
    });
    it('converts 16-bit, greyscale, palette, CMYK and alpha images', async () => {
      const png = await card(16, 16);
      const sixteen = await sharp(png).toColourspace('rgb16').png().toBuffer();
      const grey = await sharp(png).greyscale().png().toBuffer();
      const palette = await sharp(png).png({ palette: true }).toBuffer();
      const cmyk = await sharp(png).toColourspace('cmyk').jpeg().toBuffer();
      const alpha = await sharp(png).ensureAlpha(0.5).png().toBuffer();
      expect((await sharp(sixteen).metadata()).depth).toBe('ushort');
      expect((await sharp(cmyk).metadata()).space).toBe('cmyk');
      for (const bytes of [sixteen, grey, palette, cmyk, alpha]) {
        const img = await decodeImage(bytes);
        expect(img.data.length).toBe(16 * 16 * 3);
      }
      const rgb = await decodeImage(png);
      expect(Array.from((await decodeImage(sixteen)).data)).toEqual(Array.from(rgb.data));
      expect(Array.from((await decodeImage(alpha)).data)).toEqual(Array.from(rgb.data)); // alpha dropped, not blended
      const g = await decodeImage(grey);
      expect(g.data[0]).toBe(g.data[1]);
      const c = await decodeImage(cmyk);
      // The right half stays blue through CMYK (duller: saturated sRGB blue lies outside the CMYK gamut).
      const [r, gr, b] = Array.from(c.data.subarray((8 * 16 + 12) * 3, (8 * 16 + 12) * 3 + 3));
      expect(b).toBeGreaterThan(r! + 40);
      expect(b).toBeGreaterThan(gr! + 40);
    });
  });
});

describe(sniffFormat.name, () => {
  it('identifies containers from their signatures, not names', () => {
    expect(sniffFormat(Buffer.from([0xff, 0xd8, 0xff, 0xe0])).kind).toBe('jpeg');
    expect(sniffFormat(Buffer.from('GIF89a......')).kind).toBe('gif');
    expect(sniffFormat(Buffer.from('RIFF\0\0\0\0WEBPVP8 ')).kind).toBe('webp');
    expect(sniffFormat(Buffer.from('\0\0\0\x1cftypavif\0\0\0\0')).kind).toBe('avif');
    expect(sniffFormat(Buffer.from('\0\0\0\x1cftypheic\0\0\0\0'))).toEqual({ kind: 'unsupported', name: 'HEIC' });
  });
});
