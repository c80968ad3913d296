/**
 * Issue #8: the search endpoints under load. A demo-sized catalog (`--images` synthetic 256 px PNGs, rendered and
 * ingested once through `createServices` and the in-process runner into bench/.cache/load-<images>) is served by a
 * real `createApp` on 127.0.0.1, and autocannon (on its own worker thread) drives `POST /v1/search` by `{ imageId }`
 * (random stored ids), by `{ text }` (catalog captions) and by an uploaded image (one multipart body with a 256 px
 * catalog PNG, built once), and `POST /v1/distance` by two stored ids and by an upload against a stored id, each
 * with `--connections` connections for `--duration` seconds. Reports req/s, p50/p99 latency
 * and errors (non-2xx responses, socket errors, timeouts), and FAILS (exit code 1) if there is any error.
 *
 * The API's rate limiter (RATE_LIMIT_PER_MINUTE, default 600 per key or address) would answer 429 to a load test
 * from one address within a second; the bench sets it to 1,000,000. Logging is silent (pino-http still runs).
 *
 *   npm run bench:load [-- --images 400 --connections 50 --duration 30 --endpoints id,text,image,distance-id,distance-image]
 *
 * Then memory under concurrent large uploads: `--big-uploads` (16) multipart searches at once, each a 6000 × 6000
 * (36 MP) JPEG, first through the API as it runs (query images decoded in the services' preprocessing pool, at most
 * two per thread at a time), then through an app that decodes each upload on its request (the baseline): peak RSS
 * above the RSS before each burst, and the ratio of the two.
 *
 * Writes bench/results/load.json and bench/results/load.md; prints peak RSS and the load average.
 *
 * One file over 400 lines on purpose: one benchmark, read top to bottom as its report is; the shared measuring
 * helpers are in `harness.ts`.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import sharp from 'sharp';
import { createApp, servicesDeps } from '@lookalike/http';
import { parseConfig, scrollPoints } from '@lookalike/core';
import type { BatchResult } from '@lookalike/ingest';
import type { InProcessJobRunner } from '@lookalike/queue';
import { createServices, type Services } from '@lookalike/services';
import { createRng, generateCatalog, type ManifestRecord } from '@lookalike/synth';
import { pino } from 'pino';
import { listen, mib, round, rssSampler } from './harness.js';

const { values } = parseArgs({
  options: {
    images: { type: 'string', default: '400' },
    connections: { type: 'string', default: '50' },
    duration: { type: 'string', default: '30' },
    endpoints: { type: 'string', default: 'id,text,image,distance-id,distance-image' },
    'big-uploads': { type: 'string', default: '16' },
    'big-upload-mode': { type: 'string' },
  },
});
const BIG_UPLOADS = Number(values['big-uploads']);
const IMAGES = Number(values.images);
const CONNECTIONS = Number(values.connections);
const DURATION = Number(values.duration);
const CACHE = resolve(`bench/.cache/load-${IMAGES}`);
const CATALOG = join(CACHE, 'catalog');

const rss = rssSampler();

const config = parseConfig({
  DATA_DIR: CACHE,
  INGEST_ROOTS: CACHE,
  MODELS_DIR: 'models',
  LOG_LEVEL: 'silent',
  // One address sends thousands of requests a minute here; the default 600 would turn most of them into 429s.
  RATE_LIMIT_PER_MINUTE: '1000000',
});

interface Row {
  endpoint: string;
  connections: number;
  seconds: number;
  reqPerSec: number;
  p50: number;
  p99: number;
  max: number;
  requests: number;
  non2xx: number;
  /** Socket errors, timeouts included. */
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  eventLoopDelayP99Ms: number;
  peakRssMiB: number;
}

interface BigUploadRow {
  mode: string;
  uploadBytes: number;
  ok: number;
  statuses: number[];
  seconds: number;
  startMiB: number;
  peakMiB: number;
  peakAboveStartMiB: number;
}

/** A 6000 × 6000 photo-like JPEG (blurred noise, so it compresses like a photo rather than a flat colour). */
async function bigJpeg(): Promise<Buffer> {
  const small = await sharp({
    create: {
      width: 750,
      height: 750,
      channels: 3,
      background: '#7a8088',
      noise: { type: 'gaussian', mean: 120, sigma: 40 },
    },
  })
    .png()
    .toBuffer();
  return sharp(small).resize(6000, 6000, { kernel: 'cubic' }).jpeg({ quality: 90 }).toBuffer();
}

const BIG_MODES = { pool: 'in the preprocessing pool (as served)', request: 'on each request (baseline)' } as const;
type BigMode = keyof typeof BIG_MODES;

/** The API on `services`, silent; query uploads decoded in the services' pool when `pool`, else on each request. */
function appOn(services: Services, pool: boolean): ReturnType<typeof createApp> {
  return createApp({
    config,
    logger: pino({ level: 'silent' }),
    ...servicesDeps(services),
    preparer: pool ? services.preparer : undefined,
  });
}

/**
 * The server side of one burst, in a process of its own (memory a burst leaves behind, and the client's copies of
 * the uploads, would otherwise count): serves an app over the cached catalog that decodes query uploads as `mode`
 * says, warms it up with one small upload (the pool thread starts), prints its port, and once BIG_UPLOADS searches
 * have been answered prints its row (peak RSS above the RSS before the burst) and exits.
 */
async function bigUploadServer(mode: BigMode): Promise<void> {
  const services = await createServices(config);
  const app = appOn(services, mode === 'pool');
  const { server, url, close } = await listen(app);
  const port = Number(new URL(url).port);
  const warm = new FormData();
  const small = await sharp(await bigJpeg())
    .resize(256)
    .jpeg()
    .toBuffer();
  warm.append('image', new Blob([small], { type: 'image/jpeg' }), 'small.jpg');
  await (await fetch(`http://127.0.0.1:${port}/v1/search`, { method: 'POST', body: warm })).arrayBuffer();
  await new Promise((r) => setTimeout(r, 1000));
  const start = process.memoryUsage().rss;
  rss.reset();
  const statuses: number[] = [];
  let first = 0;
  const done = new Promise<void>((resolve) =>
    server.on('request', (_req, res) => {
      first ||= performance.now();
      res.on('finish', () => statuses.push(res.statusCode) === BIG_UPLOADS && resolve());
    }),
  );
  process.stdout.write(JSON.stringify({ port }) + '\n');
  await done;
  const peak = rss.peak();
  const row: BigUploadRow = {
    mode: BIG_MODES[mode],
    uploadBytes: 0,
    ok: statuses.filter((s) => s === 200).length,
    statuses,
    seconds: round((performance.now() - first) / 1000, 1),
    startMiB: mib(start),
    peakMiB: mib(peak),
    peakAboveStartMiB: mib(peak - start),
  };
  process.stdout.write(JSON.stringify(row) + '\n');
  rss.stop();
  await close();
  await services.close();
}

/** Starts {@link bigUploadServer} for `mode` in a child process (same loader flags), sends the burst, returns its row. */
async function bigUploadBurst(mode: BigMode, jpeg: Buffer): Promise<BigUploadRow> {
  console.error(`${BIG_UPLOADS} concurrent 36 MP uploads, decoded ${BIG_MODES[mode]}...`);
  const child = spawn(
    process.execPath,
    [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2), '--big-upload-mode', mode],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    const line = await lines.next();
    if (line.done) throw new Error(`the ${mode} upload server exited early`);
    return JSON.parse(line.value) as Record<string, unknown>;
  };
  const { port } = (await next()) as { port: number };
  await Promise.all(
    Array.from({ length: BIG_UPLOADS }, async () => {
      const form = new FormData();
      form.append('image', new Blob([jpeg], { type: 'image/jpeg' }), 'big.jpg');
      await (await fetch(`http://127.0.0.1:${port}/v1/search`, { method: 'POST', body: form })).arrayBuffer();
    }),
  );
  const row = (await next()) as unknown as BigUploadRow;
  await new Promise((r) => child.once('exit', r));
  return { ...row, uploadBytes: jpeg.length };
}

async function main(): Promise<void> {
  const load: { start: number[]; end?: number[] } = { start: loadavg().map((x) => round(x)) };
  if (!existsSync(join(CATALOG, 'catalog.json'))) {
    console.error(`Rendering a ${IMAGES}-image catalog (256 px PNG) into ${CATALOG}...`);
    await generateCatalog({ count: IMAGES, seed: 1, outDir: CATALOG, size: 256, overwrite: true });
  }
  const records = (await readFile(join(CATALOG, 'manifest.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as ManifestRecord);
  const services = await createServices(config);
  try {
    if ((await services.store.count()) < IMAGES) {
      console.error(`Ingesting ${IMAGES} images into ${join(CACHE, 'store')} (once)...`);
      const runner = services.runner as InProcessJobRunner;
      const results: BatchResult[] = [];
      runner.events.on('completed', (_id, name, r) => name === 'ingest-batch' && results.push(r as BatchResult));
      await runner.enqueue('ingest-run', {
        runId: 'load',
        source: { kind: 'manifest', location: join(CATALOG, 'manifest.jsonl') },
        batchSize: 32,
      });
      await runner.idle();
      const failed = results.flatMap((r) => r.failed);
      if (failed.length) throw new Error(`the ingest refused ${failed.length} images: ${JSON.stringify(failed[0])}`);
    }
    // The steady state a server sees: compacted, ids indexed (the store does this by itself once ingest pauses).
    await services.store.optimize?.();
    const ids: string[] = [];
    for await (const p of scrollPoints(services.store)) ids.push(p.id);
    if (ids.length !== IMAGES) throw new Error(`the store holds ${ids.length} images, not ${IMAGES}`);

    const app = appOn(services, true);
    const { url, close } = await listen(app);

    const rng = createRng(IMAGES, 'load');
    const jsonInit = (body: unknown): RequestInit => ({
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const json = (body: unknown): autocannon.Request => ({
      method: 'POST',
      path: '/v1/search',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    // The query image: one catalog PNG. autocannon builds the multipart body (form-data) once from the file and
    // sends the same bytes every time (a Buffer body does not survive the copy to its worker thread).
    const queryFile = join(CATALOG, records[0]!.file);
    const png = await readFile(queryFile);
    const distance = (body: unknown): autocannon.Request => ({ ...json(body), path: '/v1/distance' });
    const searchForm = () => {
      const form = new FormData();
      form.append('k', '12');
      form.append('image', new Blob([png], { type: 'image/png' }), 'query.png');
      return form;
    };
    const distanceForm = () => {
      const form = new FormData();
      form.append('a', new Blob([png], { type: 'image/png' }), 'a.png');
      form.append('bId', ids[1]!);
      return form;
    };
    /** Each endpoint: its autocannon options, and one request sent by hand first with what a right answer holds. */
    const endpoints: Record<
      string,
      { name: string; options: autocannon.Options; probe: { path: string; init: RequestInit; key: string } }
    > = {
      id: {
        name: 'POST /v1/search { imageId }',
        options: { url, requests: Array.from({ length: 1000 }, () => json({ imageId: rng.pick(ids) })) },
        probe: { path: '/v1/search', init: { ...jsonInit({ imageId: ids[0] }) }, key: 'hits' },
      },
      text: {
        name: 'POST /v1/search { text }',
        options: { url, requests: Array.from({ length: 1000 }, () => json({ text: rng.pick(records).caption })) },
        probe: { path: '/v1/search', init: jsonInit({ text: records[0]!.caption }), key: 'hits' },
      },
      image: {
        name: `POST /v1/search multipart image (${(png.length / 1024).toFixed(0)} KiB PNG)`,
        options: {
          url: `${url}/v1/search`,
          method: 'POST',
          form: {
            k: { type: 'text', value: '12' },
            image: { type: 'file', path: queryFile, options: { contentType: 'image/png' } },
          },
        },
        probe: { path: '/v1/search', init: { method: 'POST', body: searchForm() }, key: 'hits' },
      },
      'distance-id': {
        name: 'POST /v1/distance { aId, bId }',
        options: {
          url,
          requests: Array.from({ length: 1000 }, () => distance({ aId: rng.pick(ids), bId: rng.pick(ids) })),
        },
        probe: { path: '/v1/distance', init: jsonInit({ aId: ids[0], bId: ids[1] }), key: 'towers' },
      },
      'distance-image': {
        name: `POST /v1/distance multipart a (${(png.length / 1024).toFixed(0)} KiB PNG) + bId`,
        options: {
          url: `${url}/v1/distance`,
          method: 'POST',
          form: {
            a: { type: 'file', path: queryFile, options: { contentType: 'image/png' } },
            bId: { type: 'text', value: ids[1]! },
          },
        },
        probe: { path: '/v1/distance', init: { method: 'POST', body: distanceForm() }, key: 'towers' },
      },
    };

    // Each endpoint once by hand first: a wrong request would otherwise show up only as non-2xx counts.
    for (const key of values.endpoints.split(',')) {
      const endpoint = endpoints[key];
      if (!endpoint) throw new Error(`unknown endpoint ${key}; use ${Object.keys(endpoints).join(', ')}`);
      const res = await fetch(`${url}${endpoint.probe.path}`, endpoint.probe.init);
      const body = (await res.json()) as Record<string, unknown>;
      if (res.status !== 200 || !body[endpoint.probe.key])
        throw new Error(`${endpoint.name} answered ${res.status}: ${JSON.stringify(body).slice(0, 300)}`);
    }

    const rows: Row[] = [];
    try {
      for (const key of values.endpoints.split(',')) {
        const { name, options } = endpoints[key]!;
        console.error(`autocannon: ${name}, ${CONNECTIONS} connections, ${DURATION} s`);
        const delay = monitorEventLoopDelay({ resolution: 10 });
        rss.reset();
        delay.enable();
        const r = await autocannon({ ...options, connections: CONNECTIONS, duration: DURATION, workers: 1 });
        delay.disable();
        rows.push({
          endpoint: name,
          connections: CONNECTIONS,
          seconds: DURATION,
          reqPerSec: round(r.requests.average, 1),
          p50: r.latency.p50,
          p99: r.latency.p99,
          max: r.latency.max,
          requests: r.requests.total,
          non2xx: r.non2xx,
          errors: r.errors,
          timeouts: r.timeouts,
          statusCodes: Object.fromEntries(
            Object.entries(r.statusCodeStats ?? {}).map(([code, s]) => [code, s.count ?? 0]),
          ),
          eventLoopDelayP99Ms: round(delay.percentile(99) / 1e6, 1),
          peakRssMiB: mib(rss.peak()),
        });
      }
    } finally {
      await close();
    }
    const big: BigUploadRow[] = [];
    if (BIG_UPLOADS > 0) {
      const jpeg = await bigJpeg();
      for (const mode of ['pool', 'request'] as const) big.push(await bigUploadBurst(mode, jpeg));
    }
    rss.stop();
    load.end = loadavg().map((x) => round(x));

    const failed = rows.filter((r) => r.non2xx > 0 || r.errors > 0 || r.timeouts > 0);
    const out = {
      date: new Date().toISOString(),
      cpu: cpus()[0]?.model,
      cores: availableParallelism(),
      loadAverage: load,
      images: IMAGES,
      rateLimitPerMinute: config.api.rateLimitPerMinute,
      rows,
      bigUploads: big.length
        ? {
            uploads: BIG_UPLOADS,
            rows: big,
            poolOverBaseline: round(big[0]!.peakAboveStartMiB / big[1]!.peakAboveStartMiB),
          }
        : undefined,
      pass: failed.length === 0 && big.every((b) => b.ok === BIG_UPLOADS),
    };
    const md = [
      `${IMAGES}-image catalog (256 px PNG), embedded store, tiny towers; ${CONNECTIONS} connections × ${DURATION} s per ` +
        `endpoint; ${availableParallelism()} cores, load average ${load.start.join(' / ')} at start, ` +
        `${load.end.join(' / ')} at the end; RATE_LIMIT_PER_MINUTE=${config.api.rateLimitPerMinute}.`,
      '',
      '| endpoint | req/s | p50 ms | p99 ms | max ms | requests | non-2xx | socket errors | timeouts | loop delay p99 ms | peak RSS MiB |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
      ...rows.map(
        (r) =>
          `| ${r.endpoint} | ${r.reqPerSec} | ${r.p50} | ${r.p99} | ${r.max} | ${r.requests} | ${r.non2xx} | ` +
          `${r.errors} | ${r.timeouts} | ${r.eventLoopDelayP99Ms} | ${r.peakRssMiB} |`,
      ),
      ...(big.length
        ? [
            '',
            `${BIG_UPLOADS} concurrent searches by upload of a 6000 × 6000 JPEG (36 MP, ` +
              `${(big[0]!.uploadBytes / 2 ** 20).toFixed(1)} MiB), where the query image is decoded:`,
            '',
            '| decoded | ok | seconds | RSS before MiB | peak RSS MiB | peak above before MiB |',
            '| --- | --- | --- | --- | --- | --- |',
            ...big.map(
              (b) =>
                `| ${b.mode} | ${b.ok}/${BIG_UPLOADS} | ${b.seconds} | ${b.startMiB} | ${b.peakMiB} | ${b.peakAboveStartMiB} |`,
            ),
            '',
            `Peak above before, pool ÷ baseline: ${out.bigUploads!.poolOverBaseline}.`,
          ]
        : []),
    ];
    await mkdir('bench/results', { recursive: true });
    await writeFile('bench/results/load.json', JSON.stringify(out, null, 2) + '\n');
    await writeFile('bench/results/load.md', md.join('\n') + '\n');
    console.log(md.join('\n'));
    console.log(`\nPeak RSS ${Math.max(...rows.map((r) => r.peakRssMiB))} MiB.`);
    for (const b of big.filter((b) => b.ok !== BIG_UPLOADS))
      console.error(
        `FAIL: big uploads decoded ${b.mode}: ${b.ok}/${BIG_UPLOADS} answered 200 (${b.statuses.join(',')})`,
      );
    if (!out.pass) {
      for (const r of failed)
        console.error(
          `FAIL: ${r.endpoint}: ${r.non2xx} non-2xx (${JSON.stringify(r.statusCodes)}), ${r.errors} socket errors, ` +
            `${r.timeouts} timeouts`,
        );
      process.exitCode = 1;
    } else console.log('PASS: no errors.');
  } finally {
    rss.stop();
    await services.close();
  }
}

const childMode = values['big-upload-mode'];
if (childMode === undefined) await main();
else if (childMode in BIG_MODES) await bigUploadServer(childMode as BigMode);
else throw new Error(`--big-upload-mode must be pool or request, not ${childMode}`);
