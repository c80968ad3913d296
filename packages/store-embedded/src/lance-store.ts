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

/**
 * The `VectorStore` port on an embedded LanceDB table in a folder: one row per image with both vectors, the payload
 * as JSON and one typed column per filterable field. Search is exact below {@link INDEX_MIN_ROWS} rows; above it,
 * {@link EmbeddedVectorStore.optimize} builds an HNSW (scalar-quantised) index per vector with a refine step, and
 * rows added since are still searched exactly until the next optimize.
 */
export class EmbeddedVectorStore implements VectorStore {
  private table: lancedb.Table | undefined;
  private spec: CollectionSpec | undefined;

  private constructor(
    private readonly db: lancedb.Connection,
    private readonly name: string,
  ) {}

  /**
   * Opens (or prepares to create) the table `name` in the folder `dir`. Every read checks the table's latest version
   * (a local file stat), so a server sees what another process (`lookalike ingest`, a worker) has written since. The
   * store is for one machine and one writing process at a time: LanceDB's merge-insert does not stop two processes
   * that write the same new id at once from both appending it; several workers need Qdrant.
   */
  static async open(dir: string, name = 'lookalike'): Promise<EmbeddedVectorStore> {
    return new EmbeddedVectorStore(await lancedb.connect(dir, { readConsistencyInterval: 0 }), name);
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
    await this.call('upsert points', () =>
      table.mergeInsert('id').whenMatchedUpdateAll().whenNotMatchedInsertAll().execute(rows),
    );
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
    await this.call('delete points', () => table.delete(`id IN (${ids.map(sqlString).join(', ')})`));
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
   * Builds or refreshes the ANN indexes (HNSW with scalar quantisation, cosine) once the table has enough rows, and
   * compacts the files. Ingest calls it at the end of a run.
   */
  async optimize(): Promise<{ indexed: boolean }> {
    const { table } = this.ready();
    const rows = await table.countRows();
    if (rows < INDEX_MIN_ROWS) return { indexed: false };
    const existing = new Set((await table.listIndices()).map((i) => i.columns.join(',')));
    for (const role of ENCODER_ROLES) {
      if (!existing.has(role))
        await this.call(`index the ${role} vectors`, () =>
          table.createIndex(role, {
            config: lancedb.Index.hnswSq({ distanceType: 'cosine', m: 16, efConstruction: 200 }),
          }),
        );
    }
    await this.call('optimize the table', () => table.optimize());
    return { indexed: true };
  }

  async ping(): Promise<void> {
    await this.call('list tables', () => this.db.tableNames());
  }

  close(): Promise<void> {
    this.table?.close();
    this.db.close();
    return Promise.resolve();
  }
}
