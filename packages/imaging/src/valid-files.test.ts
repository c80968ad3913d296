import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeImage } from './decode.js';
import { isPrepareFailure, PreprocessPool } from './preprocess-pool.js';
import { needsTiffRoute, readTiff } from './tiff.js';

// Valid files as real tools write them (Pillow, ImageMagick, libtiff's tiffcp; made by
// test/fixtures/valid/make_valid.py), each showing the same 40 × 30 picture. None may be refused, and each must
// decode to that picture (or its greyscale) within the tolerance valid.json gives it.
const DIR = fileURLToPath(new URL('../test/fixtures/valid/', import.meta.url));
interface Case {
  file: string;
  tool: string;
  expect: 'rgb' | 'grey';
  maxMeanAbsDiff: number;
  note: string;
}
const index = JSON.parse(await readFile(`${DIR}valid.json`, 'utf8')) as {
  width: number;
  height: number;
  cases: Case[];
};
const bytes = (file: string) => readFile(DIR + file);

/** The reference picture, decoded by libvips from Pillow's 8-bit RGB PNG. */
const reference = new Uint8Array(
  await sharp(await bytes('ref.png'))
    .raw()
    .toBuffer(),
);
/** Its greyscale the way Pillow's `convert('L')` computes it (ITU-R 601 luma, 16-bit fixed point). */
const greyReference = reference.map((_, i) => {
  const p = i - (i % 3);
  return (reference[p]! * 19595 + reference[p + 1]! * 38470 + reference[p + 2]! * 7471 + 0x8000) >> 16;
});

describe('decodeImage on valid files from real tools', () => {
  it.each(index.cases.map((c) => [c.file, c] as const))('%s decodes to the picture', async (_, c) => {
    const decoded = await decodeImage(await bytes(c.file));
    expect([decoded.width, decoded.height]).toEqual([index.width, index.height]);
    const want = c.expect === 'grey' ? greyReference : reference;
    let sum = 0;
    for (let i = 0; i < want.length; i++) sum += Math.abs(decoded.data[i]! - want[i]!);
    expect(sum / want.length, `${c.file} (${c.tool}${c.note ? `; ${c.note}` : ''})`).toBeLessThanOrEqual(
      c.maxMeanAbsDiff + 1e-9,
    );
  });

  it('sends exactly the TIFFs libvips misreads (over 16 bits, float) down the geotiff route', async () => {
    const routed: string[] = [];
    for (const c of index.cases.filter((x) => x.file.endsWith('.tif'))) {
      const tiff = await readTiff(await bytes(c.file));
      expect(tiff, c.file).toBeDefined();
      if (needsTiffRoute(tiff!.header)) routed.push(c.file);
    }
    expect(routed.sort()).toEqual(
      [
        'grey-float32.tif',
        'multipage-float64.tif',
        'oriented6-float64.tif',
        'rgb-float32.tif',
        'rgb-float64.tif',
        'rgb-uint32.tif',
      ].sort(),
    );
  });

  it('decodes deep TIFFs on the preprocessing pool’s threads, where ingest and uploads decode them', async () => {
    const pool = new PreprocessPool({ threads: 1 });
    try {
      const files = ['rgb-float64.tif', 'rgb-uint32.tif', 'tiled.tif', 'ref.png'];
      const outcomes = await pool.prepare(await Promise.all(files.map(bytes)), [
        { size: 16, interpolation: 'bicubic' },
      ]);
      expect(outcomes.map((o) => (isPrepareFailure(o) ? o.code : 'ok'))).toEqual(files.map(() => 'ok'));
    } finally {
      await pool.close();
    }
  });

  it('keeps the pixel limit on the geotiff route, read from the header before decoding', async () => {
    await expect(decodeImage(await bytes('rgb-float64.tif'), { maxPixels: 1000 })).rejects.toMatchObject({
      code: 'IMAGE_TOO_MANY_PIXELS',
      details: { width: 40, height: 30, maxPixels: 1000 },
    });
  });

  it('still calls a damaged deep TIFF damaged, with a typed error', async () => {
    const good = await bytes('rgb-float64.tif');
    const cut = good.subarray(0, Math.floor(good.length * 0.6));
    await expect(decodeImage(cut)).rejects.toMatchObject({
      code: expect.stringMatching(/^IMAGE_(DECODE_FAILED|TRUNCATED)$/),
    });
    const scrambled = Buffer.from(good);
    for (let i = 200; i < scrambled.length; i += 7) scrambled[i] = 0xff;
    await expect(decodeImage(scrambled)).rejects.toMatchObject({ code: expect.stringMatching(/^IMAGE_/) });
  });
});
