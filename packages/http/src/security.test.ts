/**
 * The outside probe of issue #21, replayed on loopback so that each hole it found stays closed: credentials in the
 * request log, ingest include patterns that leave INGEST_ROOTS, cross-site writes, foreign Host headers (DNS
 * rebinding), absolute server paths in responses, an existence oracle in ingest errors, `/metrics` without a key,
 * and SVGs refused for a comment or a long DOCTYPE. Every request goes through supertest to a server on 127.0.0.1.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import type { IngestFailure } from '@lookalike/ingest';
import type { Express } from 'express';
import { pino } from 'pino';
import sharp from 'sharp';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFixture, type Fixture } from './test-fixture.js';

let fx: Fixture;
let app: Express;
let outside: string;

beforeAll(async () => {
  fx = await buildFixture({ seed: 21, count: 6 });
  app = fx.app();
  outside = `${fx.dir}-outside`;
  await mkdir(outside, { recursive: true });
  await writeFile(join(outside, 'exists.png'), await readFile(fx.file(fx.records[0]!)));
});
afterAll(async () => {
  await fx?.close();
});

const sha256 = (text: string | Uint8Array) => createHash('sha256').update(text).digest('hex');

/** Polls `GET /v1/jobs/:id` (at most 30 s) until the run has finished. */
async function finished(target: Express, jobId: string): Promise<{ state: string; failed: IngestFailure[] }> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const res = await request(target).get(`/v1/jobs/${jobId}`).expect(200);
    const body = res.body as { state: string; failed: IngestFailure[] };
    if (body.state === 'completed' || body.state === 'failed') return body;
    if (Date.now() > deadline) throw new Error(`job ${jobId} did not finish: ${JSON.stringify(res.body)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Every string anywhere in `value`. */
function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(strings);
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(strings);
  return [];
}

/** Fails when a response body names a server path: the fixture's folder or any absolute path. */
function expectNoServerPaths(body: unknown, what: string): void {
  for (const s of strings(body)) {
    expect(s, what).not.toContain(fx.dir);
    expect(s.startsWith('/') && s.length > 1 && !s.startsWith('/v1/'), `${what}: ${s}`).toBe(false);
  }
}

describe('security probes (issue #21)', () => {
  it('writes no API key, bearer token, cookie or key-like query value to the request log', async () => {
    const lines: string[] = [];
    // A plain logger with no redaction of its own: the app must redact whatever logger it is given.
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    const withLogger = fx.app({ API_KEYS: `read:${sha256('bearer-secret-1')}` }, { logger });
    await request(withLogger).get('/v1/facets').set('Authorization', 'Bearer bearer-secret-1').expect(200);
    await request(withLogger).get('/v1/facets').set('X-API-Key', 'header-secret-2').expect(401);
    await request(withLogger)
      .get('/v1/facets?api_key=query-secret-3&token=query-secret-4&k=5')
      .set('Cookie', 'session=cookie-secret-5')
      .expect(401);
    const text = lines.join('');
    expect(lines.length).toBeGreaterThanOrEqual(3);
    expect(text).toContain('/v1/facets');
    for (const secret of ['bearer-secret-1', 'header-secret-2', 'query-secret-3', 'query-secret-4', 'cookie-secret-5'])
      expect(text, secret).not.toContain(secret);
    // The parameters stay readable; only their values go.
    expect(text).toContain('k=5');
  });

  it('refuses include patterns that leave the root before listing anything', async () => {
    for (const include of [
      ['../../../etc/*'],
      ['/etc/**'],
      ['**/*.png', '../*'],
      ['catalog/../../*'],
      ['\\.\\./\\.\\./etc/*'],
      ['..\\/..\\/etc/*'],
    ]) {
      const res = await request(app)
        .post('/v1/ingest')
        .send({ source: { kind: 'directory', root: '.', include } });
      expect(res.status, `${JSON.stringify(include)}: ${JSON.stringify(res.body)}`).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
      expect(res.body.error.message).toMatch(/include pattern/);
    }
  });

  it('refuses a pattern out of the root even when the job reaches the queue without the API', async () => {
    const runId = `probe-${sha256(String(Date.now())).slice(0, 8)}`;
    await fx.services.runner.enqueue(
      'ingest-run',
      { runId, source: { kind: 'directory', root: fx.dir, include: ['../*/*.png'] }, batchSize: 8 },
      { jobId: runId },
    );
    const run = await finished(app, runId);
    expect(run.state).toBe('failed');
    expect(JSON.stringify(run)).toMatch(/include pattern/);
    expectNoServerPaths(run, 'the failed run');
  });

  it('refuses cross-site writes from browsers, with keys or without, and lets same-origin and non-browser clients in', async () => {
    // An image in no catalog, so that an upload that got through would leave a file in uploads/.
    const flipped = await sharp(await readFile(fx.file(fx.records[1]!)))
      .flop()
      .png()
      .toBuffer();
    const crossSite = [
      { 'Sec-Fetch-Site': 'cross-site', Origin: 'https://evil.example' },
      { 'Sec-Fetch-Site': 'same-site', Origin: 'http://localhost:3000' },
      { Origin: 'https://evil.example' },
      { Origin: 'null' },
    ];
    const keyed = fx.app({ API_KEYS: `write:${sha256('writer-key')}` });
    for (const headers of crossSite) {
      for (const [target, key] of [
        [app, undefined],
        [keyed, 'writer-key'],
      ] as const) {
        const upload = request(target).post('/v1/images').set(headers).set('Host', 'localhost:8080');
        if (key) void upload.set('Authorization', `Bearer ${key}`);
        const res = await upload.attach('image', flipped, 'x.png');
        expect(res.status, `${JSON.stringify(headers)}: ${JSON.stringify(res.body)}`).toBe(403);
        expect(res.body.error.code).toBe('CROSS_SITE_REFUSED');
        const audit = request(target).post('/v1/audits').set(headers).set('Host', 'localhost:8080');
        if (key) void audit.set('X-API-Key', key);
        const started = await audit.set('Content-Type', 'text/plain').send('{}');
        expect(started.status, JSON.stringify(headers)).toBe(403);
        expect(started.body.error.code).toBe('CROSS_SITE_REFUSED');
      }
    }
    const uploads = await readdir(join(fx.dir, 'uploads')).catch(() => [] as string[]);
    expect(uploads.filter((f) => f.startsWith(sha256(flipped)))).toEqual([]);

    // The UI's own requests (same-origin), a typed URL (none) and clients that send neither header pass through.
    for (const headers of [
      { 'Sec-Fetch-Site': 'same-origin', Origin: 'http://localhost:8080' },
      { 'Sec-Fetch-Site': 'none' },
      { Origin: 'http://localhost:8080' },
      {},
    ]) {
      const res = await request(app)
        .post('/v1/ingest')
        .set(headers)
        .set('Host', 'localhost:8080')
        .send({ source: { kind: 'directory', root: 'no-such-folder' } });
      expect(res.status, `${JSON.stringify(headers)}: ${JSON.stringify(res.body)}`).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
    }
    // Reads stay open to cross-site requests: the browser keeps their answers from the page (no CORS headers).
    const read = await request(app).get('/v1/facets').set({ 'Sec-Fetch-Site': 'cross-site' }).expect(200);
    expect(read.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('answers only the Host names it is configured for (DNS rebinding)', async () => {
    for (const host of ['evil.example', 'evil.example:8080', '127.0.0.1.nip.io', 'localhost.evil.example']) {
      for (const path of ['/v1/facets', '/metrics', '/openapi.json', '/']) {
        const res = await request(app).get(path).set('Host', host);
        expect(res.status, `${host} ${path}`).toBe(403);
        expect(res.body.error.code, `${host} ${path}`).toBe('HOST_NOT_ALLOWED');
      }
    }
    for (const host of ['localhost', 'localhost:8080', '127.0.0.1:8080', '[::1]:8080', 'LOCALHOST:1'])
      await request(app).get('/v1/facets').set('Host', host).expect(200);
    const named = fx.app({ HOST: 'lookalike.internal', ALLOWED_HOSTS: 'search.example.com' });
    await request(named).get('/v1/facets').set('Host', 'search.example.com').expect(200);
    await request(named).get('/v1/facets').set('Host', 'lookalike.internal:8080').expect(200);
    await request(named).get('/v1/facets').set('Host', '127.0.0.1').expect(200);
    await request(named).get('/v1/facets').set('Host', 'evil.example').expect(403);
    // Bound to every interface, the default is loopback names only.
    await request(fx.app({ HOST: '0.0.0.0' }))
      .get('/v1/facets')
      .set('Host', '0.0.0.0:8080')
      .expect(403);
    await request(fx.app({ ALLOWED_HOSTS: '*' }))
      .get('/v1/facets')
      .set('Host', 'anything.example')
      .expect(200);
  });

  it('never sends an absolute server path: sources relative to their root, uploads by name', async () => {
    const record = fx.records[2]!;
    const id = sha256(await readFile(fx.file(record)));
    const image = await request(app).get(`/v1/images/${id}`).expect(200);
    expect(image.body.payload.source).toBe(`catalog/${record.file}`);
    expectNoServerPaths(image.body, 'GET /v1/images/:id');

    const search = await request(app).post('/v1/search').send({ text: 'a part', k: 5 }).expect(200);
    expect(search.body.hits.length).toBeGreaterThan(0);
    for (const hit of search.body.hits as { payload: { source: string } }[])
      expect(isAbsolute(hit.payload.source), hit.payload.source).toBe(false);
    expectNoServerPaths(search.body, 'POST /v1/search');

    const similar = await request(app).get(`/v1/images/${id}/similar?k=3`).expect(200);
    expectNoServerPaths(similar.body, 'GET /v1/images/:id/similar');

    const copy = await sharp(await readFile(fx.file(fx.records[3]!)))
      .flip()
      .png()
      .toBuffer();
    const created = await request(app).post('/v1/images?wait=true').attach('image', copy, 'copy.png');
    expect([201, 202]).toContain(created.status);
    if (created.status === 201) expect(created.body.payload.source).toMatch(/^upload:[0-9a-f]{64}\.png$/);
    expectNoServerPaths(created.body, 'POST /v1/images');
    const job = await request(app).get(`/v1/jobs/${created.body.jobId}`).expect(200);
    expectNoServerPaths(job.body, 'GET /v1/jobs/:id (upload)');

    await mkdir(join(fx.dir, 'probe', 'bad'), { recursive: true });
    await writeFile(join(fx.dir, 'probe', 'bad', 'not-an-image.png'), 'hello, I am text');
    const run = await request(app)
      .post('/v1/ingest')
      .send({ source: { kind: 'directory', root: 'probe' } })
      .expect(202);
    const status = await finished(app, run.body.jobId);
    expect(status.failed.map((f) => f.location)).toEqual(['probe/bad/not-an-image.png']);
    expectNoServerPaths(status, 'GET /v1/jobs/:id (ingest run)');

    for (const root of ['no-such-folder', '/etc', '../..']) {
      const refused = await request(app)
        .post('/v1/ingest')
        .send({ source: { kind: 'directory', root } })
        .expect(400);
      expectNoServerPaths(refused.body.error.message, `refusal of ${root}`);
    }
  });

  it('says the same about a path outside the roots whether or not it exists', async () => {
    const message = async (root: string) => {
      const res = await request(app)
        .post('/v1/ingest')
        .send({ source: { kind: 'directory', root } })
        .expect(400);
      return (res.body.error.message as string).replace(root, '<path>');
    };
    expect(await message(join(outside, 'exists.png'))).toBe(await message(join(outside, 'missing.png')));
    expect(await message(outside)).toBe(await message(`${outside}-missing`));
    expect(await message('/etc/passwd')).toBe(await message('/etc/no-such-file'));

    const manifest = join(fx.dir, 'oracle.jsonl');
    await writeFile(
      manifest,
      [join(outside, 'exists.png'), join(outside, 'missing.png')]
        .map((location) => JSON.stringify({ location }))
        .join('\n'),
    );
    const run = await request(app)
      .post('/v1/ingest')
      .send({ source: { kind: 'manifest', location: 'oracle.jsonl' } })
      .expect(202);
    const status = await finished(app, run.body.jobId);
    expect(status.failed).toHaveLength(2);
    expect(status.failed[0]!.reason).toBe(status.failed[1]!.reason);
    expect(status.failed[0]!.code).toBe(status.failed[1]!.code);
    expectNoServerPaths(status, 'GET /v1/jobs/:id (manifest)');
  });

  it('keeps /metrics behind a read key when read keys are configured', async () => {
    const keyed = fx.app({ API_KEYS: `read:${sha256('reader-key')},write:${sha256('writer-key')}` });
    const refused = await request(keyed).get('/metrics').expect(401);
    expect(refused.body.error.code).toBe('UNAUTHORIZED');
    await request(keyed).get('/metrics').set('Authorization', 'Bearer wrong').expect(401);
    const scraped = await request(keyed).get('/metrics').set('Authorization', 'Bearer reader-key').expect(200);
    expect(scraped.text).toContain('http_request_duration_seconds');
    await request(keyed).get('/metrics').set('X-API-Key', 'writer-key').expect(200);
    // Without read keys reading is open, and so are the metrics.
    await request(fx.app({ API_KEYS: `write:${sha256('writer-key')}` }))
      .get('/metrics')
      .expect(200);
    await request(app).get('/metrics').expect(200);
    // Liveness and readiness stay open for orchestrators.
    await request(keyed).get('/healthz').expect(200);
    await request(keyed).get('/readyz').expect(200);
  });

  it('accepts SVGs that begin with a comment, a processing instruction or a long DOCTYPE when SVG is allowed', async () => {
    const svgApp = fx.app({ ALLOW_SVG: 'true' });
    const body = '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16"><rect width="16" height="8"/></svg>';
    const doctype =
      '<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd" [\n' +
      `  <!-- ${'padding '.repeat(120)} -->\n]>\n`;
    for (const svg of [
      `<!-- Generator: Adobe Illustrator 27.0 -->\n${body}`,
      `<?xml version="1.0" encoding="UTF-8"?>\n<?xml-stylesheet type="text/css" href="data:,"?>\n${body}`,
      `<?xml version="1.0" standalone="no"?>\n<!-- exported -->\n${doctype}${body}`,
    ]) {
      const res = await request(svgApp).post('/v1/search').attach('image', Buffer.from(svg), 'x.svg').field('k', '3');
      expect(res.status, `${svg.slice(0, 60)}: ${JSON.stringify(res.body)}`).toBe(200);
    }
    // Still refused where SVG is not allowed, and markup that is not SVG is still not an image.
    const refused = await request(app)
      .post('/v1/search')
      .attach('image', Buffer.from(`<!-- x -->\n${body}`), 'x.svg');
    expect(refused.body.error.code).toBe('IMAGE_UNSUPPORTED_FORMAT');
    const html = await request(svgApp)
      .post('/v1/search')
      .attach('image', Buffer.from('<!-- x --><html><body><svg></svg></body></html>'), 'x.svg');
    expect(html.body.error.code).toBe('IMAGE_NOT_AN_IMAGE');
  });
});
