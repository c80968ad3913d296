import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';
import { generateCatalog } from '@lookalike/synth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MainThreadPreparer,
  PreprocessPool,
  defaultPreprocessThreads,
  isPrepareFailure,
  type PixelSpec,
  type PrepareFailure,
  type PrepareOutcome,
  type PreparedImage,
} from './preprocess-pool.js';
import { decodeImage } from './decode.js';
import { preprocessBatch } from './preprocess.js';

const FIXTURES = fileURLToPath(new URL('../../../models/fixtures/images/', import.meta.url));
const SPECS: PixelSpec[] = [
  { size: 96, interpolation: 'bicubic' },
  { size: 64, interpolation: 'bilinear' },
];

function crc32(bytes: Uint8Array): number {
  let c = ~0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

/** A `width × height` 8-bit RGB PNG of seeded noise: a non-square image the catalog does not make. */
function noisePng(width: number, height: number, seed: number): Uint8Array {
  const raw = Buffer.alloc((width * 3 + 1) * height);
  let s = seed;
  for (let i = 0; i < raw.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    raw[i] = i % (width * 3 + 1) === 0 ? 0 : s >>> 24;
  }
  const chunk = (type: string, data: Buffer): Buffer => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const out = Buffer.alloc(body.length + 8);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), body.length + 4);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A copy that owns its buffer, as the ingest reader makes them (the pool moves such buffers to its thread). */
const own = (b: Uint8Array): Uint8Array => new Uint8Array(b);

let dir: string;
let files: { name: string; bytes: Uint8Array }[];
let pool: PreprocessPool;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'preprocess-pool-'));
  await generateCatalog({ count: 3, seed: 21, outDir: join(dir, 'jpeg'), format: 'jpeg', size: 160 });
  const jpegs = (await readdir(join(dir, 'jpeg/images'))).sort();
  const pngs = (await readdir(FIXTURES)).filter((f) => f.endsWith('.png')).sort();
  files = [
    ...(await Promise.all(
      jpegs.map(async (f) => ({ name: f, bytes: own(await readFile(join(dir, 'jpeg/images', f))) })),
    )),
    ...(await Promise.all(pngs.slice(0, 3).map(async (f) => ({ name: f, bytes: own(await readFile(FIXTURES + f)) })))),
    { name: 'noise-150x100.png', bytes: noisePng(150, 100, 1) },
    { name: 'noise-61x203.png', bytes: noisePng(61, 203, 2) },
  ];
  pool = new PreprocessPool({ threads: 2 });
});
afterAll(async () => {
  await pool?.close();
  await rm(dir, { recursive: true, force: true });
});

function prepared(outcome: PrepareOutcome): PreparedImage {
  if (isPrepareFailure(outcome)) throw new Error(`expected an image, got ${outcome.code}: ${outcome.reason}`);
  return outcome;
}

describe(PreprocessPool.name, () => {
  it('gives the same pixels, bit for bit, as preprocessBatch on the main thread, for JPEG and PNG files', async () => {
    expect(files.filter((f) => f.name.endsWith('.jpg'))).toHaveLength(3);
    // 8 images over 2 threads: two slices, outcomes back in order; the exact path, as the parity tests check it.
    const outcomes = await pool.prepare(
      files.map((f) => own(f.bytes)),
      SPECS,
      undefined,
      'exact',
    );
    expect(outcomes).toHaveLength(files.length);
    for (const [i, f] of files.entries()) {
      const image = await decodeImage(f.bytes);
      const got = prepared(outcomes[i]!);
      expect(got, f.name).toMatchObject({ format: image.format, width: image.width, height: image.height });
      SPECS.forEach((spec, j) => {
        const expected = preprocessBatch([image], spec).data;
        expect(got.pixels[j]!.length, f.name).toBe(3 * spec.size * spec.size);
        const same = Buffer.from(got.pixels[j]!.buffer).equals(Buffer.from(expected.buffer));
        expect(same, `${f.name} at ${spec.size} px`).toBe(true);
      });
    }
  });

  it('matches the main-thread preparer, and moves owned input buffers instead of copying them', async () => {
    const bytes = files.slice(0, 3).map((f) => own(f.bytes));
    const [pooled, inline] = await Promise.all([
      pool.prepare(bytes, SPECS),
      new MainThreadPreparer().prepare(
        files.slice(0, 3).map((f) => own(f.bytes)),
        SPECS,
      ),
    ]);
    expect(bytes.map((b) => b.byteLength)).toEqual([0, 0, 0]);
    expect(pooled.map(prepared)).toEqual(inline.map(prepared));
    // A view into a larger buffer is copied, and stays usable; so does an array listed twice.
    const view = Buffer.concat([Buffer.alloc(7), files[0]!.bytes]).subarray(7);
    const twice = own(files[1]!.bytes);
    const again = await pool.prepare([view, twice, twice], SPECS.slice(0, 1));
    expect(again.map((o) => prepared(o).width)).toEqual([0, 1, 1].map((i) => prepared(inline[i]!).width));
    expect(view.byteLength).toBe(files[0]!.bytes.byteLength);
  });

  it('reports refused and broken images with their typed codes, beside good ones', async () => {
    const png = files.find((f) => f.name.endsWith('.png'))!.bytes;
    const [empty, text, truncated, good] = await pool.prepare(
      [
        new Uint8Array(0),
        new TextEncoder().encode('this is text, not an image'),
        own(png.subarray(0, png.length / 3)),
        own(png),
      ],
      SPECS,
    );
    expect(empty).toMatchObject({ code: 'IMAGE_EMPTY' });
    expect(text).toMatchObject({ code: 'IMAGE_NOT_AN_IMAGE' });
    expect(['IMAGE_TRUNCATED', 'IMAGE_DECODE_FAILED']).toContain((truncated as PrepareFailure).code);
    expect(isPrepareFailure(good!)).toBe(false);
    const [tooBig] = await pool.prepare([own(png)], SPECS, { maxPixels: 100 });
    expect(tooBig).toMatchObject({ code: 'IMAGE_TOO_MANY_PIXELS' });
    expect((tooBig as PrepareFailure).reason).toMatch(/megapixels/);
  });

  it('refuses a thread count that is not a whole number ≥ 1, and closes cleanly', async () => {
    expect(() => new PreprocessPool({ threads: 0 })).toThrow(RangeError);
    const small = new PreprocessPool({ threads: 1 });
    expect(small.threads).toBe(1);
    expect(await small.prepare([], SPECS)).toEqual([]);
    const [one] = await small.prepare([own(files[0]!.bytes)], SPECS.slice(0, 1));
    expect(prepared(one!).pixels).toHaveLength(1);
    await small.close();
  });
});

describe(defaultPreprocessThreads.name, () => {
  it('is a quarter of the cores, at least one thread', () => {
    expect([1, 2, 4, 8, 32].map((cores) => defaultPreprocessThreads(cores))).toEqual([1, 1, 1, 2, 8]);
  });
});
