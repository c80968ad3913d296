import { readFile } from 'node:fs/promises';
import type { SearchHit } from '@lookalike/core';
import type { Express } from 'express';
import sharp from 'sharp';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFixture, pngHeaderOnly, type Fixture } from '../test-fixture.js';
import { searchRoutes } from './search.js';

let fx: Fixture;
let app: Express;
let ids: string[];

beforeAll(async () => {
  fx = await buildFixture({ seed: 5 });
  app = fx.app();
  ids = (await fx.services.store.scroll({ limit: 100 })).points.map((p) => p.id);
});
afterAll(async () => {
  await fx?.close();
});

const imageOf = (i: number) => readFile(fx.file(fx.records[i]!));
const hitsOf = (body: unknown) => (body as { hits: SearchHit[] }).hits;

describe(searchRoutes.name, () => {
  it('searches by uploaded image with either tower and finds the image itself first', async () => {
    for (const encoder of ['robust', 'clean']) {
      const res = await request(app)
        .post('/v1/search')
        .attach('image', await imageOf(2), 'query.png')
        .field('k', '5')
        .field('encoder', encoder)
        .expect(200);
      expect(res.body.encoder).toBe(encoder);
      expect(res.body.k).toBe(5);
      expect(res.body.hits).toHaveLength(5);
      expect(res.body.tookMs).toBeGreaterThan(0);
      const [top] = res.body.hits;
      expect(top.payload.caption).toBe(fx.records[2]!.caption);
      expect(top.score).toBeGreaterThan(0.999);
      expect(top.thumbnailUrl).toBe(`/v1/images/${top.id}/thumbnail`);
    }
  });

  it('searches by id and by text with a filter, as JSON', async () => {
    const part = fx.records[0]!.labels.part;
    const filter = { must: [{ field: 'labels.part', match: part }] };
    const expected = fx.records.filter((r) => r.labels.part === part).length;
    const byText = await request(app)
      .post('/v1/search')
      .send({ text: `a ${part} with a scratch`, k: 100, filter, encoder: 'clean' })
      .expect(200);
    expect(byText.body.hits).toHaveLength(expected);
    expect(hitsOf(byText.body).every((h) => h.payload.labels?.part === part)).toBe(true);
    const queryId = byText.body.hits[0].id as string;
    const byId = await request(app).post('/v1/search').send({ imageId: queryId, filter, k: 100 }).expect(200);
    expect(byId.body.encoder).toBe('robust');
    expect(byId.body.hits).toHaveLength(expected - 1);
    expect(hitsOf(byId.body).map((h) => h.id)).not.toContain(queryId);
    // The multipart form takes the filter as a JSON string.
    const form = await request(app)
      .post('/v1/search')
      .attach('image', await imageOf(0), 'q.png')
      .field('filter', JSON.stringify(filter))
      .field('k', '100')
      .expect(200);
    expect(form.body.hits).toHaveLength(expected);
  });

  it('answers /similar like a search by id, with k, encoder and filter in the query string', async () => {
    const res = await request(app)
      .get(`/v1/images/${ids[0]}/similar`)
      .query({
        k: 4,
        encoder: 'clean',
        filter: JSON.stringify({ mustNot: [{ field: 'labels.defect', match: 'none' }] }),
      })
      .expect(200);
    expect(res.body.encoder).toBe('clean');
    expect(res.body.hits).toHaveLength(4);
    expect(hitsOf(res.body).every((h) => h.payload.labels?.defect !== 'none')).toBe(true);
    const def = await request(app).get(`/v1/images/${ids[0]}/similar`).expect(200);
    expect(def.body).toMatchObject({ encoder: 'robust', k: 12 });
    expect(def.body.hits).toHaveLength(12);
  });

  it('refuses k out of 1..100, unknown encoders, bad filters and bodies with typed 400s', async () => {
    for (const body of [
      { text: 'gear', k: 0 },
      { text: 'gear', k: 101 },
      { text: 'gear', k: 2.5 },
      { text: 'gear', encoder: 'fast' },
      { text: 'gear', filter: { must: [{ field: 'labels.part; DROP TABLE', match: 'x' }] } },
      { text: 'gear', filter: { must: [{ field: 'labels.part', range: {} }] } },
      { text: 'gear', imageId: ids[0] },
      {},
      { text: 'gear', extra: true },
    ]) {
      const res = await request(app).post('/v1/search').send(body).expect(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
      expect(res.body.error.details.issues.length).toBeGreaterThan(0);
    }
    const query = await request(app).get(`/v1/images/${ids[0]}/similar?k=500`).expect(400);
    expect(query.body.error.details.issues[0].path).toBe('k');
    const badJson = await request(app).get(`/v1/images/${ids[0]}/similar?filter=%7Bnope`).expect(400);
    expect(badJson.body.error.message).toMatch(/filter: must be a JSON document/);
    const malformed = await request(app)
      .post('/v1/search')
      .set('content-type', 'application/json')
      .send('{"text": "gear",')
      .expect(400);
    expect(malformed.body).toEqual({
      error: { code: 'VALIDATION_FAILED', message: 'The request body is not valid JSON.' },
    });
    const plain = await request(app).post('/v1/search').set('content-type', 'text/plain').send('gear').expect(400);
    expect(plain.body.error.message).toMatch(/application\/json/);
    const noFile = await request(app).post('/v1/search').field('k', '3').expect(400);
    expect(noFile.body.error.details.issues[0].path).toBe('image');
  });

  it('answers 404 with the JSON error shape for unknown and malformed image ids', async () => {
    const unknown = 'f'.repeat(64);
    for (const path of [`/v1/images/${unknown}`, `/v1/images/${unknown}/similar`, `/v1/images/${unknown}/thumbnail`]) {
      const res = await request(app).get(path).expect(404);
      expect(res.body.error).toEqual({
        code: 'NOT_FOUND',
        message: `image "${unknown}" was not found.`,
        details: { kind: 'image', id: unknown },
      });
    }
    await request(app).post('/v1/search').send({ imageId: unknown }).expect(404);
    const malformed = await request(app).get('/v1/images/..%2F..%2Fetc%2Fpasswd').expect(400);
    expect(malformed.body.error.code).toBe('VALIDATION_FAILED');
  });

  it('refuses uploads that are not images, too large, or declare too many pixels, with typed codes', async () => {
    const text = await request(app)
      .post('/v1/search')
      .attach('image', Buffer.from('just some text\n'), 'a.png')
      .expect(415);
    expect(text.body.error.code).toBe('IMAGE_NOT_AN_IMAGE');
    const bmp = await request(app)
      .post('/v1/search')
      .attach('image', Buffer.from('BM\x00\x00\x00\x00\x00\x00\x00\x00', 'binary'), 'a.bmp')
      .expect(415);
    expect(bmp.body.error.code).toBe('IMAGE_UNSUPPORTED_FORMAT');
    const png = await imageOf(1);
    const truncated = await request(app).post('/v1/search').attach('image', png.subarray(0, 200), 'cut.png');
    expect(truncated.status).toBe(422);
    expect(['IMAGE_TRUNCATED', 'IMAGE_DECODE_FAILED']).toContain(truncated.body.error.code);
    const empty = await request(app).post('/v1/search').attach('image', Buffer.alloc(0), 'empty.png').expect(422);
    expect(empty.body.error.code).toBe('IMAGE_EMPTY');
    // A header declaring 50 000 × 50 000 pixels is refused before any pixel buffer exists.
    const bomb = await request(app)
      .post('/v1/search')
      .attach('image', pngHeaderOnly(50_000, 50_000), 'bomb.png')
      .expect(413);
    expect(bomb.body.error.code).toBe('IMAGE_TOO_MANY_PIXELS');
    expect(bomb.body.error.details).toMatchObject({ width: 50_000, height: 50_000 });
    // The upload limit applies while the body streams in.
    const small = fx.app({ MAX_UPLOAD_BYTES: '4096', FETCH_MAX_BYTES: '4096' });
    const big = await request(small)
      .post('/v1/search')
      .attach('image', Buffer.concat([png, Buffer.alloc(8192)]), 'big.png')
      .expect(413);
    expect(big.body.error.code).toBe('PAYLOAD_TOO_LARGE');
    const two = await request(app)
      .post('/v1/search')
      .attach('image', png, 'a.png')
      .attach('other', png, 'b.png')
      .expect(400);
    expect(two.body.error.code).toBe('VALIDATION_FAILED');
  });

  it('serves payloads, cached JPEG thumbnails and originals with their content type', async () => {
    const record = fx.records[4]!;
    const png = await imageOf(4);
    const hit = (await request(app).post('/v1/search').attach('image', png, 'q.png').field('k', '1').expect(200)).body
      .hits[0];
    const image = await request(app).get(`/v1/images/${hit.id}`).expect(200);
    expect(image.body).toEqual({ id: hit.id, payload: hit.payload });
    expect(image.body.payload).toMatchObject({ caption: record.caption, format: 'png', width: 96, height: 96 });

    const thumb = await request(app).get(`/v1/images/${hit.id}/thumbnail`).expect(200);
    expect(thumb.headers['content-type']).toBe('image/jpeg');
    expect(thumb.headers['cache-control']).toMatch(/immutable/);
    const meta = await sharp(thumb.body as Buffer).metadata();
    expect(meta.format).toBe('jpeg');
    expect(Math.max(meta.width, meta.height)).toBeLessThanOrEqual(256);
    await readFile(`${fx.dir}/thumbs/${hit.id}.jpg`);
    const again = await request(app).get(`/v1/images/${hit.id}/thumbnail`).expect(200);
    expect(Buffer.compare(again.body as Buffer, thumb.body as Buffer)).toBe(0);

    const original = await request(app).get(`/v1/images/${hit.id}/original`).expect(200);
    expect(original.headers['content-type']).toBe('image/png');
    expect(original.headers['content-security-policy']).toMatch(/sandbox/);
    expect(Buffer.compare(original.body as Buffer, png)).toBe(0);
  });

  it('lists the label facets', async () => {
    const res = await request(app).get('/v1/facets').expect(200);
    expect(res.body.fields['labels.part']).toEqual([...new Set(fx.records.map((r) => r.labels.part))].sort());
    expect(Object.keys(res.body.fields).sort()).toEqual([
      'labels.color',
      'labels.defect',
      'labels.material',
      'labels.part',
    ]);
  });
});
