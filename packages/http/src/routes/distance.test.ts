import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cosine } from '@lookalike/core';
import { CALIBRATION_FILE, calibrationSchema, verdictOf, type Calibration } from '@lookalike/distance';
import { makeRerender, renderImage, sampleSpec } from '@lookalike/synth';
import type { Express } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODELS, buildFixture, type Fixture } from '../test-fixture.js';
import { distanceRoutes } from './distance.js';

const SEED = 5;
let fx: Fixture;
let app: Express;
/** Store id of each catalog record, by index. */
let ids: string[];
let calibrations: Record<'robust' | 'clean', Calibration>;

beforeAll(async () => {
  fx = await buildFixture({ seed: SEED });
  app = fx.app();
  const points = (await fx.services.store.scroll({ limit: 100 })).points;
  ids = fx.records.map((r) => points.find((p) => p.payload.metadata?.externalId === r.id)!.id);
  const committed = async (model: string) =>
    calibrationSchema.parse(JSON.parse(await readFile(join(MODELS, model, CALIBRATION_FILE), 'utf8')));
  calibrations = {
    robust: await committed(fx.services.encoders.robust.info.id),
    clean: await committed(fx.services.encoders.clean.info.id),
  };
});
afterAll(async () => {
  await fx?.close();
});

const imageOf = (i: number) => readFile(fx.file(fx.records[i]!));
/** Re-render 1 of catalog item `i`: the same item photographed again, at the catalog's size. */
const rerenderOf = (i: number) => renderImage(makeRerender(sampleSpec(SEED, i), SEED, i, 1).spec, 96, 'png');

interface Tower {
  model: string;
  distance: number;
  verdict: string | null;
  calibration: { thresholds: { sameItem: number; sameKind: number }; heldOut: { seed: number } } | null;
  uncalibrated?: string;
}
const towersOf = (body: unknown) => (body as { towers: Record<'robust' | 'clean', Tower> }).towers;

describe(distanceRoutes.name, () => {
  it("compares two stored images by id: the stored vectors' 1 − cos and the calibrated verdict of each tower", async () => {
    const [a, b] = [ids[0]!, ids[1]!];
    const res = await request(app).post('/v1/distance').send({ aId: a, bId: b }).expect(200);
    const stored = await fx.services.store.get([a, b], { withVectors: true });
    const vectors = (id: string) => stored.find((p) => p.id === id)!.vectors!;
    for (const role of ['robust', 'clean'] as const) {
      const tower = towersOf(res.body)[role];
      const expected = 1 - cosine(vectors(a)[role], vectors(b)[role]);
      expect(tower.distance).toBeCloseTo(expected, 6);
      expect(tower.model).toBe(fx.services.encoders[role].info.id);
      expect(tower.verdict).toBe(verdictOf(expected, calibrations[role].thresholds));
      expect(tower.calibration?.thresholds).toEqual(calibrations[role].thresholds);
      expect(tower.calibration?.heldOut.seed).toBe(calibrations[role].heldOut.seed);
    }
    expect(res.body.verdict).toBe(towersOf(res.body).robust.verdict);
    expect(res.body.tookMs).toBeGreaterThanOrEqual(0);
  });

  it('calls an image and its own upload the same item, and is symmetric across an upload and an id', async () => {
    const same = await request(app)
      .post('/v1/distance')
      .attach('a', await imageOf(3), 'a.png')
      .field('bId', ids[3]!)
      .expect(200);
    for (const tower of Object.values(towersOf(same.body))) {
      expect(tower.distance).toBeLessThan(1e-5);
      expect(tower.verdict).toBe('same item');
    }
    const forward = await request(app)
      .post('/v1/distance')
      .attach('a', await rerenderOf(3), 'again.png')
      .field('bId', ids[3]!)
      .expect(200);
    const backward = await request(app)
      .post('/v1/distance')
      .field('aId', ids[3]!)
      .attach('b', await rerenderOf(3), 'again.png')
      .expect(200);
    const both = await request(app)
      .post('/v1/distance')
      .attach('a', await imageOf(3), 'a.png')
      .attach('b', await rerenderOf(3), 'again.png')
      .expect(200);
    for (const role of ['robust', 'clean'] as const) {
      const d = towersOf(forward.body)[role].distance;
      expect(d).toBeGreaterThan(0);
      expect(towersOf(backward.body)[role].distance).toBeCloseTo(d, 6);
      expect(towersOf(both.body)[role].distance).toBeCloseTo(d, 5);
    }
  });

  it('refuses a side with neither or both an image and an id, unknown ids, and what is not an image', async () => {
    const none = await request(app).post('/v1/distance').field('aId', ids[0]!).expect(400);
    expect(none.body.error.code).toBe('VALIDATION_FAILED');
    expect(none.body.error.message).toMatch(/no image "b"/);
    const both = await request(app)
      .post('/v1/distance')
      .attach('a', await imageOf(0), 'a.png')
      .field('aId', ids[0]!)
      .field('bId', ids[1]!)
      .expect(400);
    expect(both.body.error.message).toMatch(/either a file in "a" or an id in "aId"/);
    const twoFiles = await request(app)
      .post('/v1/distance')
      .attach('a', await imageOf(0), 'a.png')
      .attach('a', await imageOf(1), 'a2.png')
      .field('bId', ids[1]!)
      .expect(400);
    expect(twoFiles.body.error.message).toMatch(/at most one file in each of the form fields "a" and "b"/);
    const unknown = await request(app)
      .post('/v1/distance')
      .send({ aId: ids[0], bId: 'f'.repeat(64) })
      .expect(404);
    expect(unknown.body.error.code).toBe('NOT_FOUND');
    const badId = await request(app).post('/v1/distance').send({ aId: ids[0], bId: 'nope' }).expect(400);
    expect(badId.body.error.details.issues[0].path).toBe('bId');
    const extra = await request(app).post('/v1/distance').send({ aId: ids[0], bId: ids[1], k: 3 }).expect(400);
    expect(extra.body.error.code).toBe('VALIDATION_FAILED');
    const notImage = await request(app)
      .post('/v1/distance')
      .attach('a', Buffer.from('not an image at all'), 'a.png')
      .field('bId', ids[1]!)
      .expect(415);
    expect(notImage.body.error.code).toMatch(/^IMAGE_/);
    await request(app).post('/v1/distance').set('content-type', 'text/plain').send('a,b').expect(400);
  });

  it('answers distances without verdicts, and says why, for towers without a calibration', async () => {
    const reason = 'model x has no distance-calibration.json; run lookalike calibrate-distance';
    const bare = fx.app(
      {},
      {
        calibrations: {
          robust: { status: 'uncalibrated', reason },
          clean: { status: 'calibrated', calibration: calibrations.clean },
        },
      },
    );
    const res = await request(bare).post('/v1/distance').send({ aId: ids[0], bId: ids[1] }).expect(200);
    expect(res.body.verdict).toBeNull();
    expect(towersOf(res.body).robust).toMatchObject({ verdict: null, calibration: null, uncalibrated: reason });
    expect(towersOf(res.body).clean.verdict).not.toBeNull();
  });

  it('is in the OpenAPI document with both request bodies', async () => {
    const doc = await request(app).get('/openapi.json').expect(200);
    const op = doc.body.paths['/v1/distance'].post;
    expect(Object.keys(op.requestBody.content).sort()).toEqual(['application/json', 'multipart/form-data']);
    expect(op.responses['200']).toBeDefined();
  });
});
