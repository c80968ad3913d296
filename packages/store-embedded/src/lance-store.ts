import * as lancedb from '@lancedb/lancedb';
import { Bool, Field, FixedSizeList, Float32, Float64, Int64, Schema, Utf8, type DataType } from 'apache-arrow';
import {
  AppError,
  ENCODER_ROLES,
  UnavailableError,
  type CollectionSpec,
  type EncoderRole,
  type FieldValue,
  type Filter,
  type Point,
  type PointPayload,
  type SearchHit,
  type SearchQuery,
  type StoredPoint,
  type VectorStore,
} from '@lookalike/core';
import { fieldColumn, whereClause } from './where.js';

/** Rows from which an ANN index is worth building; below it, exact search is fast and exact. */
export const INDEX_MIN_ROWS = 4096;

interface Row {
  id: string;
  payload: string;
  robust?: ArrayLike<number>;
  clean?: ArrayLike<number>;
  _distance?: number;
  [column: string]: unknown;
}

function sqlString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

function fieldValue(payload: unknown, path: string): FieldValue | null {
  let v: unknown = payload;
  for (const key of path.split('.')) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[key] : undefined;
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? v : null;
}

function arrowType(type: CollectionSpec['indexedFields'][number]['type']): DataType {
  return type === 'keyword'
    ? new Utf8()
    : type === 'integer'
      ? new Int64()
      : type === 'float'
        ? new Float64()
        : new Bool();
}

/** Candidates re-ranked with full vectors per result asked for (recall@10 0.97 at 100k points; bench/search.ts). */
const REFINE = 5;

/** Writes after which the store optimizes itself by default (see {@link EmbeddedStoreOptions.optimizeEvery}). */
export const OPTIMIZE_EVERY = 32;

/** Milliseconds without writes after which the store optimizes what was written (see {@link EmbeddedStoreOptions}). */
export const OPTIMIZE_IDLE_MS = 10_000;

/** What one {@link EmbeddedVectorStore.optimize} did. */
export interface OptimizeResult {
  /** Whether the vector columns have an ANN index (the table has reached {@link INDEX_MIN_ROWS} rows). */
  indexed: boolean;
  /** Data files (fragments) before and after compaction. */
  fragments: { before: number; after: number };
  /** Wall time of the whole optimize. */
  ms: number;
}

/** Options of {@link EmbeddedVectorStore.open}. */
export interface EmbeddedStoreOptions {
  /**
   * Optimize (compact, build or extend the indexes) in the background after this many writes (`upsert`/`delete`
   * calls) of this handle; 0 turns it off. Every write adds a data file, and searches slow down with their number
   * (a 400-image store ingested in batches of 16: 25 files, search p50 4.6 ms; compacted: 1.6 ms). Default
   * {@link OPTIMIZE_EVERY}.
   */
  optimizeEvery?: number;
  /**
   * Also optimize once writes have paused for this long (the end of an ingest run, a few uploads); 0 turns it off.
   * The timer never keeps a process alive. Default {@link OPTIMIZE_IDLE_MS}.
   */
  optimizeIdleMs?: number;
  /** Told of every background optimize, for logging: its result or why it failed (the next write tries again). */
  onOptimize?: (outcome: { result: OptimizeResult } | { error: Error }) => void;
}

/**
 * The `VectorStore` port on an embedded LanceDB table in a folder: one row per image with both vectors, the payload
 * as JSON and one typed column per filterable field. Search is exact below {@link INDEX_MIN_ROWS} rows; above it,
 * {@link EmbeddedVectorStore.optimize} builds an HNSW (scalar-quantised) index per vector with a refine step, and
 * rows added since are still searched exactly until the next optimize.
 */
export class EmbeddedVectorStore implements VectorStore {
  private table: lancedb.Table | undefined;
  private spec: CollectionSpec | undefined;
  /** The tail of this handle's writes: each write and optimize waits for the one before (compaction rewrites files). */
  private writing: Promise<unknown> = Promise.resolve();
  private writesSinceOptimize = 0;
  private optimizePending = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(
    private readonly db: lancedb.Connection,
    private readonly name: string,
    private readonly options: EmbeddedStoreOptions,
  ) {}

  /**
   * Opens (or prepares to create) the table `name` in the folder `dir`. Every read checks the table's latest version
   * (a local file stat), so a server sees what another process (`lookalike ingest`, a worker) has written since. The
   * store is for one machine and one writing process at a time: LanceDB's merge-insert does not stop two processes
   * that write the same new id at once from both appending it; several workers need Qdrant.
   */
  static async open(dir: string, name = 'lookalike', options: EmbeddedStoreOptions = {}): Promise<EmbeddedVectorStore> {
    const every = options.optimizeEvery ?? OPTIMIZE_EVERY;
    const idle = options.optimizeIdleMs ?? OPTIMIZE_IDLE_MS;
    if (!Number.isInteger(every) || every < 0)
      throw new RangeError(`optimizeEvery must be a whole number ≥ 0, not ${every}`);
    if (!Number.isFinite(idle) || idle < 0) throw new RangeError(`optimizeIdleMs must be ≥ 0, not ${idle}`);
    return new EmbeddedVectorStore(await lancedb.connect(dir, { readConsistencyInterval: 0 }), name, {
      ...options,
      optimizeEvery: every,
      optimizeIdleMs: idle,
    });
  }

  /** Runs `fn` after this handle's earlier writes have settled; a failed write does not block the next. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.writing.then(fn, fn);
    this.writing = run.catch(() => undefined);
    return run;
  }

  /**
   * Counts a write; every `optimizeEvery` writes, and once writes pause for `optimizeIdleMs`, queues one background
   * optimize behind the writes.
   */
  private wrote(): void {
    this.writesSinceOptimize++;
    const every = this.options.optimizeEvery ?? OPTIMIZE_EVERY;
    const idle = this.options.optimizeIdleMs ?? OPTIMIZE_IDLE_MS;
    clearTimeout(this.idleTimer);
    if (idle > 0 && !this.closed) {
      this.idleTimer = setTimeout(() => this.optimizeInBackground(), idle);
      this.idleTimer.unref();
    }
    if (every > 0 && this.writesSinceOptimize >= every) this.optimizeInBackground();
  }

  private optimizeInBackground(): void {
    if (this.optimizePending || this.closed || this.writesSinceOptimize === 0) return;
    this.optimizePending = true;
    this.serial(() => this.optimizeNow())
      .then(
        (result) => this.options.onOptimize?.({ result }),
        (error: unknown) => this.options.onOptimize?.({ error: error as Error }),
      )
      .finally(() => (this.optimizePending = false));
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (error instanceof AppError) throw error;
      throw new UnavailableError('store', `the embedded store could not ${what}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  private ready(): { table: lancedb.Table; spec: CollectionSpec } {
    if (!this.table || !this.spec)
      throw new AppError('INTERNAL', 'ensureCollection must be called before using the store');
    return { table: this.table, spec: this.spec };
  }

  async ensureCollection(spec: CollectionSpec): Promise<void> {
    const names = await this.call('list tables', () => this.db.tableNames());
    if (names.includes(this.name)) {
      const table = await this.call('open the table', () => this.db.openTable(this.name));
      const schema = await table.schema();
      for (const role of ENCODER_ROLES) {
        const field = schema.fields.find((f) => f.name === role);
        // Duck-typed: the schema may come from LanceDB's own copy of apache-arrow.
        const size = (field?.type as { listSize?: number } | undefined)?.listSize;
        if (size !== spec.dims[role])
          throw new AppError(
            'CONFLICT',
            `the embedded store's ${role} vectors have size ${size ?? 'none'}, but the ${role} model embeds in ` +
              `${spec.dims[role]} dimensions; use another DATA_DIR or delete the store to re-ingest`,
          );
      }
      const missing = spec.indexedFields.filter((f) => !schema.fields.some((s) => s.name === fieldColumn(f.path)));
      if (missing.length)
        throw new AppError(
          'CONFLICT',
          `the embedded store lacks filter columns for ${missing.map((f) => f.path).join(', ')}`,
        );
      this.table = table;
    } else {
      const vector = (dim: number) => new FixedSizeList(dim, new Field('item', new Float32(), true));
      const schema = new Schema([
        new Field('id', new Utf8(), false),
        ...ENCODER_ROLES.map((r) => new Field(r, vector(spec.dims[r]), false)),
        new Field('payload', new Utf8(), false),
        ...spec.indexedFields.map((f) => new Field(fieldColumn(f.path), arrowType(f.type), true)),
      ]);
      this.table = await this.call('create the table', () =>
        this.db.createEmptyTable(this.name, schema, { existOk: true }),
      );
    }
    this.spec = spec;
  }

  private row(p: Point, spec: CollectionSpec): Record<string, unknown> {
    const row: Record<string, unknown> = { id: p.id, payload: JSON.stringify({ ...p.payload, id: p.id }) };
    for (const r of ENCODER_ROLES) {
      if (p.vectors[r].length !== spec.dims[r])
        throw new AppError(
          'VALIDATION_FAILED',
          `point ${p.id} has a ${r} vector of ${p.vectors[r].length} values, not ${spec.dims[r]}`,
        );
      row[r] = Array.from(p.vectors[r]);
    }
    for (const f of spec.indexedFields) {
      const v = fieldValue(p.payload, f.path);
      row[fieldColumn(f.path)] =
        v === null
          ? null
          : f.type === 'keyword'
            ? String(v)
            : f.type === 'bool'
              ? Boolean(v)
              : typeof v === 'number'
                ? v
                : null;
    }
    return row;
  }

  async upsert(points: readonly Point[]): Promise<void> {
    if (points.length === 0) return;
    const { table, spec } = this.ready();
    // One row per id even if the batch repeats one (the last wins, as in Qdrant).
    const rows = [...new Map(points.map((p) => [p.id, this.row(p, spec)])).values()];
    await this.serial(() =>
      this.call('upsert points', () =>
        table.mergeInsert('id').whenMatchedUpdateAll().whenNotMatchedInsertAll().execute(rows),
      ),
    );
    this.wrote();
  }

  private toStored(row: Row, withVectors: boolean): StoredPoint {
    const payload = JSON.parse(row.payload) as PointPayload;
    const point: StoredPoint = { id: row.id, payload };
    if (withVectors)
      point.vectors = Object.fromEntries(
        ENCODER_ROLES.map((r) => [r, Float32Array.from(row[r] as ArrayLike<number>)]),
      ) as Record<EncoderRole, Float32Array>;
    return point;
  }

  async search(query: SearchQuery): Promise<SearchHit[]> {
    const { table, spec } = this.ready();
    const where = whereClause(query.filter, spec);
    const rows = await this.call('search', async () => {
      let q = table
        .vectorSearch(Array.from(query.vector))
        .column(query.using)
        .distanceType('cosine')
        .select(['id', 'payload', '_distance'])
        .limit(query.k);
      if (where) q = q.where(where);
      // LanceDB fetches refine × k candidates from the HNSW graph and needs ef ≥ that; below it a search fails.
      q = query.exact ? q.bypassVectorIndex() : q.refineFactor(REFINE).ef(Math.max(128, REFINE * query.k));
      return (await q.toArray()) as Row[];
    });
    return rows.map((r) => ({
      id: r.id,
      score: 1 - (r._distance ?? 1),
      payload: JSON.parse(r.payload) as PointPayload,
    }));
  }

  async get(ids: readonly string[], options: { withVectors?: boolean } = {}): Promise<StoredPoint[]> {
    if (ids.length === 0) return [];
    const { table } = this.ready();
    const withVectors = options.withVectors ?? false;
    const rows = (await this.call('get points', () =>
      table
        .query()
        .where(`id IN (${ids.map(sqlString).join(', ')})`)
        .select(['id', 'payload', ...(withVectors ? [...ENCODER_ROLES] : [])])
        .limit(ids.length * 2 + 1)
        .toArray(),
    )) as Row[];
    const byId = new Map(rows.map((r) => [r.id, this.toStored(r, withVectors)]));
    return ids.flatMap((id) => byId.get(id) ?? []);
  }

  async delete(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    const { table } = this.ready();
    await this.serial(() => this.call('delete points', () => table.delete(`id IN (${ids.map(sqlString).join(', ')})`)));
    this.wrote();
  }

  async count(filter?: Filter): Promise<number> {
    const { table, spec } = this.ready();
    const where = whereClause(filter, spec);
    return this.call('count points', () => (where ? table.countRows(where) : table.countRows()));
  }

  async scroll(options: {
    filter?: Filter;
    limit: number;
    cursor?: string;
    withVectors?: boolean;
  }): Promise<{ points: StoredPoint[]; next?: string }> {
    const { table, spec } = this.ready();
    const withVectors = options.withVectors ?? false;
    const clauses = [
      whereClause(options.filter, spec),
      options.cursor ? `id > ${sqlString(options.cursor)}` : undefined,
    ].filter((c): c is string => c !== undefined);
    const rows = (await this.call('scroll points', () => {
      let q = table
        .query()
        .select(['id', 'payload', ...(withVectors ? [...ENCODER_ROLES] : [])])
        .orderBy({ columnName: 'id', ascending: true, nullsFirst: false })
        .limit(options.limit + 1);
      if (clauses.length) q = q.where(clauses.join(' AND '));
      return q.toArray();
    })) as Row[];
    const page = rows.slice(0, options.limit).map((r) => this.toStored(r, withVectors));
    const last = page[page.length - 1];
    return { points: page, ...(rows.length > options.limit && last ? { next: last.id } : {}) };
  }

  /**
   * Compacts the table's data files, keeps a BTREE index on `id` (lookups by id and the upsert's merge read it) and,
   * from {@link INDEX_MIN_ROWS} rows on, an HNSW (scalar-quantised, cosine) index per vector; rows written since the
   * last optimize are added to the existing indexes. Versions older than LanceDB's default (7 days) are removed.
   * The store also runs it by itself every {@link EmbeddedStoreOptions.optimizeEvery} writes; `lookalike ingest`
   * calls it at the end of a run. Waits for this handle's running writes, and they wait for it.
   */
  optimize(): Promise<OptimizeResult> {
    return this.serial(() => this.optimizeNow());
  }

  private async optimizeNow(): Promise<OptimizeResult> {
    const { table } = this.ready();
    const started = performance.now();
    this.writesSinceOptimize = 0;
    const rows = await this.call('count points', () => table.countRows());
    const before = (await this.call('read the table stats', () => table.stats())).fragmentStats.numFragments;
    const existing = new Set(
      (await this.call('list indexes', () => table.listIndices())).map((i) => i.columns.join(',')),
    );
    if (rows > 0 && !existing.has('id'))
      await this.call('index the ids', () => table.createIndex('id', { config: lancedb.Index.btree() }));
    const indexed = rows >= INDEX_MIN_ROWS;
    if (indexed)
      for (const role of ENCODER_ROLES) {
        if (!existing.has(role))
          await this.call(`index the ${role} vectors`, () =>
            table.createIndex(role, {
              config: lancedb.Index.hnswSq({ distanceType: 'cosine', m: 16, efConstruction: 200 }),
            }),
          );
      }
    await this.call('optimize the table', () => table.optimize());
    const after = (await this.call('read the table stats', () => table.stats())).fragmentStats.numFragments;
    return { indexed, fragments: { before, after }, ms: performance.now() - started };
  }

  async ping(): Promise<void> {
    await this.call('list tables', () => this.db.tableNames());
  }

  /** Waits for this handle's writes and a running optimize, then closes the table. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.idleTimer);
    await this.writing;
    this.table?.close();
    this.db.close();
  }
}
