import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FileAuditStore, renderReport } from '@lookalike/audit';
import { AppError, type AuditResult, type AuditSummary, type EncoderRole } from '@lookalike/core';
import express, { type Express } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from './app.js';
import { errorHandler } from './error-handler.js';
import { buildFixture, logger, type Fixture } from './test-fixture.js';

let fx: Fixture;
let app: Express;

beforeAll(async () => {
  fx = await buildFixture({ seed: 6, count: 12 });
  app = fx.app();
});
afterAll(async () => {
  await fx?.close();
});

const sha = (key: string) => createHash('sha256').update(key).digest('hex');

function auditResult(id: string, startedAt: string): AuditResult {
  const epsilons = [0, 2 / 255, 4 / 255];
  const kept: Record<EncoderRole, number[]> = { robust: [1, 0.8, 0.6], clean: [1, 0.3, 0.05] };
  return {
    schemaVersion: 1,
    id,
    startedAt,
    finishedAt: startedAt.replace('03:00', '03:07'),
    attack: { name: 'apgd', norm: 'linf', steps: 10, restarts: 1, seed: 0 },
    models: {
      robust: { modelId: 'defect-cnn-fare4', preprocessHash: 'p' },
      clean: { modelId: 'defect-cnn-clean', preprocessHash: 'p' },
    },
    queries: 8,
    epsilons,
    k: 10,
    depth: 50,
    catalogSize: 12,
    cost: { seconds: 450, secondsPerQueryPerEncoder: 28, gradientEvaluations: 30 },
    perQuery: [],
    examples: [],
    metrics: (['robust', 'clean'] as const).flatMap((encoder) =>
      epsilons.map((epsilon, i) => ({
        encoder,
        epsilon,
        k: 10,
        overlapAtK: kept[encoder][i]!,
        top1Retention: kept[encoder][i]! * 0.9,
        meanRankOfCleanTop1: 1 + i,
        cosineDrift: i * 0.1,
        ...(encoder === 'robust'
          ? {
              precisionAtK: { clean: 0.5, attacked: 0.5 - 0.1 * i },
              defectivePrecisionAtK: { clean: 0.6, attacked: 0.6 - 0.1 * i },
            }
          : {}),
      })),
    ),
  };
}

describe(createApp.name, () => {
  it('answers liveness and readiness per dependency', async () => {
    expect((await request(app).get('/healthz').expect(200)).body).toEqual({ status: 'ok' });
    const ready = await request(app).get('/readyz').expect(200);
    expect(ready.body).toEqual({
      status: 'ready',
      checks: [
        { name: 'store', ok: true },
        { name: 'queue', ok: true },
        { name: 'models', ok: true },
      ],
    });
    const down = fx.app({}, { readiness: [{ name: 'disk', check: () => Promise.reject(new Error('disk full')) }] });
    const res = await request(down).get('/readyz').expect(503);
    expect(res.body.checks).toContainEqual({ name: 'disk', ok: false, reason: 'disk full' });
  });

  it('answers unknown routes with the JSON error shape and sets security headers with a CSP for the UI', async () => {
    const res = await request(app).get('/nope').expect(404);
    expect(res.body).toEqual({ error: { code: 'NOT_FOUND', message: 'No route for GET /nope.' } });
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-powered-by']).toBeUndefined();
    const csp = res.headers['content-security-policy'] as string;
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("img-src 'self' data: blob:");
    expect(csp).toContain("style-src 'self'");
    expect(csp).not.toContain('upgrade-insecure-requests');
  });

  it('requires keys by scope when keys are configured, comparing only hashes', async () => {
    const keyed = fx.app({ API_KEYS: `read:${sha('reader-key')},write:${sha('writer-key')}` });
    const noKey = await request(keyed).get('/v1/facets').expect(401);
    expect(noKey.body.error.code).toBe('UNAUTHORIZED');
    expect(noKey.headers['www-authenticate']).toMatch(/^Bearer/);
    await request(keyed).get('/v1/facets').set('Authorization', 'Bearer wrong-key').expect(401);
    // The configured hash is not itself a key.
    await request(keyed).get('/v1/facets').set('X-API-Key', sha('reader-key')).expect(401);
    await request(keyed).get('/v1/facets').set('Authorization', 'Bearer reader-key').expect(200);
    await request(keyed).get('/v1/facets').set('X-API-Key', 'writer-key').expect(200);
    const readOnly = await request(keyed)
      .post('/v1/ingest')
      .set('X-API-Key', 'reader-key')
      .send({ source: { kind: 'directory', root: 'catalog' } })
      .expect(403);
    expect(readOnly.body.error.code).toBe('FORBIDDEN');
    await request(keyed)
      .post('/v1/ingest')
      .send({ source: { kind: 'directory', root: 'catalog' } })
      .expect(401);
    // Authorised, the request reaches validation.
    await request(keyed).post('/v1/ingest').set('Authorization', 'Bearer writer-key').send({}).expect(400);
    // Operations endpoints stay open.
    await request(keyed).get('/healthz').expect(200);
    await request(keyed).get('/openapi.json').expect(200);

    // Only write keys: reading is open, writing is not, and a wrong key is refused everywhere.
    const writeOnly = fx.app({ API_KEYS: `write:${sha('writer-key')}` });
    await request(writeOnly).get('/v1/facets').expect(200);
    await request(writeOnly).get('/v1/facets').set('X-API-Key', 'nope').expect(401);
    await request(writeOnly).post('/v1/ingest').send({}).expect(401);
  });

  it('limits requests per key or address with standard headers and a JSON 429', async () => {
    const limited = fx.app({ RATE_LIMIT_PER_MINUTE: '3', API_KEYS: `write:${sha('k1')},write:${sha('k2')}` });
    for (let i = 0; i < 3; i++) {
      const res = await request(limited).get('/v1/facets').expect(200);
      expect(res.headers.ratelimit).toBeDefined();
      expect(res.headers['ratelimit-policy']).toBeDefined();
    }
    const over = await request(limited).get('/v1/facets').expect(429);
    expect(over.body.error.code).toBe('RATE_LIMITED');
    expect(over.headers['content-type']).toMatch(/json/);
    expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
    // A verified key has its own budget, apart from the address's.
    await request(limited).get('/v1/facets').set('X-API-Key', 'k1').expect(200);
    // Operations endpoints are not limited.
    await request(limited).get('/healthz').expect(200);
  });

  it('publishes an OpenAPI 3 document that lists every route and resolves every reference', async () => {
    const doc = (await request(app).get('/openapi.json').expect(200)).body;
    expect(doc.openapi).toMatch(/^3\.\d+\.\d+$/);
    expect(doc.info.title).toBe('Lookalike API');
    const served = (app.router.stack as { route?: { path: string; methods: Record<string, boolean> } }[])
      .filter((l) => l.route)
      .flatMap((l) => Object.keys(l.route!.methods).map((m) => `${m} ${l.route!.path.replace(/:(\w+)/g, '{$1}')}`));
    const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m} ${path}`),
    );
    expect(served.length).toBeGreaterThanOrEqual(15);
    expect(documented.sort()).toEqual(served.sort());
    for (const route of [
      'post /v1/search',
      'get /v1/images/{id}',
      'get /v1/images/{id}/thumbnail',
      'get /v1/images/{id}/original',
      'get /v1/images/{id}/similar',
      'post /v1/images',
      'get /v1/facets',
      'post /v1/ingest',
      'get /v1/jobs/{id}',
      'post /v1/audits',
      'get /v1/audits',
      'get /v1/audits/{id}',
      'get /v1/audits/{id}/report',
      'get /healthz',
      'get /readyz',
      'get /metrics',
      'get /openapi.json',
    ])
      expect(documented).toContain(route);
    const search = doc.paths['/v1/search'].post;
    expect(Object.keys(search.requestBody.content).sort()).toEqual(['application/json', 'multipart/form-data']);
    expect(search.responses['200'].content['application/json'].schema.$ref).toBe('#/components/schemas/SearchResponse');
    // Every $ref points at a component that exists; every operation documents its responses.
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1]!);
    for (const ref of new Set(refs)) expect(doc.components.schemas).toHaveProperty([ref]);
    for (const ops of Object.values(doc.paths as Record<string, Record<string, { responses: object }>>))
      for (const op of Object.values(ops)) expect(Object.keys(op.responses).length).toBeGreaterThan(0);
  });

  it('exposes request, embedding and search histograms and queue depths for Prometheus', async () => {
    const fresh = fx.app();
    await request(fresh).post('/v1/search').send({ text: 'a gear', k: 3 }).expect(200);
    await request(fresh).get('/v1/images/nothex/similar').expect(400);
    const res = await request(fresh).get('/metrics').expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    const text = res.text;
    expect(text).toMatch(
      /http_request_duration_seconds_bucket\{le="[^"]+",method="POST",route="\/v1\/search",status="200"\}/,
    );
    expect(text).toContain('route="/v1/images/:id/similar",status="400"');
    expect(text).toMatch(/lookalike_embed_duration_seconds_count\{encoder="robust",query="text"\} 1/);
    expect(text).toMatch(/lookalike_search_duration_seconds_count\{encoder="robust"\} 1/);
    expect(text).toMatch(/lookalike_queue_jobs\{queue="ingest",state="completed"\} \d+/);
    expect(text).toContain('process_cpu_user_seconds_total');
  });

  it('serves stored audits as JSON and the report as sandboxed HTML, and a typed 503 without an audit store', async () => {
    const audits = new FileAuditStore(join(fx.dir, 'audits'));
    const withAudits = fx.app({}, { audits });
    expect((await request(withAudits).get('/v1/audits').expect(200)).body).toEqual({ audits: [] });
    const older = auditResult('audit-2025-01-01', '2025-01-01T03:00:00.000Z');
    const newer = auditResult('audit-2025-01-02', '2025-01-02T03:00:00.000Z');
    for (const result of [older, newer]) await audits.save(result, await renderReport(result));
    const list = await request(withAudits).get('/v1/audits').expect(200);
    const listed = (list.body as { audits: AuditSummary[] }).audits;
    expect(listed.map((a) => a.id)).toEqual(['audit-2025-01-02', 'audit-2025-01-01']);
    expect(list.body.audits[0].headline).toContainEqual({
      encoder: 'clean',
      epsilon: 4 / 255,
      overlapAtK: 0.05,
      top1Retention: 0.05 * 0.9,
    });
    // Label precisions reach the list where the audit measured them, and are left out where it did not.
    const robustRow = (list.body as { audits: AuditSummary[] }).audits[0]!.headline.find(
      (row) => row.encoder === 'robust' && row.epsilon === 2 / 255,
    );
    expect(robustRow).toMatchObject({ partDefectAtK: 0.4, defectiveDefectAtK: 0.5 });
    expect((await request(withAudits).get('/v1/audits?limit=1').expect(200)).body.audits).toHaveLength(1);
    expect((await request(withAudits).get('/v1/audits/audit-2025-01-01').expect(200)).body).toEqual(older);
    const report = await request(withAudits).get('/v1/audits/audit-2025-01-02/report').expect(200);
    expect(report.headers['content-type']).toMatch(/^text\/html/);
    expect(report.headers['content-security-policy']).toMatch(/sandbox/);
    expect(report.text).toContain('<svg');
    expect((await request(withAudits).get('/v1/audits/nope').expect(404)).body.error.code).toBe('NOT_FOUND');
    await request(withAudits).get('/v1/audits/nope/report').expect(404);
    await request(withAudits).get('/v1/audits/..%2F..%2Fetc/report').expect(400);

    for (const path of ['/v1/audits', '/v1/audits/a1', '/v1/audits/a1/report']) {
      const res = await request(app).get(path).expect(503);
      expect(res.body.error).toMatchObject({
        code: 'AUDITS_UNAVAILABLE',
        message: expect.stringMatching(/no audit store/),
      });
    }
  });

  it('starts an audit on POST /v1/audits and serves it once its report is stored', async () => {
    const app = fx.app({}, { audits: fx.services.audits, auditDefaults: fx.services.auditDefaults });
    const bad = await request(app)
      .post('/v1/audits')
      .send({ epsilons: [2] })
      .expect(400);
    expect(bad.body.error.code).toBe('VALIDATION_FAILED');
    const accepted = await request(app)
      .post('/v1/audits')
      .send({
        queries: 3,
        epsilons: [0, 4 / 255],
        steps: 3,
        batchSize: 2,
        targetedQueries: 1,
        examples: 1,
        perceptual: { triplets: 3 },
      })
      .expect(202);
    const { auditId, finalJobId } = accepted.body as { auditId: string; finalJobId: string };
    expect(accepted.headers.location).toBe(`/v1/jobs/${finalJobId}`);
    let audit: request.Response | undefined;
    for (let i = 0; i < 600; i++) {
      audit = await request(app).get(`/v1/audits/${auditId}`);
      if (audit.status === 200) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(audit?.status).toBe(200);
    expect(audit?.body).toMatchObject({ id: auditId, queries: 3, epsilons: [0, 4 / 255], attack: { steps: 3 } });
    expect(audit?.body.perceptual.triplets).toMatchObject({ count: 3, seed: 33 });
    expect(audit?.body.perceptual.twoAfc).toHaveLength(4);
    expect((await request(app).get(`/v1/jobs/${finalJobId}`).expect(200)).body.state).toBe('completed');
    expect((await request(fx.app()).post('/v1/audits').send({}).expect(503)).body.error.code).toBe(
      'AUDITS_UNAVAILABLE',
    );
  });

  it('serves the web UI folder at / with index.html for its routes', async () => {
    const web = join(fx.dir, 'web');
    await mkdir(web, { recursive: true });
    await writeFile(join(web, 'index.html'), '<!doctype html><title>Lookalike</title><script src="/app.js"></script>');
    await writeFile(join(web, 'app.js'), 'console.log(1);');
    const ui = fx.app({}, { webRoot: web });
    for (const path of ['/', '/audits']) {
      const res = await request(ui).get(path).expect(200);
      expect(res.headers['content-type']).toMatch(/text\/html/);
      expect(res.text).toContain('<title>Lookalike</title>');
    }
    expect((await request(ui).get('/app.js').expect(200)).headers['content-type']).toMatch(/javascript/);
    await request(ui).get('/v1/nothing').expect(404);
    await request(ui).get('/../../etc/passwd').expect(404);
  });
});

describe('errorHandler', () => {
  const appThrowing = (error: unknown) => {
    const app = express();
    app.use((req, _res, next) => {
      req.log = logger;
      next();
    });
    app.use(express.json({ limit: 64 }));
    app.post('/x', () => {
      throw error;
    });
    app.use(errorHandler);
    return app;
  };

  it('keeps an AppError code and status', async () => {
    const res = await request(appThrowing(new AppError('IMAGE_TOO_MANY_PIXELS', 'too big')))
      .post('/x')
      .expect(413);
    expect(res.body.error.code).toBe('IMAGE_TOO_MANY_PIXELS');
  });

  it('hides internals of unexpected errors', async () => {
    const res = await request(appThrowing(new Error('db password is hunter2')))
      .post('/x')
      .expect(500);
    expect(res.body.error.code).toBe('INTERNAL');
    expect(JSON.stringify(res.body)).not.toContain('hunter2');
  });

  it('turns malformed and oversized JSON into client errors', async () => {
    const app = appThrowing(new Error('unreached'));
    const bad = await request(app).post('/x').set('content-type', 'application/json').send('{"a":').expect(400);
    expect(bad.body.error.code).toBe('VALIDATION_FAILED');
    const big = await request(app)
      .post('/x')
      .set('content-type', 'application/json')
      .send(JSON.stringify({ a: 'x'.repeat(500) }))
      .expect(413);
    expect(big.body.error.code).toBe('PAYLOAD_TOO_LARGE');
  });
});
