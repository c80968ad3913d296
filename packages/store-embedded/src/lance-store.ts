/**
 * The embedded vector store (`VectorStore` on one machine, no services): a LanceDB table per collection is the
 * source of truth, and a {@link VectorIndex} beside it answers searches; every read catches the index up from the
 * table's write sequence first, so a crash or another writing process loses nothing from search, and a background
 * optimize compacts the table and snapshots the index.
 *
 * One file over 400 lines on purpose: it is one class, the port's methods and the catch-up they all go through;
 * the filter translation (`where.ts`), the index (`vector-index.ts`) and the collection metadata live apart.
 */
import { statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import * as lancedb from '@lancedb/lancedb';
import { Field, FixedSizeList, Float32, Float64, Schema, Utf8 } from 'apache-arrow';
import {
  AppError,
  ENCODER_ROLES,
  type CollectionSpec,
  type EncoderRole,
  type Filter,
  type Point,
  type PointPayload,
  type SearchHit,
  type SearchQuery,
  type StoredPoint,
  type VectorStore,
} from '@lookalike/core';
import {
  SEQ,
  addFilterColumns,
  arrowType,
  openCommittedTable,
  rowOf,
  sqlString,
  storeCall,
  storedOf,
  type Row,
} from './lance-rows.js';
import { VectorIndex, type IndexedPoint } from './vector-index.js';
import { fieldColumn, whereClause } from './where.js';

/**
 * Native threads usearch may use to insert a batch: every core but one, so that a bulk build leaves the event loop
 * (and, on two cores, the other process) a core. Searches use one thread, the caller's.
 */
const INDEX_THREADS = Math.max(1, availableParallelism() - 1);

/**
 * How long after the table's version folder last changed a catch-up trusts that folder's modification time to show
 * the next commit. A commit adds a manifest to `<table>.lance/_versions/`, which changes the folder's mtime; but
 * mtimes are only as fine as the kernel's clock tick, so one taken within a tick of the last change could still hide
 * a commit made in the same tick. A stamp older than this (and unchanged since the last full check) lets a catch-up
 * skip reading the table's version: a file stat instead of a round trip through LanceDB's threads, about 0.1 ms of
 * every search and get. Long enough to cover a tick and a clock a little off.
 */
const VERSIONS_SETTLE_MS = 2_000;

/** Changes since the last snapshot, as a share of the points, after which a background optimize saves the index. */
const SAVE_FRACTION = 0.1;

/** Writes after which the store optimizes itself by default (see {@link EmbeddedStoreOptions.optimizeEvery}). */
export const OPTIMIZE_EVERY = 32;

/** Milliseconds without writes after which the store optimizes what was written (see {@link EmbeddedStoreOptions}). */
export const OPTIMIZE_IDLE_MS = 10_000;

/** What one {@link EmbeddedVectorStore.optimize} did. */
export interface OptimizeResult {
  /** Whether the vector index holds exactly the table's rows (checked by count after catching up). */
  indexed: boolean;
  /** Whether this optimize wrote a new snapshot of the vector index beside the table. */
  saved: boolean;
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
  /** Told when the vector index's snapshot cannot be used and the index is rebuilt from the table, and why. */
  onIndex?: (event: { rebuilding: string }) => void;
  /**
   * When the in-memory vector index is loaded: `eager` (the default) by `ensureCollection`; `lazy` by the first
   * search (or {@link EmbeddedVectorStore.loadIndex}). Until then writes go to the table alone and the index catches
   * them up by `seq` when it loads, so a handle that only reads and writes rows (a re-index's source and target on a
   * worker) never holds the vectors in memory.
   */
  vectorIndex?: 'eager' | 'lazy';
}

/**
 * The `VectorStore` port on an embedded LanceDB table in a folder, with an in-memory vector index beside it.
 *
 * The table is the source of truth and serves gets, counts, scrolls and durability: one row per image with both
 * vectors, the payload as JSON, one typed column per filterable field and `seq`, the sequence number of the write
 * that last set the row. Searches go to a {@link VectorIndex} (usearch HNSW per tower, float32 re-ranking, filters
 * evaluated in memory on posting lists and columns), snapshotted into `<dir>/<name>.vindex/`.
 *
 * Crash safety: a write commits to the table first and then to the index. The snapshot records the highest `seq` it
 * covers; at open (and before every search or write, when the table's version has moved: another process wrote, or
 * this one crashed after a commit) the index applies every row with a higher `seq`, then compares its size with the
 * table's row count and, on a mismatch (a delete it did not see), reconciles the ids with the table. A snapshot that
 * is missing, torn or made for another layout is rebuilt from the table. So no point is lost or phantom.
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
  private index: VectorIndex | undefined;
  /** The load of the index, once started (see {@link EmbeddedStoreOptions.vectorIndex}). */
  private indexLoad: Promise<VectorIndex> | undefined;
  /** The last write sequence number this handle gave, with or without a loaded index. */
  private lastSeq = -1;
  /** The table version the index was last caught up to; -1 before the first catch-up. */
  private indexedVersion = -1;
  /** The tail of catch-ups, so that concurrent searches run one. */
  private catching: Promise<void> | undefined;
  /** The version folder's stamp at the last full catch-up, when it was old enough to trust (see VERSIONS_SETTLE_MS). */
  private settledStamp: string | undefined;
  /** Whether this handle wrote since its last snapshot; only a writing handle saves one. */
  private wroteSinceSave = false;

  private constructor(
    private readonly db: lancedb.Connection,
    private readonly dir: string,
    private readonly name: string,
    private readonly options: EmbeddedStoreOptions,
  ) {}

  private get indexDir(): string {
    return join(this.dir, `${this.name}.vindex`);
  }

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
    return new EmbeddedVectorStore(await lancedb.connect(dir, { readConsistencyInterval: 0 }), dir, name, {
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
    this.wroteSinceSave = true;
    const every = this.options.optimizeEvery ?? OPTIMIZE_EVERY;
    const idle = this.options.optimizeIdleMs ?? OPTIMIZE_IDLE_MS;
    clearTimeout(this.idleTimer);
    if (idle > 0 && !this.closed) {
      this.idleTimer = setTimeout(() => this.optimizeInBackground(true), idle);
      this.idleTimer.unref();
    }
    if (every > 0 && this.writesSinceOptimize >= every) this.optimizeInBackground(false);
  }

  /** `save`: write the index snapshot if anything changed (writes paused), else only once enough has. */
  private optimizeInBackground(save: boolean): void {
    if (this.optimizePending || this.closed || this.writesSinceOptimize === 0) return;
    this.optimizePending = true;
    this.serial(() => this.optimizeNow(save))
      .then(
        (result) => this.options.onOptimize?.({ result }),
        (error: unknown) => this.options.onOptimize?.({ error: error as Error }),
      )
      .finally(() => (this.optimizePending = false));
  }

  private call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return storeCall(what, fn);
  }

  private ready(): { table: lancedb.Table; spec: CollectionSpec } {
    if (!this.table || !this.spec)
      throw new AppError('INTERNAL', 'ensureCollection must be called before using the store');
    return { table: this.table, spec: this.spec };
  }

  private loaded(): { table: lancedb.Table; index: VectorIndex } {
    const { table } = this.ready();
    if (!this.index) throw new AppError('INTERNAL', 'the vector index is not loaded');
    return { table, index: this.index };
  }

  /**
   * Loads the vector index (its snapshot, or a rebuild from the table) and catches it up with the table, once; a
   * no-op when it is loaded. `ensureCollection` does it unless the store was opened with `vectorIndex: 'lazy'`.
   */
  loadIndex(): Promise<void> {
    const { spec } = this.ready();
    this.indexLoad ??= (async () => {
      const { index, reason } = await VectorIndex.load(this.indexDir, spec, INDEX_THREADS);
      if (reason && this.options.onIndex) this.options.onIndex({ rebuilding: reason });
      this.indexedVersion = -1;
      this.index = index;
      await this.catchUp();
      return index;
    })();
    const load = this.indexLoad;
    load.catch(() => {
      if (this.indexLoad === load) {
        this.indexLoad = undefined;
        this.index = undefined;
      }
    });
    return load.then(() => undefined);
  }

  /** The vector index, loaded and caught up with the table: what every read from it starts with. */
  private async caughtUpIndex(): Promise<VectorIndex> {
    await this.loadIndex();
    await this.catchUp();
    return this.loaded().index;
  }

  /**
   * Brings the index up to the table's latest version: applies the rows whose `seq` is above what it covers, and if
   * its size still differs from the row count (rows deleted by another process or before a crash), reconciles ids.
   * A no-op when the version has not moved: one stat of the table's version folder once that has been still for
   * {@link VERSIONS_SETTLE_MS}, else one read of the table's version.
   */
  private catchUp(): Promise<void> {
    this.catching ??= this.catchUpNow().finally(() => (this.catching = undefined));
    return this.catching;
  }

  /** The table's version folder: inode, mtime and ctime, and how long ago it changed; undefined if unreadable. */
  private versionsStamp(): { key: string; ageMs: number } | undefined {
    try {
      const s = statSync(join(this.dir, `${this.name}.lance`, '_versions'), { bigint: true });
      return { key: `${s.ino}:${s.mtimeNs}:${s.ctimeNs}`, ageMs: Date.now() - Number(s.mtimeMs) };
    } catch {
      return undefined;
    }
  }

  private async catchUpNow(): Promise<void> {
    if (!this.index) return;
    const { table, index } = this.loaded();
    // Taken before the version is read: a commit in between changes the stamp, so the next catch-up reads again.
    const stamp = this.versionsStamp();
    if (stamp && stamp.key === this.settledStamp && this.indexedVersion >= 0) return;
    const settle = () => (this.settledStamp = stamp && stamp.ageMs > VERSIONS_SETTLE_MS ? stamp.key : undefined);
    const version = await this.call('read the table version', () => table.version());
    if (version === this.indexedVersion) {
      settle();
      return;
    }
    const seen = await this.applyRows(`${SEQ} > ${index.seq}`);
    if (seen > index.seq) index.seq = seen;
    const rows = await this.call('count points', () => table.countRows());
    if (rows !== index.size) {
      const ids = new Set<string>();
      await this.call('read the ids', async () => {
        for await (const batch of table.query().select(['id'])) {
          const col = batch.getChild('id')!;
          for (let i = 0; i < batch.numRows; i++) ids.add(col.get(i) as string);
        }
      });
      index.delete([...index.liveIds()].filter((id) => !ids.has(id)));
      const missing = [...ids].filter((id) => !index.has(id));
      for (let i = 0; i < missing.length; i += 1000)
        await this.applyRows(
          `id IN (${missing
            .slice(i, i + 1000)
            .map(sqlString)
            .join(', ')})`,
        );
    }
    this.indexedVersion = version;
    settle();
  }

  /** Applies the table's rows matching `where` to the index; returns the highest `seq` among them. */
  private async applyRows(where: string): Promise<number> {
    const { table, index } = this.loaded();
    let top = -1;
    await this.call('read points for the vector index', async () => {
      const q = table
        .query()
        .where(where)
        .select(['id', 'payload', SEQ, ...ENCODER_ROLES]);
      for await (const batch of q) {
        const id = batch.getChild('id')!;
        const payload = batch.getChild('payload')!;
        const seq = batch.getChild(SEQ)!;
        const vectors = ENCODER_ROLES.map((r) => batch.getChild(r)!);
        const points: IndexedPoint[] = [];
        for (let i = 0; i < batch.numRows; i++) {
          top = Math.max(top, Number(seq.get(i) ?? 0));
          points.push({
            id: id.get(i) as string,
            payload: payload.get(i) as string,
            vectors: Object.fromEntries(
              ENCODER_ROLES.map((r, k) => [r, (vectors[k]!.get(i) as { toArray(): Float32Array }).toArray()]),
            ) as Record<EncoderRole, Float32Array>,
          });
        }
        index.upsert(points);
      }
    });
    return top;
  }

  /** The next write's sequence number: after every one this index has seen, and a wall-clock time in ms. */
  private nextSeq(): number {
    this.lastSeq = Math.max(Date.now(), (this.index?.seq ?? -1) + 1, this.lastSeq + 1);
    if (this.index) this.index.seq = this.lastSeq;
    return this.lastSeq;
  }

  /** Records that a write of this handle moved the table from `before` by one version, when nothing else did. */
  private async wroteVersion(before: number): Promise<void> {
    const { table } = this.ready();
    const after = await this.call('read the table version', () => table.version());
    // Another version in between (another process wrote): leave the mark, so the next catch-up reads the gap.
    if (before === this.indexedVersion && after === before + 1) this.indexedVersion = after;
  }

  async ensureCollection(spec: CollectionSpec): Promise<void> {
    const existing = await openCommittedTable(this.db, this.name);
    if (existing) {
      const table = existing;
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
      if (missing.length) await addFilterColumns(table, missing);
      // A table from before the vector index: its rows get seq 0, and the index is built from them below.
      if (!schema.fields.some((f) => f.name === SEQ))
        await this.call('add the seq column', () => table.addColumns([{ name: SEQ, valueSql: 'CAST(0 AS DOUBLE)' }]));
      this.table = table;
    } else {
      const vector = (dim: number) => new FixedSizeList(dim, new Field('item', new Float32(), true));
      const schema = new Schema([
        new Field('id', new Utf8(), false),
        ...ENCODER_ROLES.map((r) => new Field(r, vector(spec.dims[r]), false)),
        new Field('payload', new Utf8(), false),
        ...spec.indexedFields.map((f) => new Field(fieldColumn(f.path), arrowType(f.type), true)),
        new Field(SEQ, new Float64(), false),
      ]);
      this.table = await this.call('create the table', () =>
        this.db.createEmptyTable(this.name, schema, { existOk: true }),
      );
    }
    if (this.spec && JSON.stringify(this.spec) === JSON.stringify(spec) && (this.index || this.lazy)) return;
    this.spec = spec;
    this.index = undefined;
    this.indexLoad = undefined;
    if (!this.lazy) await this.loadIndex();
  }

  private get lazy(): boolean {
    return this.options.vectorIndex === 'lazy';
  }

  async upsert(points: readonly Point[]): Promise<void> {
    if (points.length === 0) return;
    const { table, spec } = this.ready();
    // Validates every vector before anything is written.
    for (const p of points) rowOf(p, spec, 0);
    await this.serial(async () => {
      // Without a loaded index the rows alone are written; the index applies them by `seq` when it loads.
      const index = this.index;
      if (index) await this.catchUp();
      const before = await this.call('read the table version', () => table.version());
      const seq = this.nextSeq();
      // One row per id even if the batch repeats one (the last wins, as in Qdrant).
      const latest = [...new Map(points.map((p) => [p.id, p])).values()];
      const rows = latest.map((p) => rowOf(p, spec, seq));
      await this.call('upsert points', () =>
        table.mergeInsert('id').whenMatchedUpdateAll().whenNotMatchedInsertAll().execute(rows),
      );
      if (index) {
        index.upsert(latest.map((p, i) => ({ id: p.id, payload: rows[i]!.payload as string, vectors: p.vectors })));
        await this.wroteVersion(before);
      }
    });
    this.wrote();
  }

  /**
   * Searches the vector index after catching it up with the table (one version check when nothing was written).
   * Payloads come from the index's copy, which the catch-up keeps equal to the table's.
   */
  async search(query: SearchQuery): Promise<SearchHit[]> {
    const { spec } = this.ready();
    // Validates the filter against the collection's fields, with the same typed errors as the table's predicates.
    whereClause(query.filter, spec);
    if (query.vector.length !== spec.dims[query.using])
      throw new AppError(
        'VALIDATION_FAILED',
        `the query vector has ${query.vector.length} values; ${query.using} vectors have ${spec.dims[query.using]}`,
      );
    const index = await this.caughtUpIndex();
    return index
      .search(query.vector, query.using, query.k, query.filter, query.exact ?? false)
      .map((h) => ({ id: h.id, score: h.score, payload: JSON.parse(h.payload) as PointPayload }));
  }

  /**
   * The points with these ids. From the vector index when it is loaded (after the same catch-up as a search, so a
   * get sees what a search sees), else from the table.
   */
  async get(ids: readonly string[], options: { withVectors?: boolean } = {}): Promise<StoredPoint[]> {
    if (ids.length === 0) return [];
    const { table } = this.ready();
    const withVectors = options.withVectors ?? false;
    if (this.index) {
      const index = await this.caughtUpIndex();
      return index.get(ids, withVectors).map((p) => {
        const point: StoredPoint = { id: p.id, payload: JSON.parse(p.payload) as PointPayload };
        if (withVectors) point.vectors = p.vectors as Record<EncoderRole, Float32Array>;
        return point;
      });
    }
    const rows = (await this.call('get points', () =>
      table
        .query()
        .where(`id IN (${ids.map(sqlString).join(', ')})`)
        .select(['id', 'payload', ...(withVectors ? [...ENCODER_ROLES] : [])])
        .limit(ids.length * 2 + 1)
        .toArray(),
    )) as Row[];
    const byId = new Map(rows.map((r) => [r.id, storedOf(r, withVectors)]));
    return ids.flatMap((id) => byId.get(id) ?? []);
  }

  async delete(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    const { table } = this.ready();
    await this.serial(async () => {
      const index = this.index;
      if (index) await this.catchUp();
      const before = await this.call('read the table version', () => table.version());
      await this.call('delete points', () => table.delete(`id IN (${ids.map(sqlString).join(', ')})`));
      if (index) {
        index.delete(ids);
        await this.wroteVersion(before);
      }
    });
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
    const page = rows.slice(0, options.limit).map((r) => storedOf(r, withVectors));
    const last = page[page.length - 1];
    return { points: page, ...(rows.length > options.limit && last ? { next: last.id } : {}) };
  }

  /**
   * Compacts the table's data files, keeps BTREE indexes on `id` (lookups by id and the upsert's merge read it) and
   * on `seq` (the vector index's catch-up reads it), catches the vector index up and saves a snapshot of it beside
   * the table. Versions older than LanceDB's default (7 days) are removed. The store also runs it by itself every
   * {@link EmbeddedStoreOptions.optimizeEvery} writes (saving the snapshot only once a tenth of the points changed
   * since the last, as a snapshot rewrites every vector) and once writes pause; `lookalike ingest` calls it at the
   * end of a run. Waits for this handle's running writes, and they wait for it.
   */
  optimize(): Promise<OptimizeResult> {
    return this.serial(() => this.optimizeNow(true));
  }

  private async optimizeNow(save: boolean): Promise<OptimizeResult> {
    const { table } = this.ready();
    // Not loaded (lazy): the table is compacted and indexed; the vector index has nothing to catch up or save.
    const index = this.index;
    const started = performance.now();
    this.writesSinceOptimize = 0;
    const rows = await this.call('count points', () => table.countRows());
    const before = (await this.call('read the table stats', () => table.stats())).fragmentStats.numFragments;
    const existing = new Set(
      (await this.call('list indexes', () => table.listIndices())).map((i) => i.columns.join(',')),
    );
    for (const column of ['id', SEQ])
      if (rows > 0 && !existing.has(column))
        await this.call(`index the ${column} column`, () =>
          table.createIndex(column, { config: lancedb.Index.btree() }),
        );
    await this.call('optimize the table', () => table.optimize());
    const after = (await this.call('read the table stats', () => table.stats())).fragmentStats.numFragments;
    if (!index) return { indexed: false, saved: false, fragments: { before, after }, ms: performance.now() - started };
    await this.catchUp();
    const due = index.changedSinceSave > 0 && (save || index.changedSinceSave >= SAVE_FRACTION * index.size);
    if (due) await this.saveIndex();
    const indexed = index.size === (await this.call('count points', () => table.countRows()));
    return { indexed, saved: due, fragments: { before, after }, ms: performance.now() - started };
  }

  private async saveIndex(): Promise<void> {
    const { index } = this.loaded();
    if (!this.wroteSinceSave) return;
    await this.call('save the vector index', () => index.save(this.indexDir));
    this.wroteSinceSave = false;
  }

  async ping(): Promise<void> {
    await this.call('list tables', () => this.db.tableNames());
  }

  /**
   * Waits for this handle's writes and a running optimize, saves the vector index if this handle wrote since the
   * last snapshot (a reader never writes one, so one writing process owns the snapshot), then closes the table.
   */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.idleTimer);
    await this.writing;
    try {
      if (this.wroteSinceSave && this.index && this.index.changedSinceSave > 0) await this.saveIndex();
    } finally {
      this.table?.close();
      this.db.close();
    }
  }
}
