/**
 * Issue #22: the embedded store's search as the archive grows, side by side with the raw index libraries on the
 * same vectors. Builds `--points` points (in a temp folder, removed at the end) through the real services' store:
 * `--seeds` random clustered unit vectors in `--dim` dimensions (the tiny towers' size) and perturbed copies of them
 * (cosine to the seed uniform in 0.90–0.99, as bench/search.ts makes them), `labels.part` drawn independently of
 * the vectors so that 1 %, 10 % and 50 % of the points match a value. Queries: `--queries` further perturbations
 * (cosine 0.85–0.95) that are not stored. Measures, in one run:
 *
 * - the store (after): build (upsert in pages of 5,000 + the optimize that saves the index snapshot), reopen
 *   (snapshot load), disk size of the table and of the snapshot, recall@10 against exact search and in-process p50 /
 *   p99 of `store.search` with payloads, unfiltered, at each selectivity, and exact;
 * - before (`--before`, on by default up to 100k points): the previous search path on the same table, LanceDB's
 *   HNSW-SQ index with the store's old settings (ef max(128, 5k), refine factor 5), unfiltered and filtered;
 * - peers: usearch raw (HNSW f32 M 16 ef 32 and i8 M 16 ef 64, one thread) on the same vectors;
 * - `POST /v1/search { imageId }` through a real app under autocannon at 1 and 10 connections.
 *
 * The vectors are synthetic (random seeds, not real embeddings): the index has the archive's size and a clustered
 * layout, not the distribution of real photos. Timings on a shared 2-core machine are noisy; compare the rows of
 * one run. Peak RSS is the process's (store, snapshot and the peers' indexes together).
 *
 *   npm run bench:search-scale [-- --points 100000 --seeds 2000 --queries 300 --dim 128 --duration 5 --before]
 *
 * `--data DIR` builds the store in DIR and keeps it; a later run with the same DIR and `--points` reuses it (the
 * build row then shows the first run's numbers) — for measuring a change at 1M points without a 20-minute build.
 * `--only api` skips everything but the build and the API rows, `--only store` the previous path, the peers and
 * the API; `--peers usearch-f32,usearch-i8,hnswlib` (the
 * default) chooses the raw libraries built beside the store.
 *
 * Writes bench/results/search-scale-<points>.json and .md.
 *
 * One file over 400 lines on purpose: one benchmark, read top to bottom as its report is; the shared measuring
 * helpers are in `harness.ts` and the vectors in `vectors.ts`.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as lancedb from '@lancedb/lancedb';
import autocannon from 'autocannon';
import { createApp, servicesDeps } from '@lookalike/http';
import { parseConfig, type Filter, type Point, type PointPayload } from '@lookalike/core';
import { createServices } from '@lookalike/services';
import { VectorIndex } from '@lookalike/store-embedded';
import { createRng } from '@lookalike/synth';
import { pino } from 'pino';
import usearch from 'usearch';
import { gaussian, perturb, unit } from './vectors.js';
import { latencySummary, listen, mib, round, rssSampler } from './harness.js';

const { values } = parseArgs({
  options: {
    points: { type: 'string', default: '100000' },
    seeds: { type: 'string', default: '2000' },
    queries: { type: 'string', default: '300' },
    dim: { type: 'string', default: '128' },
    duration: { type: 'string', default: '5' },
    before: { type: 'boolean' },
    data: { type: 'string' },
    only: { type: 'string' },
    peers: { type: 'string', default: 'usearch-f32,usearch-i8,hnswlib' },
  },
});
const POINTS = Number(values.points);
const SEEDS = Number(values.seeds);
const QUERIES = Number(values.queries);
const DIM = Number(values.dim);
const DURATION = Number(values.duration);
const BEFORE = values.before ?? POINTS <= 100_000;
const ONLY_API = values.only === 'api';
const ONLY_STORE = values.only === 'store';
const PEERS = new Set(values.only === 'store' ? [] : values.peers.split(','));
const K = 10;

interface ApiRow {
  connections: number;
  reqPerSec: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

const rss = rssSampler();

/** p50 and p99 of latencies in ms, to the microsecond. */
function summary(ms: number[]) {
  const { p50, p99 } = latencySummary(ms, 3);
  return { p50, p99 };
}

/**
 * Runs `search` over the queries twice and times the second pass (the first warms caches and the JIT): p50/p99 of
 * the call alone (a synchronous one is not awaited) and the ids each query found.
 */
async function timed<Q, R>(queries: readonly Q[], search: (q: Q) => R | Promise<R>, idsOf: (r: R) => string[]) {
  const ms: number[] = [];
  const found: string[][] = [];
  for (let rep = 0; rep < 2; rep++)
    for (const q of queries) {
      const t = performance.now();
      const pending = search(q);
      const result = pending instanceof Promise ? await pending : pending;
      if (rep === 0) continue;
      ms.push(performance.now() - t);
      found.push(idsOf(result));
    }
  return { ...summary(ms), found };
}

const PARTS = [
  ['rare', 0.01],
  ['some', 0.1],
  ['half', 0.5],
] as const;
const partOf = (u: number) => (u < 0.01 ? 'rare' : u < 0.11 ? 'some' : u < 0.61 ? 'half' : 'other');
const du = (path: string) => Number(execFileSync('du', ['-sb', path], { encoding: 'utf8' }).split('\t')[0]);

async function main(): Promise<void> {
  const load = { start: loadavg().map((x) => round(x, 2)), end: [] as number[] };
  const dir = values.data ?? (await mkdtemp(join(tmpdir(), 'bench-search-scale-')));
  const buildRecord = join(dir, 'bench-build.json');
  const config = parseConfig({
    DATA_DIR: dir,
    INGEST_ROOTS: dir,
    MODELS_DIR: 'models',
    LOG_LEVEL: 'silent',
    RATE_LIMIT_PER_MINUTE: '1000000',
  });
  const rng = createRng(22, 'search-scale');
  const next = () => rng.next();
  const seeds = Array.from({ length: SEEDS }, () => unit(Float32Array.from({ length: DIM }, () => gaussian(next))));
  const queries = Array.from({ length: QUERIES }, (_, i) => perturb(seeds[i % SEEDS]!, rng.range(0.85, 0.95), next));
  // Both towers get the same vectors: the benchmark searches `robust`; `clean` only doubles the index work.
  const robust = new Float32Array(POINTS * DIM);
  const ids: string[] = [];
  const parts: string[] = [];
  const out: Record<string, unknown> = { points: POINTS, dim: DIM, seeds: SEEDS, queries: QUERIES, k: K };
  const rows: { engine: string; filter: string; recall: number; p50: number; p99: number; note?: string }[] = [];
  const previous = await readFile(buildRecord, 'utf8')
    .then((text) => JSON.parse(text) as { points: number; dim: number; seeds: number; build: Record<string, number> })
    .catch(() => undefined);
  const reuse = previous?.points === POINTS && previous.dim === DIM && previous.seeds === SEEDS;
  if (values.data && !reuse) await rm(join(dir, 'store'), { recursive: true, force: true });
  try {
    let services = await createServices(config);
    if (services.collection.dims.robust !== DIM)
      throw new Error(`the towers embed in ${services.collection.dims.robust} dims, not ${DIM}`);
    const provenance = { modelId: 'bench', preprocessHash: 'bench' };
    const page: Point[] = [];
    let t0 = performance.now();
    for (let i = 0; i < POINTS; i++) {
      const v = i < SEEDS ? seeds[i]! : perturb(seeds[i % SEEDS]!, rng.range(0.9, 0.99), next);
      robust.set(v, i * DIM);
      const id = `${i.toString(16).padStart(16, '0')}${'0'.repeat(48)}`;
      ids.push(id);
      const payload: PointPayload = {
        id,
        source: `synthetic:${i}`,
        format: 'png',
        width: 128,
        height: 128,
        bytes: 1000,
        caption: `synthetic point ${i}`,
        labels: { part: parts[parts.push(partOf(rng.next())) - 1]! },
        metadata: { seed: i % SEEDS },
        ingestedAt: '2026-12-01T00:00:00.000Z',
        embeddings: { robust: provenance, clean: provenance },
      };
      page.push({ id, vectors: { robust: v, clean: v }, payload });
      if (page.length === 5000 || i === POINTS - 1) {
        if (!reuse) await services.store.upsert(page);
        page.length = 0;
      }
    }
    const upsertS = (performance.now() - t0) / 1000;
    t0 = performance.now();
    if (!reuse) await services.store.optimize!();
    const optimizeS = (performance.now() - t0) / 1000;
    await services.close();
    const buildRss = mib(rss.peak());
    t0 = performance.now();
    services = await createServices(config);
    const openS = (performance.now() - t0) / 1000;
    const store = services.store;
    const storeDir = join(dir, 'store');
    out.build = {
      ...(reuse
        ? { ...previous.build, reused: dir }
        : { upsertS: round(upsertS, 1), optimizeAndSnapshotS: round(optimizeS, 1), peakRssMiB: buildRss }),
      reopenS: round(openS, 1),
      tableMiB: mib(du(join(storeDir, `${config.store.collection}.lance`))),
      snapshotMiB: mib(du(join(storeDir, `${config.store.collection}.vindex`))),
    };
    if (!reuse)
      await writeFile(buildRecord, JSON.stringify({ points: POINTS, dim: DIM, seeds: SEEDS, build: out.build }));
    console.error(`${reuse ? 'Reused' : 'Built'} and reopened: ${JSON.stringify(out.build)}`);

    if (!ONLY_API) {
      const filters: [string, Filter | undefined][] = [
        ['none', undefined],
        ...PARTS.map(([part, share]): [string, Filter] => [
          `${share * 100} %`,
          { must: [{ field: 'labels.part', match: part }] },
        ]),
      ];
      const truth = new Map<string, Set<string>[]>();
      const exactMs: number[] = [];
      for (const [name, filter] of filters) {
        const sets: Set<string>[] = [];
        for (const q of queries) {
          const t = performance.now();
          const hits = await store.search({ vector: q, using: 'robust', k: K, filter, exact: true });
          if (!filter) exactMs.push(performance.now() - t);
          sets.push(new Set(hits.map((h) => h.id)));
        }
        truth.set(name, sets);
      }
      const recallOf = (name: string, found: string[][]) =>
        round(
          found.reduce((s, f, i) => s + f.filter((id) => truth.get(name)![i]!.has(id)).length, 0) / (found.length * K),
          3,
        );
      rows.push({
        engine: 'store, exact (scan of the float32 vectors)',
        filter: 'none',
        recall: 1,
        ...summary(exactMs),
      });
      const idsOfHits = (hits: { id: string }[]) => hits.map((h) => h.id);
      for (const [name, filter] of filters) {
        const { found, ...ms } = await timed(
          queries,
          (q) => store.search({ vector: q, using: 'robust', k: K, filter }),
          idsOfHits,
        );
        rows.push({
          engine: 'store (after): usearch i8 + re-rank, with payloads',
          filter: name,
          recall: recallOf(name, found),
          ...ms,
        });
      }

      // The index's own query: a second copy of it, loaded from the snapshot the store saved, searched directly
      // (no catch-up check with the table, payloads left as stored JSON).
      const own = await VectorIndex.load(join(storeDir, `${config.store.collection}.vindex`), services.collection, 1);
      if (!own.loaded) throw new Error(`the index snapshot did not load: ${own.reason}`);
      for (const [name, filter] of filters) {
        const { found, ...ms } = await timed(queries, (q) => own.index.search(q, 'robust', K, filter), idsOfHits);
        rows.push({
          engine: "the store's index alone (VectorIndex.search)",
          filter: name,
          recall: recallOf(name, found),
          ...ms,
        });
      }

      if (BEFORE && !ONLY_STORE) {
        console.error('Before: LanceDB HNSW-SQ on the same table (building its index)...');
        const db = await lancedb.connect(storeDir);
        const table = await db.openTable(config.store.collection);
        t0 = performance.now();
        await table.createIndex('robust', {
          config: lancedb.Index.hnswSq({ distanceType: 'cosine', m: 16, efConstruction: 200 }),
        });
        const indexS = (performance.now() - t0) / 1000;
        for (const [name, filter] of filters) {
          const ms: number[] = [];
          const found: string[][] = [];
          const where = filter ? `f_labels_part = '${(filter.must![0] as { match: string }).match}'` : undefined;
          for (const q of queries) {
            const t = performance.now();
            let query = table
              .vectorSearch(Array.from(q))
              .column('robust')
              .distanceType('cosine')
              .select(['id', 'payload', '_distance'])
              .limit(K)
              .refineFactor(5)
              .ef(128);
            if (where) query = query.where(where);
            const hits = (await query.toArray()) as { id: string }[];
            ms.push(performance.now() - t);
            found.push(hits.map((h) => h.id));
          }
          rows.push({
            engine: 'before: LanceDB HNSW-SQ, ef 128, refine 5, with payloads',
            filter: name,
            recall: recallOf(name, found),
            ...summary(ms),
            note: `index build ${round(indexS, 1)} s`,
          });
        }
        const ms: number[] = [];
        for (const q of queries.slice(0, 50)) {
          const t = performance.now();
          await table
            .vectorSearch(Array.from(q))
            .column('robust')
            .distanceType('cosine')
            .select(['id', 'payload', '_distance'])
            .limit(K)
            .bypassVectorIndex()
            .toArray();
          ms.push(performance.now() - t);
        }
        rows.push({ engine: 'before: LanceDB exact', filter: 'none', recall: 1, ...summary(ms) });
        table.close();
        db.close();
      }

      for (const [quantization, ef] of [
        ['f32', 32],
        ['i8', 64],
      ] as const) {
        if (!PEERS.has(`usearch-${quantization}`)) continue;
        console.error(`Peer: usearch ${quantization}, building...`);
        const index = new usearch.Index({
          dimensions: DIM,
          metric: usearch.MetricKind.Cos,
          quantization: quantization === 'f32' ? usearch.ScalarKind.F32 : usearch.ScalarKind.I8,
          connectivity: 16,
          expansion_add: 128,
          expansion_search: ef,
          multi: false,
        });
        t0 = performance.now();
        index.add(
          BigUint64Array.from(ids, (_, i) => BigInt(i)),
          robust,
          Math.max(1, availableParallelism() - 1),
        );
        const buildS = (performance.now() - t0) / 1000;
        const { found, ...ms } = await timed(
          queries,
          (q) => index.search(q, K, 1),
          (m) => Array.from(m.keys, (key) => ids[Number(key)]!),
        );
        rows.push({
          engine: `peer: usearch raw ${quantization}, M 16, ef ${ef}, keys only`,
          filter: 'none',
          recall: recallOf('none', found),
          ...ms,
          note: `build ${round(buildS, 1)} s`,
        });
      }

      // hnswlib-node is an optional dependency whose addon `npm ci` leaves unbuilt (`npm rebuild hnswlib-node`).
      const hnswlib = PEERS.has('hnswlib')
        ? await import('hnswlib-node').then((m) => m.default).catch(() => undefined)
        : undefined;
      if (!PEERS.has('hnswlib')) {
        // Left out by --peers.
      } else if (!hnswlib) {
        rows.push({
          engine: 'peer: hnswlib-node',
          filter: 'none',
          recall: 0,
          p50: 0,
          p99: 0,
          note: 'not built: npm rebuild hnswlib-node',
        });
      } else {
        console.error('Peer: hnswlib-node, building...');
        const index = new hnswlib.HierarchicalNSW('cosine', DIM);
        index.initIndex(POINTS, 16, 200, 100);
        t0 = performance.now();
        for (let i = 0; i < POINTS; i++) index.addPoint(Array.from(robust.subarray(i * DIM, (i + 1) * DIM)), i);
        const buildS = (performance.now() - t0) / 1000;
        const plain = queries.map((q) => Array.from(q));
        for (const ef of [32, 64])
          for (const [name, filter] of filters) {
            if (filter && ef !== 64) continue;
            index.setEf(ef);
            const match = (filter?.must?.[0] as { match: string } | undefined)?.match;
            const keep = match === undefined ? undefined : (label: number) => parts[label] === match;
            const { found, ...ms } = await timed(
              plain,
              (q) => index.searchKnn(q, K, keep),
              (r) => r.neighbors.map((n) => ids[n]!),
            );
            rows.push({
              engine: `peer: hnswlib-node f32, M 16, ef ${ef}${keep ? ', filter callback in the walk' : ''}, keys only`,
              filter: name,
              recall: recallOf(name, found),
              ...ms,
              note: `build ${round(buildS, 1)} s`,
            });
          }
      }
    }
    if (ONLY_STORE) await services.close();
    else {
      console.error('API: POST /v1/search { imageId } under autocannon...');
      const app = createApp({ config, logger: pino({ level: 'silent' }), ...servicesDeps(services), store });
      const { url, close } = await listen(app);
      const requests = Array.from({ length: 1000 }, () => ({
        method: 'POST' as const,
        path: '/v1/search',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ imageId: rng.pick(ids), k: K }),
      }));
      const api: ApiRow[] = [];
      await autocannon({ url, connections: 2, duration: 2, workers: 1, requests });
      for (const connections of [1, 10]) {
        const r = await autocannon({ url, connections, duration: DURATION, workers: 1, timeout: 10, requests });
        api.push({
          connections,
          reqPerSec: round(r.requests.average, 1),
          p50: r.latency.p50,
          p99: r.latency.p99,
          non2xx: r.non2xx,
          errors: r.errors,
        });
      }
      await close();
      await services.close();
      out.api = api;
    }
  } finally {
    rss.stop();
    if (!values.data) await rm(dir, { recursive: true, force: true });
  }
  load.end = loadavg().map((x) => round(x, 2));
  Object.assign(out, { rows, peakRssMiB: mib(rss.peak()), cores: availableParallelism(), loadAverage: load });
  const b = out.build as Record<string, number>;
  const md = [
    `Search at ${POINTS} points, ${DIM} dims (synthetic clustered vectors), ${QUERIES} queries, k ${K}, ` +
      `${availableParallelism()} cores, load average ${load.start.join(' / ')} → ${load.end.join(' / ')}.`,
    '',
    `Store build: upsert ${b.upsertS} s, optimize + snapshot ${b.optimizeAndSnapshotS} s, reopen ${b.reopenS} s; ` +
      `table ${b.tableMiB} MiB, index snapshot ${b.snapshotMiB} MiB; peak RSS ${b.peakRssMiB} MiB building, ` +
      `${out.peakRssMiB as number} MiB overall.`,
    '',
    `| engine | filter | recall@${K} | p50 ms | p99 ms | note |`,
    '| --- | --- | --- | --- | --- | --- |',
    ...rows.map(
      (r) => `| ${r.engine} | ${r.filter} | ${r.recall.toFixed(3)} | ${r.p50} | ${r.p99} | ${r.note ?? ''} |`,
    ),
    '',
    '| API | connections | req/s | p50 ms | p99 ms | non-2xx | errors |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...((out.api as ApiRow[] | undefined) ?? []).map(
      (r) =>
        `| POST /v1/search { imageId } | ${r.connections} | ${r.reqPerSec} | ${r.p50} | ${r.p99} | ${r.non2xx} | ${r.errors} |`,
    ),
  ].join('\n');
  await mkdir('bench/results', { recursive: true });
  await writeFile(`bench/results/search-scale-${POINTS}.json`, JSON.stringify(out, null, 2) + '\n');
  await writeFile(`bench/results/search-scale-${POINTS}.md`, md + '\n');
  console.log(md);
}

await main();
