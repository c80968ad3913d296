import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { renderImage, sampleSpec } from '@lookalike/synth';
import type { Express } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFixture, waitForRun, type Fixture } from '../test-fixture.js';
import { duplicateRoutes } from './duplicates.js';

// The fixture's catalog (seed 5, 96 px PNGs) is ingested with grouping at a strict threshold, so that only exact
// copies group: the same item rendered again as a high-quality JPEG has other bytes (another id) and the same picture.
const SEED = 5;
let fx: Fixture;
let app: Express;
let ids: string[];

const jpegOf = (i: number, quality = 97) => renderImage(sampleSpec(SEED, i), 96, 'jpeg', quality);

beforeAll(async () => {
  fx = await buildFixture({ seed: SEED, count: 12, env: { DUPLICATE_THRESHOLD: '0.02' } });
  app = fx.app();
  const points = (await fx.services.store.scroll({ limit: 100 })).points;
  ids = fx.records.map((r) => points.find((p) => p.payload.metadata?.externalId === r.id)!.id);
});
afterAll(async () => {
  await fx?.close();
});

describe(duplicateRoutes.name, () => {
  it('groups an uploaded copy with the stored image, and shows the group on the image, in the list and by id', async () => {
    expect((await request(app).get('/v1/duplicates').expect(200)).body).toMatchObject({
      groups: [],
      total: 0,
      grouping: { tower: 'robust', threshold: 0.02 },
    });
    const upload = await request(app)
      .post('/v1/images?wait=true')
      .attach('image', await jpegOf(0), 'copy-0.jpg')
      .expect(201);
    const copy = upload.body.id as string;
    expect(upload.body.payload.duplicates).toMatchObject({ group: ids[0], nearest: ids[0], tower: 'robust' });

    const image = await request(app).get(`/v1/images/${copy}`).expect(200);
    expect(image.body.group).toEqual({ id: ids[0], size: 2, url: `/v1/duplicates/${ids[0]}` });
    const original = await request(app).get(`/v1/images/${ids[0]}`).expect(200);
    expect(original.body.payload.duplicates).toMatchObject({ group: ids[0], distance: 0 });
    expect(original.body.group.size).toBe(2);
    // An image in no group has no group.
    expect((await request(app).get(`/v1/images/${ids[1]}`).expect(200)).body.group).toBeUndefined();

    // The upload's job names the upload as the API shows it, never a server path.
    const job = await request(app).get(`/v1/jobs/${upload.body.jobId}`).expect(200);
    expect(job.body.result.duplicates).toEqual([
      expect.objectContaining({ id: copy, group: ids[0], location: expect.stringMatching(/^upload:/) }),
    ]);

    const list = await request(app).get('/v1/duplicates').expect(200);
    expect(list.body.total).toBe(1);
    expect(list.body.images).toBe(2);
    interface Listed {
      id: string;
      unreviewed: number;
      members: { id: string; thumbnailUrl: string }[];
    }
    const group = (list.body.groups as Listed[])[0]!;
    expect(group.id).toBe(ids[0]);
    expect(group.members.map((m) => m.id)).toEqual([ids[0], copy]);
    expect(group.members[1]!.thumbnailUrl).toBe(`/v1/images/${copy}/thumbnail`);
    expect(group.unreviewed).toBe(2);
    expect((await request(app).get(`/v1/duplicates/${ids[0]}`).expect(200)).body).toEqual(group);
  });

  it('keeps one member and marks the others, deleting nothing, and refuses a keep outside the group', async () => {
    const group = ids[0]!;
    const before = await fx.services.store.count();
    const { body } = await request(app).get(`/v1/duplicates/${group}`).expect(200);
    const copy = body.members[1].id as string;
    const reviewed = await request(app).post(`/v1/duplicates/${group}/review`).send({ keep: copy }).expect(200);
    expect(reviewed.body.kept).toBe(copy);
    expect(reviewed.body.unreviewed).toBe(0);
    const [kept, marked] = await fx.services.store.get([copy, group]);
    expect(kept!.payload.duplicates).toMatchObject({ review: 'kept', group });
    expect(marked!.payload.duplicates).toMatchObject({ review: 'duplicate', group });
    expect(await fx.services.store.count()).toBe(before);
    // Marked copies can be left out of a search by filter.
    const hits = await request(app)
      .post('/v1/search')
      .send({
        imageId: group,
        k: 20,
        filter: { mustNot: [{ field: 'duplicates.review', match: 'duplicate' }] },
      })
      .expect(200);
    expect((hits.body.hits as { id: string }[]).map((h) => h.id)).not.toContain(group);
    expect((await request(app).get('/v1/duplicates?unreviewed=true').expect(200)).body.total).toBe(0);

    const stranger = await request(app).post(`/v1/duplicates/${group}/review`).send({ keep: ids[2] }).expect(400);
    expect(stranger.body.error.code).toBe('VALIDATION_FAILED');
    await request(app)
      .post(`/v1/duplicates/${'0'.repeat(64)}/review`)
      .send({ keep: ids[2] })
      .expect(404);
    await request(app)
      .get(`/v1/duplicates/${'0'.repeat(64)}`)
      .expect(404);
    await request(app).get('/v1/duplicates/not-an-id').expect(400);
  });

  it('reports the copies a bulk ingest run grouped, with their paths as the API shows them', async () => {
    await mkdir(join(fx.dir, 'again'), { recursive: true });
    await writeFile(join(fx.dir, 'again', 'copy-3.jpg'), await jpegOf(3));
    await writeFile(join(fx.dir, 'again', 'copy-4.jpg'), await jpegOf(4));
    const started = await request(app)
      .post('/v1/ingest')
      .send({ source: { kind: 'directory', root: 'again' } })
      .expect(202);
    await waitForRun(fx.services.runner, started.body.runId);
    const run = await request(app).get(`/v1/jobs/${started.body.jobId}`).expect(200);
    expect(run.body.done).toBe(2);
    expect(run.body.duplicatesTotal).toBe(2);
    expect(run.body.duplicatesUnchecked).toBe(0);
    const byLocation = Object.fromEntries(
      (run.body.duplicates as { location: string; group: string }[]).map((d) => [d.location, d.group]),
    );
    expect(byLocation).toEqual({ 'again/copy-3.jpg': ids[3], 'again/copy-4.jpg': ids[4] });
    expect((await request(app).get('/v1/duplicates').expect(200)).body.total).toBe(3);
  });
});
