/**
 * Issue #6: search at 100,000 points on the embedded store. Builds (once, cached in bench/.cache/search-100k) a
 * store of `--points` points with both towers' vectors and catalog-like payloads, calls `optimize()` so that the
 * HNSW-SQ index exists, then measures in one run:
 *
 * - recall@k of the ANN path against exact search (`exact: true`) over `--queries` held-out query vectors, per tower,
 *   without and with a `labels.part` filter, and the in-process latency of both (exact is the baseline);
 * - the store's vector search in-process at `--connections` concurrent callers (the API has no search by vector);
 * - autocannon against a real `createApp` on 127.0.0.1: `POST /v1/search` by `{ imageId }` (random stored ids) and by
 *   `{ text }` (catalog captions), on the ANN path and, as the baseline, on an app whose store searches exactly;
 * - a sweep of the HNSW query parameters (`ef`, refine factor, nprobes, and k up to 100) straight on the LanceDB
 *   table, since the store fixes them (`refineFactor(5)`, `ef(max(128, 5k))`), and which k the store's own search
 *   answers once the index exists;
 * - the lookup by id a search by id starts with (`id IN (…)`), with the BTREE index on `id` that `optimize()` builds
 *   and, as the baseline, on a copy of the table without it (a scan of the column), also behind a real app.
 *
 * The points: real embeddings of `--seeds` synthetic catalog images (rendered at 128 px, embedded by the committed
 * tiny towers) are the seed set; every other point is a perturbation of a seed: the seed's vector plus isotropic
 * gaussian noise, re-normalised, with the noise scaled per point so that its cosine to the seed is uniform in
 * [NOISE.minCos, NOISE.maxCos] (near-duplicates and edited variants of a product, as an archive holds them), and
 * the seed's caption and labels. Rendering and embedding 100,000 images would take about half an hour on two cores;
 * perturbed vectors give the index the same size and a clustered layout, not the same distribution as real photos.
 * The queries are real embeddings of `--queries` further catalog images that are not in the store.
 *
 *   npm run bench:search [-- --points 100000 --seeds 2000 --queries 500 --k 10 --connections 1,10 --duration 10
 *                            --sweep-queries 200 --rebuild]
 *
 * Writes bench/results/search.json and bench/results/search.md; prints peak RSS.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as lancedb from '@lancedb/lancedb';
import autocannon from 'autocannon';
import { createApp, servicesDeps } from '@lookalike/http';
import {
  ENCODER_ROLES,
  parseConfig,
  type EncoderRole,
  type Filter,
  type Point,
  type PointPayload,
  type SearchHit,
  type VectorStore,
} from '@lookalike/core';
import { decodeImage, preprocessBatch } from '@lookalike/imaging';
import { createServices, type Services } from '@lookalike/services';
import { EmbeddedVectorStore } from '@lookalike/store-embedded';
import { createRng, generateCatalog, type ManifestRecord } from '@lookalike/synth';
import { pino } from 'pino';

const { values } = parseArgs({
  options: {
    points: { type: 'string', default: '100000' },
    seeds: { type: 'string', default: '2000' },
    queries: { type: 'string', default: '500' },
    k: { type: 'string', default: '10' },
    connections: { type: 'string', default: '1,10' },
    duration: { type: 'string', default: '10' },
    'sweep-queries': { type: 'string', default: '200' },
    rebuild: { type: 'boolean', default: false },
  },
});
const POINTS = Number(values.points);
const SEEDS = Number(values.seeds);
const QUERIES = Number(values.queries);
const K = Number(values.k);
const CONNECTIONS = values.connections.split(',').map(Number);
const DURATION = Number(values.duration);
const SWEEP_QUERIES = Math.min(Number(values['sweep-queries']), QUERIES);
const CACHE = `bench/.cache/search-${POINTS % 1000 === 0 ? `${POINTS / 1000}k` : POINTS}`;
/** Cosine of a perturbed point to its seed: uniform in this range. */
const NOISE = { minCos: 0.9, maxCos: 0.99 } as const;
const CATALOG_SEED = 23;
/** The store's own query settings (packages/store-embedded `search`), for comparison in the sweep. */
const STORE_SETTINGS = { ef: Math.max(128, 2 * K), refineFactor: 5 };
/** ef ≥ k × refine factor, or LanceDB refuses the query ("ef must be greater than or equal to k"). */
const SWEEP: { k: number; ef: number; refineFactor?: number; nprobes?: number }[] = [
  { k: K, ef: 16 },
  { k: K, ef: 32 },
  { k: K, ef: 64 },
  { k: K, ef: 128 },
  { k: K, ef: 256 },
  { k: K, ef: 32, refineFactor: 1 },
  { k: K, ef: 128, refineFactor: 1 },
  { k: K, ef: 50, refineFactor: 5 },
  { k: K, ef: 128, refineFactor: 5 },
  { k: K, ef: 256, refineFactor: 5 },
  { k: K, ef: 128, refineFactor: 10 },
  // IVF partitions probed (LanceDB's default is 20): equal recall at 1 means the index has a single partition.
  { k: K, ef: 128, refineFactor: 5, nprobes: 1 },
  // Larger k (the API allows up to 100, and a search by id asks for k + 1): what the store would need.
  { k: 26, ef: 130, refineFactor: 5 },
  { k: 50, ef: 250, refineFactor: 5 },
  { k: 100, ef: 500, refineFactor: 5 },
  { k: 100, ef: 200, refineFactor: 2 },
  { k: 100, ef: 200 },
];
/** The k the store is asked for in the large-k check: the API allows k ≤ 100, a search by id asks for k + 1. */
const LARGE_K = [10, 25, 26, 50, 101];

interface Query {
  /** The catalog record id (`s23-002000`); the image is not in the store. */
  record: string;
  part: string;
  vectors: Record<EncoderRole, number[]>;
}

interface Meta {
  points: number;
  seeds: number;
  queries: number;
  noise: typeof NOISE;
  catalogSeed: number;
  /** Cosine of each seed to its nearest other seed (real embeddings), per tower: median and 10th/90th percentiles. */
  seedNearestCos: Record<EncoderRole, { p10: number; p50: number; p90: number }>;
  buildSeconds: { render: number; embed: number; upsert: number; optimize: number };
}

// ---------------------------------------------------------------------------------------------------------------
// Small helpers

let peakRss = process.memoryUsage().rss;
const rssSampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
const mib = (bytes: number) => Math.round(bytes / 2 ** 20);
const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function latencySummary(ms: number[]) {
  const sorted = [...ms].sort((a, b) => a - b);
  return { p50: round(percentile(sorted, 50)), p99: round(percentile(sorted, 99)), max: round(sorted.at(-1) ?? NaN) };
}

const mean = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;

function normalizeInPlace(v: Float32Array): Float32Array {
  let n = 0;
  for (const x of v) n += x * x;
  n = Math.sqrt(n);
  for (let i = 0; i < v.length; i++) v[i]! /= n;
  return v;
}

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** A standard normal draw (Box–Muller) from a seeded uniform source. */
function gaussian(next: () => number): number {
  const u = 1 - next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
}

/**
 * The seed vector plus isotropic noise, re-normalised, with the noise's norm chosen so that the result's cosine to
 * the seed is `cos` (up to the small angle the noise has with the seed itself).
 */
function perturb(seed: Float32Array, cos: number, next: () => number): Float32Array {
  const d = seed.length;
  const noise = new Float32Array(d);
  for (let i = 0; i < d; i++) noise[i] = gaussian(next);
  // Remove the component along the seed, so that the noise is orthogonal and the cosine is exactly `cos`.
  const along = cosine(noise, seed);
  for (let i = 0; i < d; i++) noise[i]! -= along * seed[i]!;
  normalizeInPlace(noise);
  const sin = Math.sqrt(1 - cos * cos);
  const out = new Float32Array(d);
  for (let i = 0; i < d; i++) out[i] = cos * seed[i]! + sin * noise[i]!;
  return normalizeInPlace(out);
}

const sha256 = (data: string | Uint8Array) => createHash('sha256').update(data).digest('hex');

// ---------------------------------------------------------------------------------------------------------------
// Building the cached store

function configFor() {
  return parseConfig({
    DATA_DIR: CACHE,
    INGEST_ROOTS: CACHE,
    MODELS_DIR: 'models',
    LOG_LEVEL: 'silent',
    // A benchmark sends far more than the default 600 requests a minute from one address.
    RATE_LIMIT_PER_MINUTE: '1000000',
  });
}

async function isBuilt(): Promise<Meta | undefined> {
  if (values.rebuild || !existsSync(join(CACHE, 'meta.json'))) return undefined;
  const meta = JSON.parse(await readFile(join(CACHE, 'meta.json'), 'utf8')) as Meta;
  const same =
    meta.points === POINTS &&
    meta.seeds === SEEDS &&
    meta.queries === QUERIES &&
    meta.catalogSeed === CATALOG_SEED &&
    meta.noise.minCos === NOISE.minCos &&
    meta.noise.maxCos === NOISE.maxCos;
  return same ? meta : undefined;
}

/** Renders the catalog, embeds it, writes the points and the held-out queries, and builds the index. */
async function build(): Promise<Meta> {
  await rm(CACHE, { recursive: true, force: true });
  await mkdir(CACHE, { recursive: true });
  const catalogDir = join(CACHE, 'catalog');
  console.error(`Rendering ${SEEDS + QUERIES} catalog images (128 px) into ${catalogDir}...`);
  let t0 = performance.now();
  await generateCatalog({ count: SEEDS + QUERIES, seed: CATALOG_SEED, outDir: catalogDir, size: 128 });
  const render = (performance.now() - t0) / 1000;
  const records = (await readFile(join(catalogDir, 'manifest.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as ManifestRecord);

  const services = await createServices(configFor());
  try {
    console.error(`Embedding ${records.length} images with both towers...`);
    t0 = performance.now();
    const embedded: { record: ManifestRecord; bytes: Buffer; vectors: Record<EncoderRole, Float32Array> }[] = [];
    const CHUNK = 32;
    for (let i = 0; i < records.length; i += CHUNK) {
      const chunk = records.slice(i, i + CHUNK);
      const bytes = await Promise.all(chunk.map((r) => readFile(join(catalogDir, r.file))));
      const images = await Promise.all(bytes.map((b) => decodeImage(b)));
      const vectors = await Promise.all(
        ENCODER_ROLES.map((role) =>
          services.encoders[role].embed(preprocessBatch(images, services.encoders[role].info.preprocess)),
        ),
      );
      chunk.forEach((record, j) =>
        embedded.push({
          record,
          bytes: bytes[j]!,
          vectors: Object.fromEntries(ENCODER_ROLES.map((r, k) => [r, vectors[k]![j]!])) as Record<
            EncoderRole,
            Float32Array
          >,
        }),
      );
    }
    const embed = (performance.now() - t0) / 1000;
    const seeds = embedded.slice(0, SEEDS);
    const held = embedded.slice(SEEDS);

    // How close real catalog images are to each other, so the noise scale can be read against it.
    const seedNearestCos = Object.fromEntries(
      ENCODER_ROLES.map((role) => {
        const nearest = seeds.map((a, i) => {
          let best = -1;
          seeds.forEach((b, j) => {
            if (i !== j) best = Math.max(best, cosine(a.vectors[role], b.vectors[role]));
          });
          return best;
        });
        nearest.sort((x, y) => x - y);
        return [
          role,
          {
            p10: round(percentile(nearest, 10), 4),
            p50: round(percentile(nearest, 50), 4),
            p90: round(percentile(nearest, 90), 4),
          },
        ];
      }),
    ) as Meta['seedNearestCos'];

    const provenance = Object.fromEntries(
      ENCODER_ROLES.map((r) => [
        r,
        { modelId: services.encoders[r].info.id, preprocessHash: services.encoders[r].info.preprocessHash },
      ]),
    ) as PointPayload['embeddings'];
    const ingestedAt = new Date().toISOString();
    const seedPayload = (s: (typeof seeds)[number], id: string): PointPayload => ({
      id,
      source: join(catalogDir, s.record.file),
      format: 'png',
      width: 128,
      height: 128,
      bytes: s.bytes.length,
      caption: s.record.caption,
      labels: { ...s.record.labels },
      metadata: { externalId: s.record.id },
      ingestedAt,
      embeddings: provenance,
    });

    const perSeed = Math.ceil(POINTS / SEEDS);
    const ids: string[] = [];
    const page: Point[] = [];
    t0 = performance.now();
    const flush = async () => {
      await services.store.upsert(page);
      page.length = 0;
    };
    console.error(`Writing ${POINTS} points (${SEEDS} real, the rest perturbed) to the embedded store...`);
    for (let j = 0; j < perSeed && ids.length < POINTS; j++) {
      for (const s of seeds) {
        if (ids.length >= POINTS) break;
        if (j === 0) {
          const id = sha256(s.bytes);
          page.push({ id, vectors: s.vectors, payload: seedPayload(s, id) });
          ids.push(id);
        } else {
          const rng = createRng(CATALOG_SEED, s.record.id, j);
          const cos = rng.range(NOISE.minCos, NOISE.maxCos);
          const next = () => rng.next();
          const id = sha256(`perturbation:${s.record.id}:${j}`);
          page.push({
            id,
            vectors: Object.fromEntries(ENCODER_ROLES.map((r) => [r, perturb(s.vectors[r], cos, next)])) as Record<
              EncoderRole,
              Float32Array
            >,
            payload: {
              ...seedPayload(s, id),
              source: `synthetic:perturbation/${s.record.id}/${j}`,
              metadata: { externalId: `${s.record.id}~${j}`, derivedFrom: s.record.id, cosToSeed: round(cos, 4) },
            },
          });
          ids.push(id);
        }
        if (page.length >= 5000) await flush();
      }
    }
    await flush();
    const upsert = (performance.now() - t0) / 1000;
    console.error(`Stored ${await services.store.count()} points in ${upsert.toFixed(0)} s; building the index...`);
    t0 = performance.now();
    const { indexed } = await services.store.optimize!();
    const optimize = (performance.now() - t0) / 1000;
    if (!indexed) throw new Error(`optimize() left the vector index out of step with the table at ${POINTS} points`);

    const queries: Query[] = held.map((h) => ({
      record: h.record.id,
      part: h.record.labels.part,
      vectors: Object.fromEntries(ENCODER_ROLES.map((r) => [r, Array.from(h.vectors[r])])) as Query['vectors'],
    }));
    await writeFile(join(CACHE, 'queries.json'), JSON.stringify(queries));
    await writeFile(join(CACHE, 'ids.json'), JSON.stringify(ids));
    await writeFile(
      join(CACHE, 'captions.json'),
      JSON.stringify([...new Set(seeds.map((s) => s.record.caption))].slice(0, 1000)),
    );
    const meta: Meta = {
      points: POINTS,
      seeds: SEEDS,
      queries: QUERIES,
      noise: NOISE,
      catalogSeed: CATALOG_SEED,
      seedNearestCos,
      buildSeconds: {
        render: round(render, 1),
        embed: round(embed, 1),
        upsert: round(upsert, 1),
        optimize: round(optimize, 1),
      },
    };
    // Written last: a store with meta.json is complete.
    await writeFile(join(CACHE, 'meta.json'), JSON.stringify(meta, null, 2) + '\n');
    return meta;
  } finally {
    await services.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Measuring

/** The same store with every search exact: the brute-force baseline behind a real app. */
function exactStore(inner: VectorStore): VectorStore {
  return {
    ensureCollection: (spec) => inner.ensureCollection(spec),
    upsert: (points) => inner.upsert(points),
    search: (query) => inner.search({ ...query, exact: true }),
    get: (ids, options) => inner.get(ids, options),
    delete: (ids) => inner.delete(ids),
    count: (filter) => inner.count(filter),
    scroll: (options) => inner.scroll(options),
    ping: () => inner.ping(),
    close: () => Promise.resolve(),
  };
}

const recallOf = (ann: readonly { id: string }[], exact: readonly { id: string }[]) => {
  if (exact.length === 0) return 1;
  const truth = new Set(exact.map((h) => h.id));
  return ann.filter((h) => truth.has(h.id)).length / exact.length;
};

interface RecallRow {
  tower: EncoderRole;
  filter: 'none' | 'labels.part';
  queries: number;
  recallAtK: number;
  /** Worst single query. */
  minRecall: number;
  annMs: ReturnType<typeof latencySummary>;
  exactMs: ReturnType<typeof latencySummary>;
}

/** Recall@K of the store's ANN path against its exact path, and both latencies, one query at a time. */
async function recall(store: VectorStore, queries: Query[], tower: EncoderRole, filtered: boolean): Promise<RecallRow> {
  const recalls: number[] = [];
  const ann: number[] = [];
  const exact: number[] = [];
  for (const q of queries) {
    const vector = Float32Array.from(q.vectors[tower]);
    const filter: Filter | undefined = filtered ? { must: [{ field: 'labels.part', match: q.part }] } : undefined;
    const base = { vector, using: tower, k: K, ...(filter ? { filter } : {}) };
    let t = performance.now();
    const a: SearchHit[] = await store.search(base);
    ann.push(performance.now() - t);
    t = performance.now();
    const e: SearchHit[] = await store.search({ ...base, exact: true });
    exact.push(performance.now() - t);
    recalls.push(recallOf(a, e));
  }
  return {
    tower,
    filter: filtered ? 'labels.part' : 'none',
    queries: queries.length,
    recallAtK: round(mean(recalls), 4),
    minRecall: round(Math.min(...recalls), 2),
    annMs: latencySummary(ann),
    exactMs: latencySummary(exact),
  };
}

/** `concurrency` callers in a closed loop for `seconds`: throughput and latency percentiles. */
async function closedLoop(fn: (i: number) => Promise<unknown>, concurrency: number, seconds: number) {
  const latencies: number[] = [];
  const started = performance.now();
  const end = started + seconds * 1000;
  let i = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        await fn(i++);
        latencies.push(performance.now() - t);
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  return { reqPerSec: round(latencies.length / elapsed, 1), ...latencySummary(latencies) };
}

interface SweepRow {
  tower: EncoderRole;
  k: number;
  ef: number;
  refineFactor: number | 'none';
  nprobes: number | 'default';
  recallAtK: number;
  p50: number;
  p99: number;
}

/** The largest k of the sweep: exact neighbours are computed once at this depth and cut to each row's k. */
const TRUTH_K = Math.max(...SWEEP.map((s) => s.k));

/**
 * Recall and latency of HNSW query parameters straight on the LanceDB table (the store fixes them), with the
 * columns the store selects. `truth` holds the exact top-{@link TRUTH_K} ids per `tower:record`.
 */
async function sweep(queries: Query[], truth: Map<string, string[]>): Promise<{ rows: SweepRow[]; indexes: unknown }> {
  const db = await lancedb.connect(join(CACHE, 'store'));
  const table = await db.openTable(configFor().store.collection);
  const rows: SweepRow[] = [];
  try {
    for (const tower of ENCODER_ROLES)
      for (const setting of SWEEP) {
        const recalls: number[] = [];
        const ms: number[] = [];
        for (const q of queries) {
          const t = performance.now();
          let query = table
            .vectorSearch(q.vectors[tower])
            .column(tower)
            .distanceType('cosine')
            .select(['id', 'payload', '_distance'])
            .limit(setting.k)
            .ef(setting.ef);
          if (setting.refineFactor !== undefined) query = query.refineFactor(setting.refineFactor);
          if (setting.nprobes !== undefined) query = query.nprobes(setting.nprobes);
          const hits = (await query.toArray()) as { id: string }[];
          ms.push(performance.now() - t);
          const exact = (truth.get(`${tower}:${q.record}`) ?? []).slice(0, setting.k);
          recalls.push(
            recallOf(
              hits,
              exact.map((id) => ({ id })),
            ),
          );
        }
        const lat = latencySummary(ms);
        rows.push({
          tower,
          k: setting.k,
          ef: setting.ef,
          refineFactor: setting.refineFactor ?? 'none',
          nprobes: setting.nprobes ?? 'default',
          recallAtK: round(mean(recalls), 4),
          p50: lat.p50,
          p99: lat.p99,
        });
      }
    const indexes = await Promise.all(
      (await table.listIndices()).map(async (i) => ({ ...i, stats: await table.indexStats(i.name) })),
    );
    return { rows, indexes };
  } finally {
    table.close();
    db.close();
  }
}

/** Whether the store's own search answers at each k of {@link LARGE_K} once the index exists. */
async function largeK(store: VectorStore, q: Query): Promise<{ k: number; ok: boolean; error?: string }[]> {
  const out: { k: number; ok: boolean; error?: string }[] = [];
  for (const k of LARGE_K) {
    try {
      const hits = await store.search({ vector: Float32Array.from(q.vectors.robust), using: 'robust', k });
      out.push({ k, ok: hits.length === k });
    } catch (error) {
      out.push({ k, ok: false, error: (error as Error).message.split(',')[0] });
    }
  }
  return out;
}

/**
 * A copy of the cached store without the BTREE index on `id` that `optimize()` builds, in a temp folder: the baseline
 * for lookups by id (`id IN (…)`) as they were before the index, a scan of the column.
 */
async function copyWithoutIdIndex(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-search-no-id-index-'));
  await cp(join(CACHE, 'store'), dir, { recursive: true });
  const db = await lancedb.connect(dir);
  const table = await db.openTable(configFor().store.collection);
  const index = (await table.listIndices()).find((i) => i.columns.join(',') === 'id');
  if (!index) throw new Error('the cached store has no index on id: optimize() builds one; run with --rebuild');
  await table.dropIndex(index.name);
  table.close();
  db.close();
  return dir;
}

/** What a search by id does first: read the point's vectors by id, as the store queries it; in `dir`. */
async function idLookup(dir: string, ids: string[]) {
  const db = await lancedb.connect(dir);
  const table = await db.openTable(configFor().store.collection);
  const ms: number[] = [];
  try {
    for (let i = 0; i < 200; i++) {
      const id = ids[(i * 7919) % ids.length]!;
      const t = performance.now();
      const rows = await table
        .query()
        .where(`id IN ('${id}')`)
        .select(['id', 'payload', ...ENCODER_ROLES])
        .limit(3)
        .toArray();
      ms.push(performance.now() - t);
      if (rows.length !== 1) throw new Error(`id ${id} gave ${rows.length} rows`);
    }
  } finally {
    table.close();
    db.close();
  }
  return latencySummary(ms);
}

interface HttpRow {
  endpoint: string;
  path: 'ann' | 'exact' | 'ann, no index on id (before)';
  connections: number;
  reqPerSec: number;
  p50: number;
  p99: number;
  requests: number;
  non2xx: number;
  errors: number;
}

async function listen(app: ReturnType<typeof createApp>): Promise<{ server: Server; url: string }> {
  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** autocannon on its own worker thread, so that the client does not share the server's event loop. */
async function cannon(url: string, requests: autocannon.Request[], connections: number, duration: number) {
  const result = await autocannon({ url, connections, duration, workers: 1, timeout: 10, requests });
  return {
    reqPerSec: round(result.requests.average, 1),
    p50: result.latency.p50,
    p99: result.latency.p99,
    requests: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
  };
}

async function http(
  services: Services,
  ids: string[],
  captions: string[],
  withoutIdIndex: VectorStore,
): Promise<HttpRow[]> {
  const logger = pino({ level: 'silent' });
  const deps = { config: configFor(), logger, ...servicesDeps(services) };
  const ann = await listen(createApp({ ...deps, store: services.store }));
  const exact = await listen(createApp({ ...deps, store: exactStore(services.store) }));
  const unindexed = await listen(createApp({ ...deps, store: withoutIdIndex }));
  const rng = createRng(CATALOG_SEED, 'http');
  const json = (body: unknown): autocannon.Request => ({
    method: 'POST',
    path: '/v1/search',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const byId = Array.from({ length: 1000 }, () => json({ imageId: rng.pick(ids), k: K }));
  const byText = Array.from({ length: 1000 }, () => json({ text: rng.pick(captions), k: K }));
  const rows: HttpRow[] = [];
  try {
    const runs = [
      ['POST /v1/search { imageId }', byId, 'exact', exact],
      ['POST /v1/search { imageId }', byId, 'ann, no index on id (before)', unindexed],
      ['POST /v1/search { imageId }', byId, 'ann', ann],
      ['POST /v1/search { text }', byText, 'exact', exact],
      ['POST /v1/search { text }', byText, 'ann', ann],
    ] as const;
    for (const [endpoint, requests, path, target] of runs) {
      await cannon(target.url, requests, 2, 2); // warm-up
      for (const connections of CONNECTIONS) {
        console.error(`autocannon: ${endpoint}, ${path}, ${connections} connection(s), ${DURATION} s`);
        rows.push({ endpoint, path, connections, ...(await cannon(target.url, requests, connections, DURATION)) });
      }
    }
  } finally {
    await Promise.all([ann, exact, unindexed].map(({ server }) => new Promise((r) => server.close(r))));
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const load: { start: number[]; end?: number[] } = { start: loadavg().map((x) => round(x)) };
  const t0 = performance.now();
  const cached = await isBuilt();
  const meta = cached ?? (await build());
  const rssAfterBuild = mib(peakRss);
  console.error(
    cached
      ? `Using the cached store in ${CACHE}.`
      : `Built ${CACHE} in ${((performance.now() - t0) / 1000).toFixed(0)} s.`,
  );

  const queries = JSON.parse(await readFile(join(CACHE, 'queries.json'), 'utf8')) as Query[];
  const ids = JSON.parse(await readFile(join(CACHE, 'ids.json'), 'utf8')) as string[];
  const captions = JSON.parse(await readFile(join(CACHE, 'captions.json'), 'utf8')) as string[];
  peakRss = process.memoryUsage().rss;

  const services = await createServices(configFor());
  const store = services.store;
  const count = await store.count();
  if (count !== POINTS) throw new Error(`the cached store holds ${count} points, not ${POINTS}; run with --rebuild`);

  // (a) recall@K and in-process latency, ANN against exact, per tower, without and with a filter.
  const recalls: RecallRow[] = [];
  for (const tower of ENCODER_ROLES)
    for (const filtered of [false, true]) {
      console.error(
        `Recall@${K}: ${tower}, ${filtered ? 'filtered by labels.part' : 'no filter'}, ${queries.length} queries`,
      );
      recalls.push(await recall(store, queries, tower, filtered));
    }

  // The exact neighbours of the sweep's queries, for the sweep's recall.
  const sweepQueries = queries.slice(0, SWEEP_QUERIES);
  const truth = new Map<string, string[]>();
  for (const tower of ENCODER_ROLES)
    for (const q of sweepQueries) {
      const vector = Float32Array.from(q.vectors[tower]);
      const hits = await store.search({ vector, using: tower, k: TRUTH_K, exact: true });
      truth.set(
        `${tower}:${q.record}`,
        hits.map((h) => h.id),
      );
    }
  console.error(`Sweeping k, ef and the refine factor on ${sweepQueries.length} queries per tower...`);
  const { rows: sweepRows, indexes } = await sweep(sweepQueries, truth);
  const largeKRows = await largeK(store, queries[0]!);
  console.error('Timing the lookup by id, without (on a copy) and with the BTREE index on id...');
  const copyDir = await copyWithoutIdIndex();
  const byIdLookup = {
    lookups: 200,
    scan: await idLookup(copyDir, ids),
    btree: await idLookup(join(CACHE, 'store'), ids),
  };
  const withoutIdIndex = await EmbeddedVectorStore.open(copyDir, configFor().store.collection, {
    optimizeEvery: 0,
    optimizeIdleMs: 0,
  });
  await withoutIdIndex.ensureCollection(services.collection);

  // The store's vector search in-process (the API has no search by vector), ANN and exact, at each concurrency.
  const vectorRows: HttpRow[] = [];
  for (const [path, exact] of [
    ['exact', true],
    ['ann', false],
  ] as const)
    for (const connections of CONNECTIONS) {
      const r = await closedLoop(
        (i) => {
          const q = queries[i % queries.length]!;
          return store.search({ vector: Float32Array.from(q.vectors.robust), using: 'robust', k: K, exact });
        },
        connections,
        Math.min(DURATION, 5),
      );
      vectorRows.push({
        endpoint: 'store.search(vector) in-process, robust',
        path,
        connections,
        reqPerSec: r.reqPerSec,
        p50: r.p50,
        p99: r.p99,
        requests: Math.round(r.reqPerSec * Math.min(DURATION, 5)),
        non2xx: 0,
        errors: 0,
      });
    }

  // (b) the API under autocannon.
  const httpRows = await http(services, ids, captions, withoutIdIndex);
  await withoutIdIndex.close();
  await rm(copyDir, { recursive: true, force: true });
  await services.close();
  clearInterval(rssSampler);
  load.end = loadavg().map((x) => round(x));

  const out = {
    date: new Date().toISOString(),
    cpu: cpus()[0]?.model,
    cores: availableParallelism(),
    loadAverage: load,
    store: { dir: CACHE, ...meta },
    k: K,
    storeSettings: STORE_SETTINGS,
    recall: recalls,
    indexes,
    largeK: largeKRows,
    idLookup: byIdLookup,
    sweep: sweepRows,
    throughput: [...vectorRows, ...httpRows],
    peakRssMiB: { build: rssAfterBuild, measure: mib(peakRss) },
    aim: { recallAtK: 0.95, p99Ms: 50 },
  };

  const md: string[] = [];
  md.push(
    `Search at ${POINTS} points (${SEEDS} real tiny-tower embeddings, the rest perturbed: cosine to the seed ` +
      `${NOISE.minCos}–${NOISE.maxCos}), HNSW-SQ index, ${availableParallelism()} cores, load average ` +
      `${load.start.join(' / ')} at start. Store settings: ef ${STORE_SETTINGS.ef}, refine factor ${STORE_SETTINGS.refineFactor}.`,
    '',
    `| tower | filter | queries | recall@${K} | worst query | ANN p50 / p99 ms | exact p50 / p99 ms (baseline) | ANN speed-up (p50) |`,
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...recalls.map(
      (r) =>
        `| ${r.tower} | ${r.filter} | ${r.queries} | ${r.recallAtK.toFixed(3)} | ${r.minRecall} | ` +
        `${r.annMs.p50} / ${r.annMs.p99} | ${r.exactMs.p50} / ${r.exactMs.p99} | ${(r.exactMs.p50 / r.annMs.p50).toFixed(1)}× |`,
    ),
    '',
    '| endpoint | search | connections | req/s | p50 ms | p99 ms | requests | non-2xx | errors |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...out.throughput.map(
      (r) =>
        `| ${r.endpoint} | ${r.path} | ${r.connections} | ${r.reqPerSec} | ${r.p50} | ${r.p99} | ${r.requests} | ` +
        `${r.non2xx} | ${r.errors} |`,
    ),
    '',
    `Lookup by id (a search by id reads the point's vectors first), ${byIdLookup.lookups} lookups: scan of the id ` +
      `column p50 ${byIdLookup.scan.p50} ms / p99 ${byIdLookup.scan.p99} ms; with a BTREE index on id ` +
      `p50 ${byIdLookup.btree.p50} ms / p99 ${byIdLookup.btree.p99} ms.`,
    '',
    `Store search once indexed, by k: ${largeKRows.map((r) => `k=${r.k} ${r.ok ? 'ok' : `FAILS (${r.error})`}`).join('; ')}.`,
    '',
    '| tower | k | ef | refine factor | nprobes | recall@k | p50 ms | p99 ms |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...sweepRows.map(
      (r) =>
        `| ${r.tower} | ${r.k} | ${r.ef} | ${r.refineFactor} | ${r.nprobes} | ${r.recallAtK.toFixed(3)} | ${r.p50} | ` +
        `${r.p99} |` +
        (r.k === K &&
        r.ef === STORE_SETTINGS.ef &&
        r.refineFactor === STORE_SETTINGS.refineFactor &&
        r.nprobes === 'default'
          ? ' ← the store'
          : ''),
    ),
    '',
    `Peak RSS: ${out.peakRssMiB.measure} MiB while measuring` +
      (cached ? '' : `, ${out.peakRssMiB.build} MiB while building`) +
      `. Load average at the end: ${(load.end ?? []).join(' / ')}.`,
  );
  await mkdir('bench/results', { recursive: true });
  await writeFile('bench/results/search.json', JSON.stringify(out, null, 2) + '\n');
  await writeFile('bench/results/search.md', md.join('\n') + '\n');
  console.log(md.join('\n'));
}

await main();
