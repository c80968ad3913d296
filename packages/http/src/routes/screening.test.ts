import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { captionOf, renderImage, sampleSpec, type ItemLabels } from '@lookalike/synth';
import type { Express } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFixture, waitForRun, type Fixture } from '../test-fixture.js';
import { screeningRoutes } from './screening.js';

// The fixture's catalog (seed 5, 30 items with their own captions) is ingested with screening judging from 20
// captioned images on, by the committed robust tower and its text tower. Items of seed 6 then come with the caption
// of an item of another part and another defect: swapped captions.
let fx: Fixture;
let app: Express;

/** Item `i` of seed 6 as a PNG, and a caption of another part with another defect. */
async function swapped(i: number): Promise<{ png: Buffer; caption: string }> {
  const s = sampleSpec(6, i);
  const other: ItemLabels = {
    ...s.labels,
    part: s.labels.part === 'gear' ? 'bracket' : 'gear',
    defect: s.labels.defect === 'crack' ? 'scratch' : 'crack',
  };
  return { png: await renderImage(s, 96, 'png'), caption: captionOf(other) };
}

interface Listed {
  id: string;
  payload: { caption?: string; screening: { verdict: string; similarity: { robust: number } } };
}

beforeAll(async () => {
  fx = await buildFixture({ seed: 5, count: 30, env: { SCREENING_MIN_COUNT: '20' } });
  app = fx.app();
});
afterAll(async () => {
  await fx?.close();
});

describe(screeningRoutes.name, () => {
  const flagged: string[] = [];
  let caption = '';

  it('screens uploads and lists the suspicious ones with the mixture that judged them', async () => {
    // The ingest fitted the mixture once it held 20 captions; the next refit is due at 10 % and 20 more.
    expect((await fx.services.screening!.model())!.count).toBeGreaterThanOrEqual(20);
    await fx.services.screening!.refit();
    const before = await request(app).get('/v1/screening?verdict=trusted&limit=100').expect(200);
    expect(before.body.policy).toEqual({ tower: 'robust', threshold: 0.9, minCount: 20 });
    expect(before.body.model).toMatchObject({ tower: 'robust', count: 30, textModel: expect.any(String) });
    expect(before.body.counts.pending).toBe(0);
    expect(before.body.counts.trusted + before.body.counts.suspicious).toBe(30);

    for (const i of [0, 1, 2, 3]) {
      const s = await swapped(i);
      const up = await request(app)
        .post('/v1/images?wait=true')
        .field('caption', s.caption)
        .attach('image', s.png, `swapped-${i}.png`)
        .expect(201);
      expect(up.body.payload.screening).toMatchObject({ tower: 'robust', verdict: expect.any(String) });
      expect(up.body.payload.screening.similarity.robust).toBeGreaterThanOrEqual(-1);
      flagged.push(up.body.id as string);
    }
    // A refit (due at 10 % growth) judges the stored pairs again with the swapped ones in the mixture.
    await fx.services.screening!.refit();
    const list = await request(app).get('/v1/screening').expect(200);
    expect(list.body.verdict).toBe('suspicious');
    expect(list.body.model).toMatchObject({ separates: true, lowFrom: 'unrelated' });
    const images = list.body.images as Listed[];
    expect(images.map((i) => i.id)).toEqual(expect.arrayContaining(flagged));
    // No more than one of the 30 true captions is flagged with them; the most suspect come first.
    expect(images.length).toBeLessThanOrEqual(flagged.length + 1);
    const sims = images.map((i) => i.payload.screening.similarity.robust);
    expect(sims).toEqual([...sims].sort((a, b) => a - b));
    expect(JSON.stringify(list.body)).not.toContain(fx.dir);
    caption = images.find((i) => i.id === flagged[0])!.payload.caption!;
  });

  it('leaves suspicious images out of text search unless asked, and only text search', async () => {
    const ids = async (body: object) =>
      ((await request(app).post('/v1/search').send(body).expect(200)).body.hits as { id: string }[]).map((h) => h.id);
    const byDefault = await ids({ text: caption, k: 100 });
    expect(byDefault.length).toBe(34 - flagged.length);
    for (const id of flagged) expect(byDefault).not.toContain(id);
    expect(await ids({ text: caption, k: 100, includeSuspicious: true })).toEqual(expect.arrayContaining(flagged));
    expect(await ids({ imageId: flagged[1], k: 100 })).toContain(flagged[0]);
    const refused = await request(app)
      .post('/v1/search')
      .send({ imageId: flagged[0], includeSuspicious: true })
      .expect(400);
    expect(refused.body.error.code).toBe('VALIDATION_FAILED');
  });

  it('withdraws a rejected caption and trusts an accepted one, deleting nothing', async () => {
    const count = await fx.services.store.count();
    const rejected = await request(app)
      .post(`/v1/screening/${flagged[0]}/review`)
      .send({ review: 'rejected' })
      .expect(200);
    expect(rejected.body.payload.caption).toBeUndefined();
    expect(rejected.body.payload.screening).toMatchObject({
      verdict: 'withdrawn',
      review: 'rejected',
      withdrawnCaption: caption,
    });
    const image = await request(app).get(`/v1/images/${flagged[0]}`).expect(200);
    expect(image.body.payload.caption).toBeUndefined();
    // Its caption withdrawn, the image is no longer suspect: text search finds it by its pixels again.
    const hits = await request(app).post('/v1/search').send({ text: caption, k: 100 }).expect(200);
    expect((hits.body.hits as { id: string }[]).map((h) => h.id)).toContain(flagged[0]);

    const accepted = await request(app)
      .post(`/v1/screening/${flagged[1]}/review`)
      .send({ review: 'accepted' })
      .expect(200);
    expect(accepted.body.payload.screening).toMatchObject({ verdict: 'trusted', review: 'accepted' });
    const list = await request(app).get('/v1/screening').expect(200);
    expect((list.body.images as Listed[]).map((i) => i.id)).not.toContain(flagged[1]);
    expect(list.body.counts.withdrawn).toBe(1);
    expect(await fx.services.store.count()).toBe(count);
  });

  it('refuses bad reviews and answers 409 when screening is off', async () => {
    expect(
      (await request(app).post(`/v1/screening/${flagged[2]}/review`).send({ review: 'maybe' }).expect(400)).body.error
        .code,
    ).toBe('VALIDATION_FAILED');
    await request(app)
      .post(`/v1/screening/${'0'.repeat(64)}/review`)
      .send({ review: 'accepted' })
      .expect(404);
    await request(app).get('/v1/screening?verdict=nonsense').expect(400);
    const off = fx.app({}, { screening: undefined });
    expect((await request(off).get('/v1/screening').expect(409)).body.error.code).toBe('CONFLICT');
    await request(off).post(`/v1/screening/${flagged[2]}/review`).send({ review: 'accepted' }).expect(409);
  });

  it('reports the captions a bulk ingest run flagged, with their paths as the API shows them', async () => {
    await mkdir(join(fx.dir, 'poisoned'), { recursive: true });
    const lines: string[] = [];
    for (const i of [10, 11]) {
      const s = await swapped(i);
      await writeFile(join(fx.dir, 'poisoned', `p-${i}.png`), s.png);
      lines.push(JSON.stringify({ file: `p-${i}.png`, caption: s.caption }));
    }
    await writeFile(join(fx.dir, 'poisoned', 'manifest.jsonl'), lines.join('\n') + '\n');
    const started = await request(app)
      .post('/v1/ingest')
      .send({ source: { kind: 'manifest', location: 'poisoned/manifest.jsonl' } })
      .expect(202);
    await waitForRun(fx.services.runner, started.body.runId);
    const run = await request(app).get(`/v1/jobs/${started.body.jobId}`).expect(200);
    expect(run.body.captions).toEqual({ screened: 2, suspicious: 2, pending: 0 });
    expect((run.body.suspicious as { location: string }[]).map((s) => s.location).sort()).toEqual([
      'poisoned/p-10.png',
      'poisoned/p-11.png',
    ]);
  });
});
