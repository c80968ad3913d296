import { readFile } from 'node:fs/promises';
import { generateCatalog } from '@lookalike/synth';
import type { Express } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFixture, type Fixture } from '../test-fixture.js';

// The fixture's catalog (seed 9, 16 items, 96 px) is ingested with the committed robust quality model scoring every
// image; then a bulk ingest of another catalog's distorted copies (blur, noise, JPEG, exposure, contrast at known
// severities) through `POST /v1/ingest`, and uploads through `POST /v1/images`.
let fx: Fixture;
let app: Express;

interface Quality {
  score: number;
  grade: 'ok' | 'low';
  threshold: number;
  model: string;
  tower: string;
}
interface Hit {
  id: string;
  payload: { quality?: Quality };
}

beforeAll(async () => {
  fx = await buildFixture({ seed: 9, count: 16 });
  app = fx.app();
});
afterAll(async () => {
  await fx?.close();
});

async function finished(jobId: string): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const res = await request(app).get(`/v1/jobs/${jobId}`).expect(200);
    if (res.body.state === 'completed' || res.body.state === 'failed') return res.body as Record<string, unknown>;
    if (Date.now() > deadline) throw new Error(`job ${jobId} did not finish: ${JSON.stringify(res.body)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('quality scores through the API', () => {
  const low: string[] = [];
  const lowFiles: string[] = [];

  it('scores every ingested image, and the run reports how many it graded low', async () => {
    await generateCatalog({ count: 12, seed: 44, outDir: `${fx.dir}/blurry`, size: 96, distort: true });
    const res = await request(app)
      .post('/v1/ingest')
      .send({ source: { kind: 'manifest', location: 'blurry/distorted.jsonl' }, batchSize: 6 })
      .expect(202);
    const run = await finished(res.body.jobId as string);
    expect(run).toMatchObject({ state: 'completed', done: 12 });
    const quality = run['quality'] as { scored: number; low: number };
    const listed = run['lowQuality'] as { id: string; location: string; score: number }[];
    expect(quality.scored).toBe(12);
    expect(quality.low).toBe(listed.length);
    expect(quality.low).toBeGreaterThan(0);
    const threshold = fx.services.quality!.info.threshold;
    for (const l of listed) {
      expect(l.location).toMatch(/^blurry\/images\/s44-\d+-q\.png$/);
      expect(l.score).toBeLessThan(threshold);
      const image = await request(app).get(`/v1/images/${l.id}`).expect(200);
      expect(image.body.payload.quality).toEqual({
        score: l.score,
        grade: 'low',
        threshold,
        model: 'quality-cnn-fare4',
        tower: 'robust',
      });
      low.push(l.id);
      lowFiles.push(`${fx.dir}/${l.location}`);
    }
  });

  it('filters search by grade: ok leaves the low ones out, low keeps only them, any does not look', async () => {
    const query = low[0]!;
    const search = async (body: Record<string, unknown>) =>
      ((await request(app).post('/v1/search').send(body).expect(200)).body.hits as Hit[]).map((h) => h.payload.quality);
    const all = await search({ imageId: query, k: 40 });
    expect(all.some((q) => q?.grade === 'low')).toBe(true);
    expect(all.some((q) => q?.grade === 'ok')).toBe(true);
    expect((await search({ imageId: query, k: 40, quality: 'any' })).length).toBe(all.length);
    const ok = await search({ imageId: query, k: 40, quality: 'ok' });
    expect(ok.length).toBe(all.filter((q) => q?.grade !== 'low').length);
    expect(ok.every((q) => q?.grade === 'ok')).toBe(true);
    const onlyLow = await search({ imageId: query, k: 40, quality: 'low' });
    expect(onlyLow.length).toBe(low.length - 1);
    expect(onlyLow.every((q) => q?.grade === 'low')).toBe(true);
    // The query string of /similar and the fields of a multipart search take it too.
    const similar = await request(app).get(`/v1/images/${query}/similar?k=40&quality=low`).expect(200);
    expect((similar.body.hits as Hit[]).every((h) => h.payload.quality?.grade === 'low')).toBe(true);
    const upload = await request(app)
      .post('/v1/search')
      .field('k', '40')
      .field('quality', 'ok')
      .attach('image', await readFile(lowFiles[0]!), 'query.png')
      .expect(200);
    expect((upload.body.hits as Hit[]).every((h) => h.payload.quality?.grade === 'ok')).toBe(true);
  });

  it('refuses a grade it does not know with a typed error', async () => {
    const res = await request(app).post('/v1/search').send({ imageId: low[0], quality: 'blurry' }).expect(400);
    expect(res.body.error).toMatchObject({ code: 'VALIDATION_FAILED' });
    expect(JSON.stringify(res.body)).toMatch(/quality/);
  });

  it('scores an uploaded image on the way in', async () => {
    const out = `${fx.dir}/upload`;
    await generateCatalog({ count: 1, seed: 45, outDir: out, size: 96 });
    const png = await readFile(`${out}/images/s45-000000.png`);
    const res = await request(app).post('/v1/images?wait=true').attach('image', png, 'fresh.png').expect(201);
    expect(res.body.payload.quality).toMatchObject({ model: 'quality-cnn-fare4', tower: 'robust' });
    expect(res.body.payload.quality.score).toBeGreaterThanOrEqual(0);
  });
});
