import { createHash, randomUUID } from 'node:crypto';
import type { BullJobRunner } from '@lookalike/queue';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUE_DASHBOARD_PATH } from './queue-dashboard.js';
import { buildFixture, type Fixture } from './test-fixture.js';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const basic = (password: string) => `Basic ${Buffer.from(`operator:${password}`).toString('base64')}`;
const KEYS = `read:${sha256('reader-key')},write:${sha256('writer-key')}`;

// Real Redis, a queue prefix of this run's own, the real bull-board.
describe('queue dashboard', () => {
  const prefix = `test-${randomUUID()}`;
  let local: Fixture;
  let bull: Fixture;

  beforeAll(async () => {
    local = await buildFixture({ seed: 3, count: 2 });
    bull = await buildFixture({
      seed: 4,
      count: 2,
      env: { REDIS_URL: 'redis://127.0.0.1:6379', QUEUE_PREFIX: prefix },
    });
  });
  afterAll(async () => {
    await local?.close();
    if (!bull) return;
    const runner = bull.services.runner as BullJobRunner;
    for (const key of ['ingest', 'audit', 'reindex'] as const) await runner.queue(key).obliterate({ force: true });
    await bull.close();
  });

  it('says why there is none without queues or without a write key to guard it', async () => {
    const none = await request(local.app({ API_KEYS: KEYS }))
      .get(QUEUE_DASHBOARD_PATH)
      .expect(404);
    expect(none.body.error.message).toMatch(/REDIS_URL is not set/);
    const open = await request(bull.app()).get(QUEUE_DASHBOARD_PATH).expect(403);
    expect(open.body.error.message).toMatch(/needs a write API key/);
    await request(bull.app({ API_KEYS: `read:${sha256('reader-key')}` }))
      .get(`${QUEUE_DASHBOARD_PATH}/api/queues`)
      .expect(403);
  });

  it('asks a browser for the write key, refuses others, and shows the queues and their jobs to an operator', async () => {
    const app = bull.app({ API_KEYS: KEYS });
    const anonymous = await request(app).get(QUEUE_DASHBOARD_PATH).expect(401);
    expect(anonymous.headers['www-authenticate']).toMatch(/^Basic realm="lookalike"/);
    await request(app).get(QUEUE_DASHBOARD_PATH).set('Authorization', basic('wrong')).expect(401);
    await request(app).get(QUEUE_DASHBOARD_PATH).set('Authorization', basic('reader-key')).expect(403);

    const page = await request(app).get(QUEUE_DASHBOARD_PATH).set('Authorization', basic('writer-key')).expect(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.text).toContain('Lookalike queues');
    const csp = page.headers['content-security-policy'] as string;
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self' 'unsafe-inline'");
    expect(csp.match(/unsafe-inline/g)).toHaveLength(1);

    // A job waiting on the paused audit queue (so this process's worker leaves it) is counted with its queue.
    const runner = bull.services.runner as BullJobRunner;
    await runner.queue('audit').pause();
    await runner.enqueue('audit-run', { auditId: `audit-dash-${randomUUID()}`, options: { queries: 1 } });
    const api = await request(app)
      .get(`${QUEUE_DASHBOARD_PATH}/api/queues`)
      .set('Authorization', 'Bearer writer-key')
      .expect(200);
    const queues = (api.body as { queues: { name: string; isPaused: boolean; counts: Record<string, number> }[] })
      .queues;
    expect(queues.map((q) => q.name).sort()).toEqual(['lookalike-audit', 'lookalike-ingest', 'lookalike-reindex']);
    const audit = queues.find((q) => q.name === 'lookalike-audit')!;
    expect(audit).toMatchObject({ isPaused: true, counts: { waiting: 1, active: 0 } });
  });
});
