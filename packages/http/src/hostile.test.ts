/**
 * Hostile input through the API (issue #8): every file an attacker or a broken client might send to
 * `POST /v1/search`, `POST /v1/images` and `POST /v1/ingest` gets a typed error (status and `error.code`) or a correct
 * result, a good image in the same sequence or batch still succeeds, nothing is fetched from private addresses,
 * and the process's memory stays bounded. Complements routes/search.test.ts and routes/ingest.test.ts, which cover
 * text, BMP, truncated PNG, empty and header-bomb uploads to search and `../` / symlinked ingest roots.
 *
 * Over 400 lines on purpose: one catalogue of hostile inputs against one server, read as a list.
 */
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { IngestFailure } from '@lookalike/ingest';
import type { Express } from 'express';
import sharp from 'sharp';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFixture, pngHeaderOnly, type Fixture } from './test-fixture.js';

let fx: Fixture;
let app: Express;
/** A server on every loopback address that counts the requests it gets: nothing may ever reach it. */
let trap: Server;
let trapPort: number;
const trapped: string[] = [];
let outside: string;

/** Peak RSS while the hostile batches run, sampled every 10 ms. */
const memory = { baseline: 0, peak: 0, timer: undefined as NodeJS.Timeout | undefined };
const sampleRss = () => (memory.peak = Math.max(memory.peak, process.memoryUsage().rss));

beforeAll(async () => {
  fx = await buildFixture({ seed: 11, count: 8 });
  app = fx.app();
  trap = createServer((req, res) => {
    trapped.push(`${req.method ?? '?'} ${req.url ?? '?'}`);
    res.end('{"location": "/etc/passwd"}\n');
  });
  await new Promise<void>((r) => trap.listen(0, '::', r));
  trapPort = (trap.address() as AddressInfo).port;
  outside = `${fx.dir}-outside`;
  await mkdir(outside, { recursive: true });
  memory.baseline = memory.peak = process.memoryUsage().rss;
  memory.timer = setInterval(sampleRss, 10);
});
afterAll(async () => {
  clearInterval(memory.timer);
  await new Promise((r) => trap?.close(r));
  await fx?.close();
  if (outside) await rm(outside, { recursive: true, force: true });
});

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const catalogPng = (i: number) => readFile(fx.file(fx.records[i]!));
/** The stored id of catalog image `i` (ids are the sha256 of the bytes). */
const catalogId = async (i: number) => sha256(await catalogPng(i));

/** Seeded pseudo-random bytes that match no image signature. */
function noise(n: number): Buffer {
  const out = Buffer.alloc(n);
  let s = 7;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  out[0] = 0x13;
  return out;
}

/** A JPEG whose SOF header is patched to declare `w` × `h`: a bomb that only decoding would discover. */
function jpegDeclaring(jpeg: Buffer, w: number, h: number): Buffer {
  const out = Buffer.from(jpeg);
  for (let i = 2; i < out.length - 9; i++) {
    if (out[i] === 0xff && out[i + 1]! >= 0xc0 && out[i + 1]! <= 0xc2) {
      out.writeUInt16BE(h, i + 5);
      out.writeUInt16BE(w, i + 7);
      return out;
    }
  }
  throw new Error('no SOF marker');
}

/** An SVG that references the trap server and the cloud metadata address. */
const svgWithExternalRefs = () =>
  Buffer.from(
    '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" ' +
      'width="64" height="64"><rect width="64" height="64" fill="#c33"/>' +
      `<image href="http://127.0.0.1:${trapPort}/svg-image.png" width="32" height="32"/>` +
      '<image xlink:href="http://169.254.169.254/latest/meta-data/iam/security-credentials/" x="32" width="32" ' +
      'height="32"/></svg>\n',
  );

/** A flat grey PNG of `w` × `h` pixels: small on disk, `w` × `h` × 3 bytes once decoded. */
const plainPng = (w: number, h: number) =>
  sharp({ create: { width: w, height: h, channels: 3, background: '#7a7a7a' } })
    .png({ compressionLevel: 1 })
    .toBuffer();

/**
 * Valid files at the edges of the limits: a 36-megapixel image just under MAX_IMAGE_PIXELS, and a GIF whose logical
 * screen declares 65535 × 65535 around an 8 × 8 frame (libvips decodes the frame).
 */
async function legalExtremes(): Promise<{ name: string; bytes: Buffer }[]> {
  const gif = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#c00' } })
    .gif()
    .toBuffer();
  gif.writeUInt16LE(65535, 6);
  gif.writeUInt16LE(65535, 8);
  return [
    { name: 'huge-but-legal.png', bytes: await plainPng(6000, 6000) },
    { name: 'screen-bomb.gif', bytes: gif },
  ];
}

interface Hostile {
  name: string;
  bytes: Buffer;
  status: number;
  codes: string[];
}

/** Files that must be refused, each with the status and code(s) it must get; names carry image extensions. */
async function hostileFiles(): Promise<Hostile[]> {
  const png = await catalogPng(0);
  const jpeg = await sharp(png).jpeg({ quality: 90 }).toBuffer();
  const damaged = ['IMAGE_TRUNCATED', 'IMAGE_DECODE_FAILED'];
  return [
    { name: 'truncated.png', bytes: png.subarray(0, png.length >> 1), status: 422, codes: damaged },
    { name: 'truncated.jpg', bytes: jpeg.subarray(0, jpeg.length >> 1), status: 422, codes: damaged },
    { name: 'zero-bytes.png', bytes: Buffer.alloc(0), status: 422, codes: ['IMAGE_EMPTY'] },
    {
      name: 'text.jpg',
      bytes: Buffer.from('GET / HTTP/1.1\r\nthis is text\n'),
      status: 415,
      codes: ['IMAGE_NOT_AN_IMAGE'],
    },
    { name: 'noise.png', bytes: noise(4096), status: 415, codes: ['IMAGE_NOT_AN_IMAGE'] },
    { name: 'bomb.png', bytes: pngHeaderOnly(50_000, 50_000), status: 413, codes: ['IMAGE_TOO_MANY_PIXELS'] },
    { name: 'bomb.jpg', bytes: jpegDeclaring(jpeg, 60_000, 60_000), status: 413, codes: ['IMAGE_TOO_MANY_PIXELS'] },
    // A real image just over MAX_IMAGE_PIXELS (40 MP): a 1 MiB file that would decode to 123 MB.
    { name: 'over-limit.png', bytes: await plainPng(6400, 6400), status: 413, codes: ['IMAGE_TOO_MANY_PIXELS'] },
    { name: 'external.png', bytes: svgWithExternalRefs(), status: 415, codes: ['IMAGE_UNSUPPORTED_FORMAT'] },
    {
      name: 'photoshop.png',
      bytes: Buffer.concat([Buffer.from('8BPS\x00\x01', 'binary'), Buffer.alloc(64)]),
      status: 415,
      codes: ['IMAGE_UNSUPPORTED_FORMAT'],
    },
    {
      name: 'icon.png',
      bytes: Buffer.concat([Buffer.from([0, 0, 1, 0, 1, 0, 16, 16]), Buffer.alloc(64)]),
      status: 415,
      codes: ['IMAGE_UNSUPPORTED_FORMAT'],
    },
    {
      name: 'bitmap.jpg',
      bytes: Buffer.concat([Buffer.from('BM', 'ascii'), Buffer.alloc(64)]),
      status: 415,
      codes: ['IMAGE_UNSUPPORTED_FORMAT'],
    },
    {
      name: 'document.jpg',
      bytes: Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n', 'binary'),
      status: 415,
      codes: ['IMAGE_UNSUPPORTED_FORMAT'],
    },
    {
      name: 'phone.jpg',
      bytes: Buffer.concat([Buffer.from('\x00\x00\x00\x18ftypheic', 'binary'), Buffer.alloc(64)]),
      status: 415,
      codes: ['IMAGE_UNSUPPORTED_FORMAT'],
    },
    {
      name: 'corrupt.tiff',
      bytes: Buffer.concat([Buffer.from([0x49, 0x49, 0x2a, 0x00, 8, 0, 0, 0]), noise(256)]),
      status: 422,
      codes: damaged,
    },
    {
      name: 'corrupt.webp',
      bytes: Buffer.concat([Buffer.from('RIFF\x00\x01\x00\x00WEBPVP8 ', 'binary'), noise(256)]),
      status: 422,
      codes: damaged,
    },
    {
      name: 'corrupt.avif',
      bytes: Buffer.concat([Buffer.from('\x00\x00\x00\x1cftypavif', 'binary'), noise(256)]),
      status: 422,
      codes: damaged,
    },
  ];
}

/**
 * Images that are unusual but valid, each with the catalog image whose content it carries. `flop` mirrors the
 * content first, for a second set with other bytes (ids are content hashes).
 */
async function oddButValid(flop = false): Promise<{ name: string; bytes: Buffer; sameAs: number }[]> {
  const source = async (i: number) =>
    flop
      ? sharp(await catalogPng(i))
          .flop()
          .png()
          .toBuffer()
      : catalogPng(i);
  const tiff16 = await sharp(await source(1))
    .toColourspace('rgb16')
    .tiff()
    .toBuffer();
  const cmyk = await sharp(await source(2))
    .toColourspace('cmyk')
    .jpeg({ quality: 95 })
    .toBuffer();
  // Two frames: catalog image 3, then catalog image 4. The first frame is the image.
  const frames = await Promise.all(
    [3, 4].map(
      async (i) =>
        (
          await sharp(await source(i))
            .ensureAlpha()
            .raw()
            .toBuffer({ resolveWithObject: true })
        ).data,
    ),
  );
  const gif = await sharp(Buffer.concat(frames), {
    raw: { width: 96, height: 192, channels: 4, pageHeight: 96 },
  } as sharp.SharpOptions)
    .gif()
    .toBuffer();
  return [
    { name: 'deep.tiff', bytes: tiff16, sameAs: 1 },
    { name: 'print.jpg', bytes: cmyk, sameAs: 2 },
    { name: 'animated.gif', bytes: gif, sameAs: 3 },
  ];
}

type Job = Record<string, unknown> & { state: string; failed: IngestFailure[]; failedReason?: string };

/** Polls `GET /v1/jobs/:id` until the run has finished. */
async function finished(jobId: string): Promise<Job> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const res = await request(app).get(`/v1/jobs/${jobId}`).expect(200);
    const body = res.body as Job;
    if (body.state === 'completed' || body.state === 'failed') return body;
    if (Date.now() > deadline) throw new Error(`job ${jobId} did not finish: ${JSON.stringify(res.body)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('hostile input through the API', () => {
  it('answers every hostile upload to search with its typed error, then still searches a good image', async () => {
    const files = await hostileFiles();
    for (const file of files) {
      const res = await request(app).post('/v1/search').attach('image', file.bytes, file.name).field('k', '3');
      expect(res.status, file.name).toBe(file.status);
      expect(file.codes, `${file.name}: ${JSON.stringify(res.body)}`).toContain(res.body.error.code);
      expect(res.body.error.message, file.name).toEqual(expect.any(String));
    }
    for (const file of await legalExtremes()) {
      const res = await request(app).post('/v1/search').attach('image', file.bytes, file.name).field('k', '1');
      expect(res.status, `${file.name}: ${JSON.stringify(res.body)}`).toBe(200);
      expect(res.body.hits).toHaveLength(1);
    }
    const good = await request(app)
      .post('/v1/search')
      .attach('image', await catalogPng(5), 'good.png')
      .expect(200);
    expect(good.body.hits[0]).toMatchObject({ id: await catalogId(5) });
    expect(good.body.hits[0].score).toBeGreaterThan(0.999);
  });

  it('searches with 16-bit TIFF, CMYK JPEG and the first frame of an animated GIF as with the original', async () => {
    for (const file of await oddButValid()) {
      const res = await request(app).post('/v1/search').attach('image', file.bytes, file.name).field('k', '3');
      expect(res.status, `${file.name}: ${JSON.stringify(res.body)}`).toBe(200);
      expect(res.body.hits[0].id, file.name).toBe(await catalogId(file.sameAs));
      expect(res.body.hits[0].score, file.name).toBeGreaterThan(0.95);
    }
  });

  it('embeds an EXIF-rotated photo exactly as the same photo physically rotated', async () => {
    // A non-square photo stored sideways: 96 × 64 pixels with EXIF orientation 6 (display rotated 90° clockwise).
    const exif = await sharp(await catalogPng(6))
      .resize(96, 64, { fit: 'fill' })
      .jpeg({ quality: 95 })
      .withMetadata({ orientation: 6 })
      .toBuffer();
    // Its stored pixels (sharp orients only when asked to), turned 90° clockwise by hand and saved without EXIF.
    const stored = await sharp(exif).raw().toBuffer({ resolveWithObject: true });
    expect(stored.info).toMatchObject({ width: 96, height: 64 });
    const raw = { raw: { width: 96, height: 64, channels: 3 as const } };
    const upright = await sharp(stored.data, raw).rotate(90).png().toBuffer();
    const sideways = await sharp(stored.data, raw).png().toBuffer();
    expect(await sharp(upright).metadata()).toMatchObject({ width: 64, height: 96 });

    const created = await request(app).post('/v1/images?wait=true').attach('image', upright, 'upright.png').expect(201);
    expect(created.body.payload).toMatchObject({ width: 64, height: 96 });
    for (const encoder of ['robust', 'clean']) {
      const res = await request(app)
        .post('/v1/search')
        .attach('image', exif, 'exif.jpg')
        .field('k', '1')
        .field('encoder', encoder)
        .expect(200);
      expect(res.body.hits[0].id, encoder).toBe(created.body.id);
      expect(res.body.hits[0].score, encoder).toBeGreaterThan(0.999);
    }
    // Ignoring the tag would give another embedding: the sideways pixels are a different image to the towers.
    const ignored = await request(app).post('/v1/search').attach('image', sideways, 'sideways.png').field('k', '1');
    expect(ignored.body.hits[0].id === created.body.id && ignored.body.hits[0].score > 0.999).toBe(false);
    const exifStored = await request(app).post('/v1/images?wait=true').attach('image', exif, 'exif.jpg').expect(201);
    expect(exifStored.body.payload).toMatchObject({ format: 'jpeg', width: 64, height: 96 });
  });

  it('answers every hostile upload to /v1/images?wait=true with its typed error, saving nothing', async () => {
    const uploads = join(fx.dir, 'uploads');
    const before = await readdir(uploads).catch(() => []);
    for (const file of await hostileFiles()) {
      const res = await request(app).post('/v1/images?wait=true').attach('image', file.bytes, file.name);
      expect(res.status, file.name).toBe(file.status);
      expect(file.codes, `${file.name}: ${JSON.stringify(res.body)}`).toContain(res.body.error.code);
    }
    expect(await readdir(uploads).catch(() => [])).toEqual(before);
    // Over MAX_UPLOAD_BYTES: refused while the body streams in.
    const small = fx.app({ MAX_UPLOAD_BYTES: '4096', FETCH_MAX_BYTES: '4096' });
    const big = await request(small)
      .post('/v1/images?wait=true')
      .attach('image', Buffer.concat([await catalogPng(0), Buffer.alloc(8192)]), 'big.png')
      .expect(413);
    expect(big.body.error.code).toBe('PAYLOAD_TOO_LARGE');
    for (const file of await oddButValid()) {
      const res = await request(app).post('/v1/images?wait=true').attach('image', file.bytes, file.name);
      expect(res.status, `${file.name}: ${JSON.stringify(res.body)}`).toBe(201);
      expect(res.body.id).toBe(sha256(file.bytes));
      expect(res.body.payload).toMatchObject({ width: 96, height: 96 });
    }
  });

  it('refuses SVG with external references without fetching them, even where SVG is allowed', async () => {
    const svg = svgWithExternalRefs();
    for (const path of ['/v1/search', '/v1/images?wait=true']) {
      const res = await request(app).post(path).attach('image', svg, 'vector.svg').expect(415);
      expect(res.body.error.code).toBe('IMAGE_UNSUPPORTED_FORMAT');
    }
    // With ALLOW_SVG (in the app and the ingest alike) it is rasterised and stored; librsvg loads no http(s)
    // resources, so the trap still sees nothing.
    const allowing = await buildFixture({ seed: 12, count: 2, env: { ALLOW_SVG: 'true' } });
    try {
      const target = allowing.app();
      const found = await request(target).post('/v1/search').attach('image', svg, 'vector.svg').field('k', '1');
      expect(found.status, JSON.stringify(found.body)).toBe(200);
      const stored = await request(target).post('/v1/images?wait=true').attach('image', svg, 'vector.svg');
      expect(stored.status, JSON.stringify(stored.body)).toBe(201);
      expect(stored.body.payload).toMatchObject({ format: 'svg', width: 64, height: 64 });
    } finally {
      await allowing.close();
    }
    expect(trapped).toEqual([]);
  });

  it('refuses malformed multipart and JSON bodies with typed 4xx errors', async () => {
    const png = await catalogPng(0);
    const cases: { body: Buffer | string; type: string; path?: string; status: number; code: string }[] = [
      { body: 'whatever', type: 'multipart/form-data', status: 400, code: 'VALIDATION_FAILED' },
      {
        body: Buffer.concat([
          Buffer.from('--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'),
          png.subarray(0, 100),
        ]),
        type: 'multipart/form-data; boundary=b',
        status: 400,
        code: 'VALIDATION_FAILED',
      },
      { body: '{"text": "gear", "k": ', type: 'application/json', status: 400, code: 'VALIDATION_FAILED' },
      {
        body: '['.repeat(60_000) + ']'.repeat(60_000),
        type: 'application/json',
        status: 400,
        code: 'VALIDATION_FAILED',
      },
      { body: `{"text": "${'x'.repeat(300_000)}"}`, type: 'application/json', status: 413, code: 'PAYLOAD_TOO_LARGE' },
      {
        body: '{"source": {"kind": "directory", "root": "catalog"}, "__proto__": {"isAdmin": true}}',
        type: 'application/json',
        path: '/v1/ingest',
        status: 400,
        code: 'VALIDATION_FAILED',
      },
      { body: '{"source": ', type: 'application/json', path: '/v1/ingest', status: 400, code: 'VALIDATION_FAILED' },
    ];
    for (const c of cases) {
      const res = await request(app)
        .post(c.path ?? '/v1/search')
        .set('content-type', c.type)
        .send(c.body);
      expect(res.status, `${c.type} ${String(c.body).slice(0, 40)}: ${JSON.stringify(res.body)}`).toBe(c.status);
      expect(res.body.error.code).toBe(c.code);
    }
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
  });

  it('treats hostile filter values as literal values', async () => {
    const count = fx.records.length;
    const part = fx.records[0]!.labels.part;
    const withPart = fx.records.filter((r) => r.labels.part === part).length;
    const search = (filter: unknown) => request(app).post('/v1/search').send({ text: 'a part', k: 100, filter });
    for (const value of [
      "'",
      "''",
      "' OR 1=1 --",
      "\\' OR 1=1 --",
      `${part}' OR '1'='1`,
      "x'); DROP TABLE lookalike; --",
      '%',
      '_',
      '*',
      'NULL',
      'Zahnrad – ü ñ 日本語 🙂 \u202e',
      '\u0000',
      '\\',
      'a'.repeat(1024),
    ]) {
      const none = await search({ must: [{ field: 'labels.part', match: value }] });
      expect(none.status, `${JSON.stringify(value)}: ${JSON.stringify(none.body)}`).toBe(200);
      expect(none.body.hits, value).toEqual([]);
      const either = await search({ must: [{ field: 'labels.part', any: [value, part] }] });
      expect(either.status, value).toBe(200);
      expect(either.body.hits.length, value).toBe(withPart);
      const parts = (either.body.hits as { payload: { labels: { part: string } } }[]).map((h) => h.payload.labels.part);
      expect(new Set(parts), value).toEqual(new Set([part]));
      const not = await search({ mustNot: [{ field: 'labels.part', match: value }] });
      expect(not.status, value).toBe(200);
      expect(not.body.hits.length, value).toBeGreaterThanOrEqual(count);
      // The multipart form carries the filter as a JSON string.
      const form = await request(app)
        .post('/v1/search')
        .attach('image', await catalogPng(0), 'q.png')
        .field('filter', JSON.stringify({ must: [{ field: 'labels.part', match: value }] }))
        .expect(200);
      expect(form.body.hits).toEqual([]);
    }
    const tooLong = await search({ must: [{ field: 'labels.part', match: 'a'.repeat(1025) }] }).expect(400);
    expect(tooLong.body.error.code).toBe('VALIDATION_FAILED');
    // A value of the right type but out of any stored range is a literal too.
    const mustNot = await search({ mustNot: [{ field: 'width', match: 2 ** 53 }] }).expect(200);
    expect(mustNot.body.hits.length).toBeGreaterThanOrEqual(count);
  });

  // Each value is checked against the field's type in the embedded store's filter compiler (it used to reach LanceDB
  // and come back as a 503 with LanceDB's internals in the message).
  it('answers filter values of the wrong type for their field with 200 or a typed 400, never a 5xx', async () => {
    for (const filter of [
      { must: [{ field: 'width', match: '96' }] },
      { must: [{ field: 'width', match: true }] },
      { must: [{ field: 'width', any: [96, 'x'] }] },
      { must: [{ field: 'width', match: 96.5 }] },
      { must: [{ field: 'width', range: { gte: 0.5 } }] },
      { must: [{ field: 'width', range: { gte: 1e308 } }] },
      { must: [{ field: 'labels.part', match: 42 }] },
      { must: [{ field: 'labels.part', match: false }] },
      { must: [{ field: 'labels.part', range: { gte: 1 } }] },
    ]) {
      const res = await request(app).post('/v1/search').send({ text: 'a part', k: 5, filter });
      expect([200, 400], `${JSON.stringify(filter)}: ${JSON.stringify(res.body)}`).toContain(res.status);
      if (res.status === 400) expect(res.body.error.code).toBe('VALIDATION_FAILED');
    }
  });

  it('ingests every good image of a folder full of hostile files and lists each bad one with its reason', async () => {
    const folder = join(fx.dir, 'hostile');
    await mkdir(folder, { recursive: true });
    const hostile = await hostileFiles();
    for (const f of hostile) await writeFile(join(folder, f.name), f.bytes);
    const good = [
      ...(await oddButValid(true)).map((f) => ({ name: `good-${f.name}`, bytes: f.bytes })),
      ...(await legalExtremes()).map((f) => ({ name: `good-${f.name}`, bytes: f.bytes })),
      ...(await Promise.all(
        [1, 2].map(async (i) => ({
          name: `good-${i}.png`,
          bytes: await sharp(await catalogPng(i))
            .flop()
            .png()
            .toBuffer(),
        })),
      )),
    ];
    for (const f of good) await writeFile(join(folder, f.name), f.bytes);
    // A link to an image outside INGEST_ROOTS, beside the others: it must not be stored.
    await writeFile(
      join(outside, 'secret.png'),
      await sharp(await catalogPng(7))
        .negate()
        .png()
        .toBuffer(),
    );
    await symlink(join(outside, 'secret.png'), join(folder, 'escape.png'));

    const res = await request(app)
      .post('/v1/ingest')
      .send({ source: { kind: 'directory', root: 'hostile' }, batchSize: 8 })
      .expect(202);
    const run = await finished(res.body.jobId);
    expect(run).toMatchObject({ state: 'completed', batchesFailed: 0, done: good.length });
    for (const f of good)
      await request(app)
        .get(`/v1/images/${sha256(f.bytes)}`)
        .expect(200);
    const failures = new Map(run.failed.map((f) => [f.location.split('/').pop()!, f]));
    for (const f of hostile) {
      const failure = failures.get(f.name);
      expect(failure, f.name).toBeDefined();
      expect(f.codes, `${f.name}: ${JSON.stringify(failure)}`).toContain(failure!.code);
      expect(failure!.reason.length, f.name).toBeGreaterThan(10);
    }
    // The listing does not follow symbolic links: the link out is neither read nor reported.
    expect(failures.has('escape.png')).toBe(false);
    expect(run.failedTotal).toBe(hostile.length);
    await request(app)
      .get(`/v1/images/${sha256(await readFile(join(outside, 'secret.png')))}`)
      .expect(404);
  });

  it('refuses paths out of INGEST_ROOTS in manifests and sources, and stores the good items beside them', async () => {
    const good = await sharp(await catalogPng(3))
      .flip()
      .png()
      .toBuffer();
    await writeFile(join(fx.dir, 'listed.png'), good);
    await symlink(join(outside, 'secret.png'), join(fx.dir, 'link-out.png')).catch(() => undefined);
    const manifest = join(fx.dir, 'traversal.jsonl');
    const locations = [
      '../../../../../../etc/passwd',
      '/etc/hostname',
      `${outside}/secret.png`,
      'link-out.png',
      '..\\..\\..\\etc\\passwd',
      'catalog/../../../etc/passwd',
    ];
    await writeFile(
      manifest,
      [...locations.map((location) => JSON.stringify({ location })), JSON.stringify({ location: 'listed.png' })].join(
        '\n',
      ) + '\n',
    );
    const res = await request(app)
      .post('/v1/ingest')
      .send({ source: { kind: 'manifest', location: 'traversal.jsonl' } })
      .expect(202);
    const run = await finished(res.body.jobId);
    expect(run).toMatchObject({ state: 'completed', done: 1, failedTotal: locations.length });
    for (const f of run.failed) {
      expect(f.code, JSON.stringify(f)).toBe('VALIDATION_FAILED');
      expect(f.reason).toMatch(/outside the folders ingest may read|does not exist/);
    }
    await request(app)
      .get(`/v1/images/${sha256(good)}`)
      .expect(200);

    for (const root of ['catalog\u0000/../../..', '%2e%2e/%2e%2e/etc', '..\\..\\etc', `${outside}`, 'link-out.png']) {
      const refused = await request(app)
        .post('/v1/ingest')
        .send({ source: { kind: 'directory', root } });
      expect(refused.status, `${JSON.stringify(root)}: ${JSON.stringify(refused.body)}`).toBe(400);
      expect(refused.body.error.code).toBe('VALIDATION_FAILED');
    }
  });

  it('refuses manifests and images at private, loopback and link-local URLs and fetches nothing', async () => {
    const urls = [
      `http://127.0.0.1:${trapPort}/manifest.jsonl`,
      `http://localhost:${trapPort}/manifest.jsonl`,
      `http://[::1]:${trapPort}/manifest.jsonl`,
      `http://[::ffff:127.0.0.1]:${trapPort}/manifest.jsonl`,
      `http://2130706433:${trapPort}/manifest.jsonl`,
      `http://0x7f.1:${trapPort}/manifest.jsonl`,
      `http://0.0.0.0:${trapPort}/manifest.jsonl`,
      'http://169.254.169.254/latest/meta-data/manifest.jsonl',
      'http://10.0.0.1/manifest.jsonl',
    ];
    for (const location of urls) {
      const res = await request(app)
        .post('/v1/ingest')
        .send({ source: { kind: 'manifest', location } })
        .expect(202);
      const run = await finished(res.body.jobId);
      expect(run.state, location).toBe('failed');
      expect(run.failedReason, location).toMatch(/refused/);
    }
    // The same addresses as images in a manifest: each is listed with its reason, the good image is stored.
    const good = await sharp(await catalogPng(4))
      .flip()
      .png()
      .toBuffer();
    await writeFile(join(fx.dir, 'beside-urls.png'), good);
    const manifest = join(fx.dir, 'urls.jsonl');
    const images = urls.map((u) => u.replace('manifest.jsonl', 'image.png'));
    await writeFile(
      manifest,
      [...images, 'beside-urls.png'].map((location) => JSON.stringify({ location })).join('\n') + '\n',
    );
    const res = await request(app)
      .post('/v1/ingest')
      .send({ source: { kind: 'manifest', location: 'urls.jsonl' } })
      .expect(202);
    const run = await finished(res.body.jobId);
    expect(run).toMatchObject({ state: 'completed', done: 1, failedTotal: images.length });
    expect(run.failed.map((f) => f.location).sort()).toEqual([...images].sort());
    for (const f of run.failed) {
      expect(f.code, f.location).toBe('VALIDATION_FAILED');
      expect(f.reason, f.location).toMatch(/refused/);
    }
    await request(app)
      .get(`/v1/images/${sha256(good)}`)
      .expect(200);
    expect(trapped).toEqual([]);
  });

  it('keeps the process within a bounded memory through the hostile batch', () => {
    sampleRss();
    clearInterval(memory.timer);
    const grewMiB = (memory.peak - memory.baseline) / 2 ** 20;
    console.log(
      `Hostile batch: RSS ${(memory.baseline / 2 ** 20).toFixed(0)} MiB at the start, peak ` +
        `${(memory.peak / 2 ** 20).toFixed(0)} MiB (+${grewMiB.toFixed(0)} MiB).`,
    );
    expect(grewMiB).toBeLessThan(500);
  });
});
