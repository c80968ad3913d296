/**
 * Compiles the typed filter model to a LanceDB (DataFusion SQL) predicate. Column names come from the collection's
 * indexed fields, never from input; values are literals: strings single-quoted with quotes doubled, numbers
 * printed from finite numbers, booleans as TRUE/FALSE. No input can change the predicate's structure.
 */
import { ValidationError, type CollectionSpec, type Condition, type Filter, type FieldValue } from '@lookalike/core';

/** The column that holds a filterable payload field, e.g. `labels.part` → `f_labels_part`. */
export function fieldColumn(path: string): string {
  return `f_${path.replace(/\./g, '_')}`;
}

function literal(value: FieldValue): string {
  if (typeof value === 'string') return `'${value.replace(/'/g, "''")}'`;
  if (typeof value === 'boolean') return value ? 'TRUE' : 'FALSE';
  if (!Number.isFinite(value)) throw new ValidationError(`filter values must be finite numbers; got ${value}`);
  // Exponent notation is valid SQL for DataFusion; integers print as integers.
  return Number.isInteger(value) ? value.toFixed(0) : value.toString();
}

function condition(c: Condition, fields: Map<string, string>): string {
  const type = fields.get(c.field);
  if (!type) {
    throw new ValidationError(
      `cannot filter on ${c.field}: filterable fields are ${[...fields.keys()].join(', ') || 'none'}`,
    );
  }
  const col = fieldColumn(c.field);
  const value = (v: FieldValue) => literal(checked(v, type, c.field));
  if ('match' in c) return `${col} = ${value(c.match)}`;
  if ('any' in c) return `${col} IN (${c.any.map(value).join(', ')})`;
  if (type === 'keyword' || type === 'bool')
    throw new ValidationError(
      `${c.field} holds ${type === 'bool' ? 'true/false' : 'text'}; a range cannot apply to it`,
    );
  const parts: string[] = [];
  // On an integer column a fractional bound becomes the equivalent whole one (x > 0.5 ⇔ x ≥ 1 ⇔ x > 0), and a bound
  // beyond ±2^62 is clamped, so the predicate always parses.
  const int = (v: number, round: (x: number) => number) =>
    type === 'integer' ? literal(Math.min(Math.max(round(v), -INT64_SAFE), INT64_SAFE)) : literal(v);
  if (c.range.gt !== undefined) parts.push(`${col} > ${int(c.range.gt, Math.floor)}`);
  if (c.range.gte !== undefined) parts.push(`${col} >= ${int(c.range.gte, Math.ceil)}`);
  if (c.range.lt !== undefined) parts.push(`${col} < ${int(c.range.lt, Math.ceil)}`);
  if (c.range.lte !== undefined) parts.push(`${col} <= ${int(c.range.lte, Math.floor)}`);
  return `(${parts.join(' AND ')})`;
}

/** Whole numbers up to here print exactly and fit the int64 columns. */
const INT64_SAFE = 2 ** 62;

/** A value of the field's type, or a typed 400 that says what the field holds. */
function checked(v: FieldValue, type: string, field: string): FieldValue {
  const ok =
    type === 'keyword'
      ? typeof v === 'string'
      : type === 'bool'
        ? typeof v === 'boolean'
        : type === 'integer'
          ? typeof v === 'number' && Number.isInteger(v) && Math.abs(v) <= INT64_SAFE
          : typeof v === 'number';
  if (!ok)
    throw new ValidationError(
      `${field} holds ${type === 'keyword' ? 'text' : type === 'bool' ? 'true/false' : type === 'integer' ? 'whole numbers' : 'numbers'}; ${JSON.stringify(v)} cannot match it`,
    );
  return v;
}

/** The SQL predicate of a filter, or undefined for no filter. Comparisons with NULL are false, as in Qdrant. */
export function whereClause(
  filter: Filter | undefined,
  spec: Pick<CollectionSpec, 'indexedFields'>,
): string | undefined {
  if (!filter) return undefined;
  const fields = new Map(spec.indexedFields.map((f) => [f.path, f.type]));
  const clauses: string[] = [];
  for (const c of filter.must ?? []) clauses.push(`(${condition(c, fields)})`);
  if (filter.should?.length) clauses.push(`(${filter.should.map((c) => `(${condition(c, fields)})`).join(' OR ')})`);
  for (const c of filter.mustNot ?? []) clauses.push(`(COALESCE(NOT (${condition(c, fields)}), TRUE))`);
  return clauses.length ? clauses.join(' AND ') : undefined;
}
