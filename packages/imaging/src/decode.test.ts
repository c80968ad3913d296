import { ImageRejectedError, type ImageRejectionCode } from '@lookalike/core';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeImage, sniffFormat, type DecodeLimits, type DecodedImage } from './decode.js';

const GREEN = [0, 200, 0];
const RED = [220, 30, 20];
const BLUE = [20, 30, 220];

/** A w × h RGB test card: left half red, right half blue, a green marker in the top-left quarter. */
function cardPixels(w: number, h: number): Buffer {
  const data = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const colour = x < w / 4 && y < h / 4 ? GREEN : x < w / 2 ? RED : BLUE;
      data.set(colour, (y * w + x) * 3);
    }
  return data;
}

async function card(w: number, h: number): Promise<Buffer> {
  return sharp(cardPixels(w, h), { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toBuffer();
}

/** The RGB triple at (x, y). */
function at(img: DecodedImage, x: number, y: number): number[] {
  const o = (y * img.width + x) * 3;
  return Array.from(img.data.subarray(o, o + 3));
}

/** Max |Δ| between a pixel and a colour. */
const dist = (p: number[], c: number[]) => Math.max(...p.map((v, i) => Math.abs(v - (c[i] as number))));

function crc32(buf: Buffer): number {
  let c = ~0;
  for (const byte of buf) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}

/**
 * A decompression bomb: a real 8 × 8 PNG whose IHDR is patched to declare `w` × `h` (CRC fixed up), so the header
 * is valid and only decoding would discover the lie.
 */
async function bombPng(w: number, h: number): Promise<Buffer> {
  const png = Buffer.from(await card(8, 8));
  // Signature (8) + length (4) + "IHDR" (4): width and height follow, then the CRC over type + 13 data bytes.
  png.writeUInt32BE(w, 16);
  png.writeUInt32BE(h, 20);
  png.writeUInt32BE(crc32(png.subarray(12, 29)), 29);
  return png;
}

/** Seeded pseudo-random bytes (LCG), so the "random bytes" case is the same on every run. */
function randomBytes(n: number, seed = 42): Buffer {
  const out = Buffer.alloc(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

async function rejection(bytes: Uint8Array, limits?: DecodeLimits): Promise<ImageRejectedError> {
  const error: unknown = await decodeImage(bytes, limits).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ImageRejectedError);
  return error as ImageRejectedError;
}

async function rejects(bytes: Uint8Array, code: ImageRejectionCode, message?: RegExp, limits?: DecodeLimits) {
  const error = await rejection(bytes, limits);
  expect(error.code).toBe(code);
  if (message) expect(error.message).toMatch(message);
  return error;
}

describe(decodeImage.name, () => {
  describe('refuses broken and hostile input with a typed error', () => {
    it('refuses an empty file', () => rejects(new Uint8Array(0), 'IMAGE_EMPTY', /empty \(0 bytes\)/));

    it('refuses a file over the byte limit before looking at it', async () => {
      const error = await rejects(await card(64, 64), 'IMAGE_TOO_MANY_BYTES', /the limit is 0\.1 KiB/, {
        maxBytes: 100,
      });
      expect(error.details).toMatchObject({ maxBytes: 100 });
      // The size check comes before the signature: even text over the limit is "too many bytes".
      await rejects(Buffer.alloc(200, 0x41), 'IMAGE_TOO_MANY_BYTES', undefined, { maxBytes: 100 });
    });

    it('refuses text as not an image', () =>
      rejects(Buffer.from('hello, this is not a picture\n'.repeat(20)), 'IMAGE_NOT_AN_IMAGE', /text/));

    it('refuses random bytes as not an image', () =>
      rejects(randomBytes(4096), 'IMAGE_NOT_AN_IMAGE', /match no known image format/));

    it('refuses SVG, plain and with an external reference, without fetching anything', async () => {
      await rejects(
        Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect/></svg>'),
        'IMAGE_UNSUPPORTED_FORMAT',
        /SVG is refused/,
      );
      await rejects(
        Buffer.from(
          '\ufeff  <?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" ' +
            'xmlns:xlink="http://www.w3.org/1999/xlink" width="10" height="10">' +
            '<image xlink:href="http://169.254.169.254/latest/meta-data" href="http://example.com/x.png" ' +
            'width="10" height="10"/></svg>',
        ),
        'IMAGE_UNSUPPORTED_FORMAT',
        /SVG is refused/,
      );
    });

    it('rasterises SVG only when allowSvg is set', async () => {
      const svg = Buffer.from(
        '<svg xmlns="http://www.w3.org/2000/svg" width="12" height="6"><rect width="12" height="6" fill="#f00"/></svg>',
      );
      const img = await decodeImage(svg, { allowSvg: true });
      expect(img).toMatchObject({ format: 'svg', width: 12, height: 6 });
      expect(at(img, 5, 3)).toEqual([255, 0, 0]);
    });

    it('rasterises an SVG that begins with a comment or a DOCTYPE with an internal subset', async () => {
      const body =
        '<svg xmlns="http://www.w3.org/2000/svg" width="8" height="4"><rect width="8" height="4" fill="#00f"/></svg>';
      const doctype = `<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "svg11.dtd" [\n<!-- ${'pad '.repeat(200)} -->\n]>\n`;
      for (const svg of [`<!-- exported -->\n${body}`, `<?xml version="1.0"?>\n${doctype}${body}`]) {
        const img = await decodeImage(Buffer.from(svg), { allowSvg: true });
        expect(img).toMatchObject({ format: 'svg', width: 8, height: 4 });
        expect(at(img, 4, 2)).toEqual([0, 0, 255]);
      }
    });

    it('refuses known but unsupported formats by name: BMP, PDF, HEIC', async () => {
      // A 1 × 1 24-bit BMP: 14-byte file header, 40-byte info header, one padded pixel row.
      const bmp = Buffer.alloc(58);
      bmp.write('BM', 0, 'latin1');
      bmp.writeUInt32LE(58, 2);
      bmp.writeUInt32LE(54, 10);
      bmp.writeUInt32LE(40, 14);
      bmp.writeInt32LE(1, 18);
      bmp.writeInt32LE(1, 22);
      bmp.writeUInt16LE(1, 26);
      bmp.writeUInt16LE(24, 28);
      await rejects(bmp, 'IMAGE_UNSUPPORTED_FORMAT', /BMP files are not supported/);
      await rejects(Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj'), 'IMAGE_UNSUPPORTED_FORMAT', /PDF/);
      await rejects(Buffer.from('\0\0\0\x18ftypheic\0\0\0\0mif1heic'), 'IMAGE_UNSUPPORTED_FORMAT', /HEIC/);
    });

    it('refuses a decompression bomb from its header, before decoding', async () => {
      const bomb = await bombPng(100_000, 100_000);
      expect(bomb.length).toBeLessThan(1000);
      const before = process.memoryUsage().rss;
      const error = await rejects(
        bomb,
        'IMAGE_TOO_MANY_PIXELS',
        /100000 × 100000 pixels \(10000 megapixels\); the limit is 40 megapixels/,
      );
      expect(error.details).toMatchObject({ width: 100_000, height: 100_000, maxPixels: 40e6 });
      // 30 GB of RGB would have been needed; nothing near that was allocated.
      expect(process.memoryUsage().rss - before).toBeLessThan(200 * 1024 * 1024);
    });

    it('applies a custom pixel limit to the first frame', async () => {
      await rejects(
        await card(100, 50),
        'IMAGE_TOO_MANY_PIXELS',
        /100 × 50 pixels \(0\.005 megapixels\); the limit is 0\.004 megapixels/,
        { maxPixels: 4000 },
      );
      await expect(decodeImage(await card(100, 50), { maxPixels: 5000 })).resolves.toMatchObject({ width: 100 });
    });

    it('refuses truncated PNG and JPEG files as truncated', async () => {
      const png = await card(64, 64);
      await rejects(png.subarray(0, Math.floor(png.length / 2)), 'IMAGE_TRUNCATED', /PNG file is truncated/);
      const jpeg = await sharp(png).jpeg().toBuffer();
      await rejects(jpeg.subarray(0, Math.floor(jpeg.length / 2)), 'IMAGE_TRUNCATED', /JPEG file is truncated/);
    });

    it('refuses a PNG with a corrupt data chunk and keeps the library message out of the API shape', async () => {
      const png = Buffer.from(await card(32, 32));
      png.fill(0x55, 60, png.length - 20);
      const error = await rejection(png);
      expect(['IMAGE_DECODE_FAILED', 'IMAGE_TRUNCATED']).toContain(error.code);
      expect(typeof error.details?.reason).toBe('string');
      expect(error.cause).toBeInstanceOf(Error);
      const json = JSON.stringify(error);
      expect(json).not.toMatch(/\n\s+at /);
      expect(json).not.toContain('"cause"');
    });

    it('keeps working after a run of hostile inputs', async () => {
      const inputs = [new Uint8Array(0), randomBytes(100), await bombPng(70_000, 70_000), Buffer.from('<svg/>')];
      for (const bytes of inputs) await rejection(bytes);
      expect((await decodeImage(await card(16, 16))).width).toBe(16);
    });
  });

  describe('normalises awkward but valid images to 8-bit sRGB RGB', () => {
    it('decodes PNG with its size, format and exact pixels', async () => {
      const img = await decodeImage(await card(40, 20));
      expect(img).toMatchObject({ format: 'png', width: 40, height: 20, originalWidth: 40, originalHeight: 20 });
      expect(img.orientation).toBeUndefined();
      expect(Buffer.from(img.data).equals(cardPixels(40, 20))).toBe(true);
    });

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
        expect(dist(at(img, 2, 2), GREEN)).toBeLessThan(30);
        expect(dist(at(img, 15, 15), RED)).toBeLessThan(30);
        expect(dist(at(img, 35, 15), BLUE)).toBeLessThan(30);
      }
    });

    it('takes the first frame of an animated GIF', async () => {
      const frame = (rgba: number[]) => Buffer.alloc(8 * 8 * 4, Buffer.from(rgba));
      const gif = await sharp(Buffer.concat([frame([255, 0, 0, 255]), frame([0, 0, 255, 255])]), {
        raw: { width: 8, height: 16, channels: 4, pageHeight: 8 },
      } as sharp.SharpOptions)
        .gif()
        .toBuffer();
      expect((await sharp(gif).metadata()).pages).toBe(2);
      const img = await decodeImage(gif);
      expect(img).toMatchObject({ format: 'gif', width: 8, height: 8 });
      expect(at(img, 4, 4)).toEqual([255, 0, 0]);
    });

    it('applies EXIF orientation: 6 rotates 90° clockwise and swaps the dimensions', async () => {
      const jpeg = await sharp(await card(40, 20))
        .jpeg({ quality: 95 })
        .withMetadata({ orientation: 6 })
        .toBuffer();
      const img = await decodeImage(jpeg);
      expect(img).toMatchObject({ width: 20, height: 40, originalWidth: 40, originalHeight: 20, orientation: 6 });
      // Stored (x, y) lands at (H - 1 - y, x): the green top-left marker moves to the top right, the red left
      // half to the top, the blue right half to the bottom.
      expect(dist(at(img, 18, 2), GREEN)).toBeLessThan(30);
      expect(dist(at(img, 2, 2), RED)).toBeLessThan(30);
      expect(dist(at(img, 10, 35), BLUE)).toBeLessThan(30);
    });

    it('converts 16-bit PNG to the same 8-bit pixels', async () => {
      const png = await card(16, 16);
      const sixteen = await sharp(png).toColourspace('rgb16').png().toBuffer();
      expect((await sharp(sixteen).metadata()).depth).toBe('ushort');
      expect(Buffer.from((await decodeImage(sixteen)).data).equals(cardPixels(16, 16))).toBe(true);
    });

    it('expands greyscale and palette PNGs to RGB', async () => {
      const png = await card(16, 16);
      const grey = await decodeImage(await sharp(png).greyscale().png().toBuffer());
      expect(grey.data.length).toBe(16 * 16 * 3);
      const [r, g, b] = at(grey, 12, 12);
      expect(r).toBe(g);
      expect(g).toBe(b);
      const paletteBytes = await sharp(png).png({ palette: true }).toBuffer();
      expect((await sharp(paletteBytes).metadata()).isPalette).toBe(true);
      const palette = await decodeImage(paletteBytes);
      expect(dist(at(palette, 12, 12), BLUE)).toBeLessThan(8);
      expect(dist(at(palette, 1, 1), GREEN)).toBeLessThan(8);
    });

    it('converts CMYK JPEG to sRGB', async () => {
      const cmyk = await sharp(await card(16, 16))
        .toColourspace('cmyk')
        .jpeg()
        .toBuffer();
      expect((await sharp(cmyk).metadata()).space).toBe('cmyk');
      const img = await decodeImage(cmyk);
      expect(img.data.length).toBe(16 * 16 * 3);
      // Saturated sRGB primaries lie outside the CMYK gamut, so colours come back duller but the same hue.
      const [r, g, b] = at(img, 12, 8) as [number, number, number];
      expect(b).toBeGreaterThan(r + 40);
      expect(b).toBeGreaterThan(g + 40);
      const [r2, g2, b2] = at(img, 5, 12) as [number, number, number];
      expect(r2).toBeGreaterThan(g2 + 40);
      expect(r2).toBeGreaterThan(b2 + 40);
    });

    it('drops alpha as PIL convert("RGB") does, keeping the RGB under transparent pixels', async () => {
      const rgba = Buffer.alloc(4 * 4 * 4);
      for (let i = 0; i < 16; i++) rgba.set([200, 100, 50, i * 17], i * 4); // alpha 0 … 255
      const png = await sharp(rgba, { raw: { width: 4, height: 4, channels: 4 } })
        .png()
        .toBuffer();
      const img = await decodeImage(png);
      for (let i = 0; i < 16; i++) expect(at(img, i % 4, Math.floor(i / 4))).toEqual([200, 100, 50]);
    });
  });
});

describe(sniffFormat.name, () => {
  it('identifies containers from their signatures, not names', () => {
    expect(sniffFormat(Buffer.from([0xff, 0xd8, 0xff, 0xe0])).kind).toBe('jpeg');
    expect(sniffFormat(Buffer.from('\x89PNG\r\n\x1a\n', 'latin1')).kind).toBe('png');
    expect(sniffFormat(Buffer.from('GIF89a......')).kind).toBe('gif');
    expect(sniffFormat(Buffer.from('RIFF\0\0\0\0WEBPVP8 ')).kind).toBe('webp');
    expect(sniffFormat(Buffer.from('II*\0\x08\0\0\0')).kind).toBe('tiff');
    expect(sniffFormat(Buffer.from('MM\0*\0\0\0\x08')).kind).toBe('tiff');
    expect(sniffFormat(Buffer.from('\0\0\0\x1cftypavif\0\0\0\0')).kind).toBe('avif');
    expect(sniffFormat(Buffer.from('\0\0\0\x1cftypheic\0\0\0\0'))).toEqual({ kind: 'unsupported', name: 'HEIC' });
    expect(sniffFormat(Buffer.from('  \n<svg>')).kind).toBe('svg');
    expect(sniffFormat(Buffer.from('{"not": "an image"}')).kind).toBe('text');
  });

  it('finds SVG after a prolog of comments, processing instructions and a long DOCTYPE, and nothing else', () => {
    const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>';
    const subset = `[\n${'  <!ENTITY ns_extend "http://ns.adobe.com/Extensibility/1.0/">\n'.repeat(20)}]`;
    for (const prolog of [
      '<!-- Generator: Adobe Illustrator 27.0.0, SVG Export Plug-In -->\n',
      '<?xml version="1.0"?>\n<?xml-stylesheet href="style.css"?>\n',
      `<?xml version="1.0"?>\n<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "svg11.dtd" ${subset}>\n`,
      `\ufeff<!-- a -->  <?pi x?>\n<!-- ${'long '.repeat(300)} -->\n<!DOCTYPE svg>\n`,
    ])
      expect(sniffFormat(Buffer.from(prolog + svg)).kind, prolog.slice(0, 40)).toBe('svg');
    expect(sniffFormat(Buffer.from('<svg:svg xmlns:svg="http://www.w3.org/2000/svg"/>')).kind).toBe('svg');
    // The first element decides: markup that only contains an <svg> somewhere is not an SVG image.
    expect(sniffFormat(Buffer.from('<!-- x --><html><body><svg></svg></body></html>')).kind).toBe('text');
    expect(sniffFormat(Buffer.from('<?xml version="1.0"?><feed><svg/></feed>')).kind).toBe('text');
    expect(sniffFormat(Buffer.from('<svgfoo/>')).kind).toBe('text');
    expect(sniffFormat(Buffer.from(`<!-- ${'x'.repeat(100_000)}`)).kind).toBe('text');
  });
});
