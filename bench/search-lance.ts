/**
 * The parts of `bench:search` that go under the store, straight to its LanceDB table: a sweep of HNSW query
 * parameters (the store fixes them), and the lookup by id a search by id starts with, with and without the BTREE
 * index on `id` that `optimize()` builds.
 */
import { cp, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as lancedb from '@lancedb/lancedb';
import { ENCODER_ROLES, type EncoderRole } from '@lookalike/core';
import { latencySummary, mean, round } from './harness.js';
import { searchConfig, type Query } from './search-store.js';

/** One HNSW query setting; ef ≥ k × refine factor, or LanceDB refuses the query. */
export interface SweepSetting {
  k: number;
  ef: number;
  refineFactor?: number;
  nprobes?: number;
}

const recallOf = (ann: readonly { id: string }[], exact: readonly { id: string }[]) => {
  if (exact.length === 0) return 1;
  const truth = new Set(exact.map((h) => h.id));
  return ann.filter((h) => truth.has(h.id)).length / exact.length;
};

export interface SweepRow {
  tower: EncoderRole;
  k: number;
  ef: number;
  refineFactor: number | 'none';
  nprobes: number | 'default';
  recallAtK: number;
  p50: number;
  p99: number;
}

/**
 * Recall and latency of HNSW query parameters straight on the LanceDB table (the store fixes them), with the
 * columns the store selects. `truth` holds the exact top-k ids (k at least each setting's) per `tower:record`.
 */
export async function sweep(
  cache: string,
  settings: readonly SweepSetting[],
  queries: Query[],
  truth: Map<string, string[]>,
): Promise<{ rows: SweepRow[]; indexes: unknown }> {
  const db = await lancedb.connect(join(cache, 'store'));
  const table = await db.openTable(searchConfig(cache).store.collection);
  const rows: SweepRow[] = [];
  try {
    for (const tower of ENCODER_ROLES)
      for (const setting of settings) {
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

/**
 * A copy of the cached store without the BTREE index on `id` that `optimize()` builds, in a temp folder: the baseline
 * for lookups by id (`id IN (…)`) as they were before the index, a scan of the column.
 */
export async function copyWithoutIdIndex(cache: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-search-no-id-index-'));
  await cp(join(cache, 'store'), dir, { recursive: true });
  const db = await lancedb.connect(dir);
  const table = await db.openTable(searchConfig(cache).store.collection);
  const index = (await table.listIndices()).find((i) => i.columns.join(',') === 'id');
  if (!index) throw new Error('the cached store has no index on id: optimize() builds one; run with --rebuild');
  await table.dropIndex(index.name);
  table.close();
  db.close();
  return dir;
}

/** What a search by id does first: read the point's vectors by id, as the store queries it; in `dir`. */
export async function idLookup(dir: string, ids: string[]) {
  const db = await lancedb.connect(dir);
  const table = await db.openTable(searchConfig(dir).store.collection);
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
