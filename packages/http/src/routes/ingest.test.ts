import { randomUUID } from 'node:crypto';
import { mkdir, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { IngestFailure } from '@lookalike/ingest';
import type { BullJobRunner } from '@lookalike/queue';
import { generateCatalog } from '@lookalike/synth';
import type { Express } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFixture, type Fixture } from '../test-fixture.js';
import { ingestRoutes } from './ingest.js';

let fx: Fixture;
let app: Express;

beforeAll(async () => {
  fx = await buildFixture({ seed: 7, count: 12 });
  app = fx.app();
});
afterAll(async () => {
  await fx?.close();
});

/** Polls `GET /v1/jobs/:id` until the run has finished. */
async function finished(
  target: Express,
  jobId: string,
): Promise<Record<string, unknown> & { failed: IngestFailure[] }> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const res = await request(target).get(`/v1/jobs/${jobId}`).expect(200);
    const body = res.body as Record<string, unknown> & { failed: IngestFailure[] };
    if (body.state === 'completed' || body.state === 'failed') return body;
    if (Date.now() > deadline) throw new Error(`job ${jobId} did not finish: ${JSON.stringify(res.body)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A fresh image, in no catalog yet. */
async function freshImage(seed: number): Promise<Buffer> {
  const out = join(fx.dir, `fresh-${seed}`);
  await generateCatalog({ count: 1, seed, outDir: out, size: 96 });
  return readFile(join(out, 'images', `s${seed}-000000.png`));
}

describe(ingestRoutes.name, () => {
  it('adds an uploaded image (202, then searchable), and with wait=true answers 201 with the stored payload', async () => {
    const png = await freshImage(70);
    const accepted = await request(app)
      .post('/v1/images')
      .attach('image', png, 'new.png')
      .field('caption', 'a brand-new part')
      .field('labels', JSON.stringify({ part: 'zz-upload-part', defect: 'none' }))
      .expect(202);
    expect(accepted.body.id).toMatch(/^[0-9a-f]{64}$/);
    expect(accepted.headers.location).toBe(`/v1/images/${accepted.body.id}`);
    const job = await finished(app, accepted.body.jobId);
    expect(job).toMatchObject({
      name: 'ingest-batch',
      state: 'completed',
      result: { done: 1, skipped: 0, failed: [] },
    });
    expect(await readdir(join(fx.dir, 'uploads'))).toContain(`${accepted.body.id}.png`);

    const found = await request(app).post('/v1/search').attach('image', png, 'q.png').field('k', '1').expect(200);
    expect(found.body.hits[0]).toMatchObject({ id: accepted.body.id, payload: { caption: 'a brand-new part' } });
    const facets = await request(app).get('/v1/facets').expect(200);
    expect(facets.body.fields['labels.part']).toContain('zz-upload-part');
    // Served from the uploads folder.
    await request(app).get(`/v1/images/${accepted.body.id}/thumbnail`).expect(200);

    const other = await freshImage(71);
    const created = await request(app)
      .post('/v1/images?wait=true')
      .attach('image', other, 'other.png')
      .field('labels', JSON.stringify({ part: 'zz-waited' }))
      .expect(201);
    expect(created.body.payload).toMatchObject({ id: created.body.id, labels: { part: 'zz-waited' }, format: 'png' });
    expect((await request(app).get('/v1/facets').expect(200)).body.fields['labels.part']).toContain('zz-waited');
  });

  it('refuses uploads that are not images or carry bad labels, before saving anything', async () => {
    const before = await readdir(join(fx.dir, 'uploads')).catch(() => []);
    const text = await request(app).post('/v1/images').attach('image', Buffer.from('hello\n'), 'x.jpg').expect(415);
    expect(text.body.error.code).toBe('IMAGE_NOT_AN_IMAGE');
    const labels = await request(app)
      .post('/v1/images')
      .attach('image', await freshImage(72), 'x.png')
      .field('labels', '{"part": {"nested": true}}')
      .expect(400);
    expect(labels.body.error.details.issues[0].path).toMatch(/^labels/);
    await request(app).post('/v1/images').send({ image: 'nope' }).expect(400);
    expect(await readdir(join(fx.dir, 'uploads')).catch(() => [])).toEqual(before);
  });

  it('runs a bulk ingest and reports the run with counts and each bad file with its reason', async () => {
    const folder = join(fx.dir, 'bulk');
    await generateCatalog({ count: 5, seed: 73, outDir: folder, size: 96 });
    await writeFile(join(folder, 'images', 'broken.png'), 'this is not a png');
    const res = await request(app)
      .post('/v1/ingest')
      .send({ source: { kind: 'directory', root: 'bulk/images' }, batchSize: 2 })
      .expect(202);
    expect(res.body.jobId).toBe(res.body.runId);
    expect(res.headers.location).toBe(`/v1/jobs/${res.body.jobId}`);
    const run = await finished(app, res.body.jobId);
    expect(run).toMatchObject({
      id: res.body.runId,
      name: 'ingest-run',
      state: 'completed',
      items: 6,
      batches: 3,
      batchesDone: 3,
      batchesFailed: 0,
      done: 5,
      skipped: 0,
      failedTotal: 1,
      manifestProblems: [],
    });
    expect(run.failed).toEqual([
      {
        // Relative to the ingest root: responses never name server paths.
        location: 'bulk/images/broken.png',
        code: 'IMAGE_NOT_AN_IMAGE',
        reason: expect.stringMatching(/text, not an image/),
      },
    ]);
    // A manifest with a bad line: the line is reported, the rest ingested (already there: skipped).
    const manifest = join(folder, 'manifest.jsonl');
    await writeFile(manifest, `${await readFile(manifest, 'utf8')}{"oops": 1}\n`);
    const again = await request(app)
      .post('/v1/ingest')
      .send({ source: { kind: 'manifest', location: manifest } })
      .expect(202);
    const second = await finished(app, again.body.jobId);
    expect(second).toMatchObject({ state: 'completed', items: 5, done: 0, skipped: 5, failedTotal: 0 });
    expect(second.manifestProblems).toEqual([{ line: 6, reason: expect.stringMatching(/no location/) }]);
  });

  it('refuses sources outside INGEST_ROOTS, through ../ or a symbolic link, and items sources', async () => {
    const outside = join(fx.dir, '..');
    await symlink(outside, join(fx.dir, 'escape')).catch(() => undefined);
    for (const source of [
      { kind: 'directory', root: '../' },
      { kind: 'directory', root: 'catalog/../../' },
      { kind: 'directory', root: '/etc' },
      { kind: 'directory', root: 'escape' },
      { kind: 'manifest', location: '/etc/passwd.jsonl' },
      { kind: 'items', items: [{ location: '/etc/passwd' }] },
      { kind: 'directory', root: 'catalog', extra: 1 },
    ]) {
      const res = await request(app).post('/v1/ingest').send({ source }).expect(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
    }
    const res = await request(app)
      .post('/v1/ingest')
      .send({ source: { kind: 'directory', root: '/etc' } });
    expect(res.body.error.message).toMatch(/outside the folders ingest may read/);
  });

  it('answers 404 for unknown jobs and 400 for malformed ids', async () => {
    const res = await request(app).get(`/v1/jobs/${randomUUID()}`).expect(404);
    expect(res.body.error.code).toBe('NOT_FOUND');
    await request(app).get('/v1/jobs/..%2Fx').expect(400);
  });
});

describe('ingest through BullMQ', () => {
  const prefix = `test-${randomUUID()}`;
  let bull: Fixture;

  beforeAll(async () => {
    bull = await buildFixture({
      seed: 8,
      count: 6,
      env: { REDIS_URL: 'redis://127.0.0.1:6379', QUEUE_PREFIX: prefix },
    });
  });
  afterAll(async () => {
    if (!bull) return;
    // This run's keys go with it; the unique prefix kept them apart from everyone else's.
    const runner = bull.services.runner as BullJobRunner;
    for (const key of ['ingest', 'audit', 'reindex'] as const) await runner.queue(key).obliterate({ force: true });
    await bull.close();
  });

  it('queues an upload and a bulk run on Redis, and sums the run from its batch jobs', async () => {
    const target = bull.app();
    const ready = await request(target).get('/readyz').expect(200);
    expect((ready.body as { checks: { name: string }[] }).checks.map((c) => c.name)).toContain('redis');
    const folder = join(bull.dir, 'more');
    await mkdir(folder);
    await generateCatalog({ count: 3, seed: 81, outDir: folder, size: 96 });
    await writeFile(join(folder, 'images', 'empty.png'), '');
    const res = await request(target)
      .post('/v1/ingest')
      .send({ source: { kind: 'directory', root: folder }, batchSize: 2 })
      .expect(202);
    const run = await finished(target, res.body.jobId);
    expect(run).toMatchObject({ state: 'completed', items: 4, batches: 2, batchesDone: 2, done: 3, failedTotal: 1 });
    expect(run.failed[0]).toMatchObject({ code: 'IMAGE_EMPTY' });

    const png = await readFile(join(bull.dir, 'catalog', bull.records[0]!.file));
    const created = await request(target).post('/v1/images?wait=true').attach('image', png, 'same.png').expect(201);
    // Already in the catalog: the same id, nothing new embedded.
    expect(created.body.payload.caption).toBe(bull.records[0]!.caption);
    const metrics = await request(target).get('/metrics').expect(200);
    expect(metrics.text).toMatch(/lookalike_queue_jobs\{queue="ingest",state="completed"\} \d+/);
  });
});
