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
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type autocannon from 'autocannon';
import { createApp, servicesDeps } from '@lookalike/http';
import { ENCODER_ROLES, type EncoderRole, type Filter, type SearchHit, type VectorStore } from '@lookalike/core';
import { createServices, type Services } from '@lookalike/services';
import { EmbeddedVectorStore } from '@lookalike/store-embedded';
import { createRng } from '@lookalike/synth';
import { pino } from 'pino';
import { cannon, closedLoop, latencySummary, listen, mean, mib, round, rssSampler } from './harness.js';
import { copyWithoutIdIndex, idLookup, sweep, type SweepSetting } from './search-lance.js';
import { cachedStore, searchConfig, type Query } from './search-store.js';

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
const SWEEP: SweepSetting[] = [
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

/** The largest k of the sweep: exact neighbours are computed once at this depth and cut to each row's k. */
export const TRUTH_K = Math.max(...SWEEP.map((s) => s.k));

const rss = rssSampler();

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

/** Whether the store's own search answers at each k of {@link LARGE_K} once the index exists. */
export async function largeK(store: VectorStore, q: Query): Promise<{ k: number; ok: boolean; error?: string }[]> {
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

async function http(
  services: Services,
  ids: string[],
  captions: string[],
  withoutIdIndex: VectorStore,
): Promise<HttpRow[]> {
  const logger = pino({ level: 'silent' });
  const deps = { config: searchConfig(CACHE), logger, ...servicesDeps(services) };
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
    await Promise.all([ann, exact, unindexed].map((s) => s.close()));
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const load: { start: number[]; end?: number[] } = { start: loadavg().map((x) => round(x)) };
  const t0 = performance.now();
  const { meta, cached } = await cachedStore({
    points: POINTS,
    seeds: SEEDS,
    queries: QUERIES,
    catalogSeed: CATALOG_SEED,
    noise: NOISE,
    cache: CACHE,
    rebuild: values.rebuild,
  });
  const rssAfterBuild = mib(rss.peak());
  console.error(
    cached
      ? `Using the cached store in ${CACHE}.`
      : `Built ${CACHE} in ${((performance.now() - t0) / 1000).toFixed(0)} s.`,
  );

  const queries = JSON.parse(await readFile(join(CACHE, 'queries.json'), 'utf8')) as Query[];
  const ids = JSON.parse(await readFile(join(CACHE, 'ids.json'), 'utf8')) as string[];
  const captions = JSON.parse(await readFile(join(CACHE, 'captions.json'), 'utf8')) as string[];
  rss.reset();

  const services = await createServices(searchConfig(CACHE));
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
  const { rows: sweepRows, indexes } = await sweep(CACHE, SWEEP, sweepQueries, truth);
  const largeKRows = await largeK(store, queries[0]!);
  console.error('Timing the lookup by id, without (on a copy) and with the BTREE index on id...');
  const copyDir = await copyWithoutIdIndex(CACHE);
  const byIdLookup = {
    lookups: 200,
    scan: await idLookup(copyDir, ids),
    btree: await idLookup(join(CACHE, 'store'), ids),
  };
  const withoutIdIndex = await EmbeddedVectorStore.open(copyDir, searchConfig(CACHE).store.collection, {
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
  rss.stop();
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
    peakRssMiB: { build: rssAfterBuild, measure: mib(rss.peak()) },
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
