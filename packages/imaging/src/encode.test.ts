import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeImage } from './decode.js';
import { encodePng, thumbnailJpeg } from './encode.js';

/** Interleaved RGB of a w × h gradient: red grows to the right, green downwards, blue fixed. */
function gradient(w: number, h: number): Uint8Array {
  const rgb = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      rgb.set([Math.round((255 * x) / (w - 1)), Math.round((255 * y) / (h - 1)), 90], (y * w + x) * 3);
  return rgb;
}

describe(encodePng.name, () => {
  it('round-trips 8-bit RGB exactly and refuses a buffer of the wrong length', async () => {
    const rgb = gradient(7, 5);
    const png = await encodePng(rgb, 7, 5);
    expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
    const back = await decodeImage(png);
    expect([back.width, back.height, back.format]).toEqual([7, 5, 'png']);
    expect(Buffer.from(back.data).equals(Buffer.from(rgb))).toBe(true);
    expect(() => encodePng(rgb, 7, 4)).toThrow(RangeError);
  });
});

describe(thumbnailJpeg.name, () => {
  it('fits the longer side, keeps the aspect, never enlarges, and flattens transparency onto white', async () => {
    const big = await encodePng(gradient(300, 120), 300, 120);
    const thumb = await decodeImage(await thumbnailJpeg(big, { side: 64 }));
    expect([thumb.format, thumb.width, thumb.height]).toEqual(['jpeg', 64, 26]);

    const small = await encodePng(gradient(20, 10), 20, 10);
    const same = await decodeImage(await thumbnailJpeg(small, { side: 64 }));
    expect([same.width, same.height]).toEqual([20, 10]);

    const clear = await sharp({
      create: { width: 8, height: 8, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } },
    })
      .png()
      .toBuffer();
    const flat = await decodeImage(await thumbnailJpeg(clear, { side: 8 }));
    expect(Math.min(...flat.data)).toBeGreaterThan(245);
  });

  it('refuses bytes that are not an image, and an image over the pixel limit', async () => {
    await expect(thumbnailJpeg(new Uint8Array([1, 2, 3, 4]), { side: 64 })).rejects.toThrow();
    const big = await encodePng(gradient(300, 120), 300, 120);
    await expect(thumbnailJpeg(big, { side: 64, maxPixels: 1000 })).rejects.toThrow(/pixel limit/i);
  });
});
