/**
 * The embedded store's table, row by row: the LanceDB call wrapper, opening a committed table, the row of a point and
 * the point of a row, and the filter columns a table gains when a field is indexed after it was made.
 */
import type * as lancedb from '@lancedb/lancedb';
import { Bool, Float64, Int64, Utf8, type DataType } from 'apache-arrow';
import {
  AppError,
  ENCODER_ROLES,
  UnavailableError,
  type CollectionSpec,
  type EncoderRole,
  type Point,
  type PointPayload,
  type StoredPoint,
} from '@lookalike/core';
import { columnValue } from './vector-index.js';
import { fieldColumn } from './where.js';

/** A row of the table as LanceDB returns it. */
export interface Row {
  id: string;
  payload: string;
  robust?: ArrayLike<number>;
  clean?: ArrayLike<number>;
  _distance?: number;
  [column: string]: unknown;
}

/** `s` as an SQL string literal. */
export function sqlString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/** The Arrow type of a filter column. */
export function arrowType(type: CollectionSpec['indexedFields'][number]['type']): DataType {
  return type === 'keyword'
    ? new Utf8()
    : type === 'integer'
      ? new Int64()
      : type === 'float'
        ? new Float64()
        : new Bool();
}

/**
 * Runs one LanceDB call; a failure that is not already an `AppError` becomes an `UnavailableError` naming `what`
 * could not be done (transient: job retries apply).
 */
export async function storeCall<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (error instanceof AppError) throw error;
    throw new UnavailableError('store', `the embedded store could not ${what}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/**
 * Opens table `name`, or undefined when it is not there. A table another process is creating shows in the folder's
 * listing before its first version is committed, and opening it then fails with "not found": that is retried for up
 * to 2 s (the creation commits in milliseconds), then read as no table, never as a broken store.
 */
export async function openCommittedTable(db: lancedb.Connection, name: string): Promise<lancedb.Table | undefined> {
  for (let attempt = 0; ; attempt++) {
    if (!(await storeCall('list tables', () => db.tableNames())).includes(name)) return undefined;
    try {
      return await db.openTable(name);
    } catch (error) {
      if (!/not found/i.test((error as Error).message))
        throw new UnavailableError(
          'store',
          `the embedded store could not open table ${name}: ${(error as Error).message}`,
          {
            cause: error,
          },
        );
      if (attempt >= 20) return undefined;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** The table column holding each row's write sequence number (what the vector index has caught up to). */
export const SEQ = 'seq';

/** The table row of point `p` at write sequence `seq`; refuses vectors of the wrong dimension. */
export function rowOf(p: Point, spec: CollectionSpec, seq: number): Record<string, unknown> {
  const row: Record<string, unknown> = { id: p.id, payload: JSON.stringify({ ...p.payload, id: p.id }), [SEQ]: seq };
  for (const r of ENCODER_ROLES) {
    if (p.vectors[r].length !== spec.dims[r])
      throw new AppError(
        'VALIDATION_FAILED',
        `point ${p.id} has a ${r} vector of ${p.vectors[r].length} values, not ${spec.dims[r]}`,
      );
    row[r] = Array.from(p.vectors[r]);
  }
  for (const f of spec.indexedFields) row[fieldColumn(f.path)] = columnValue(p.payload, f);
  return row;
}

/** A table row as a stored point, with its vectors when asked for. */
export function storedOf(row: Row, withVectors: boolean): StoredPoint {
  const payload = JSON.parse(row.payload) as PointPayload;
  const point: StoredPoint = { id: row.id, payload };
  if (withVectors)
    point.vectors = Object.fromEntries(
      ENCODER_ROLES.map((r) => [r, Float32Array.from(row[r] as ArrayLike<number>)]),
    ) as Record<EncoderRole, Float32Array>;
  return point;
}

/**
 * Adds the filter columns of fields indexed since the table was made, and fills them from the payloads that
 * already hold those fields (one pass over the payloads). Another process adding them at the same time is fine.
 */
export async function addFilterColumns(table: lancedb.Table, fields: CollectionSpec['indexedFields']): Promise<void> {
  const sqlType = { keyword: 'string', integer: 'bigint', float: 'double', bool: 'boolean' } as const;
  try {
    await storeCall('add filter columns', () =>
      table.addColumns(
        fields.map((f) => ({ name: fieldColumn(f.path), valueSql: `CAST(NULL AS ${sqlType[f.type]})` })),
      ),
    );
  } catch (error) {
    const schema = await table.schema();
    if (!fields.every((f) => schema.fields.some((s) => s.name === fieldColumn(f.path)))) throw error;
  }
  let cursor: string | undefined;
  for (;;) {
    const rows = (await storeCall('fill filter columns', () => {
      const q = table
        .query()
        .select(['id', 'payload'])
        .orderBy({ columnName: 'id', ascending: true, nullsFirst: false })
        .limit(4096);
      return (cursor ? q.where(`id > ${sqlString(cursor)}`) : q).toArray();
    })) as { id: string; payload: string }[];
    for (const row of rows) {
      const payload: unknown = JSON.parse(row.payload);
      const values = Object.fromEntries(
        fields.flatMap((f) => {
          const v = columnValue(payload, f);
          return v === null ? [] : [[fieldColumn(f.path), typeof v === 'string' ? sqlString(v) : String(v)]];
        }),
      );
      if (Object.keys(values).length)
        await storeCall('fill filter columns', () =>
          table.update({ where: `id = ${sqlString(row.id)}`, valuesSql: values }),
        );
    }
    if (rows.length < 4096) return;
    cursor = rows[rows.length - 1]!.id;
  }
}
