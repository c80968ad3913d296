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
  if ('match' in c) return `${col} = ${literal(c.match)}`;
  if ('any' in c) return `${col} IN (${c.any.map(literal).join(', ')})`;
  const parts: string[] = [];
  if (c.range.gt !== undefined) parts.push(`${col} > ${literal(c.range.gt)}`);
  if (c.range.gte !== undefined) parts.push(`${col} >= ${literal(c.range.gte)}`);
  if (c.range.lt !== undefined) parts.push(`${col} < ${literal(c.range.lt)}`);
  if (c.range.lte !== undefined) parts.push(`${col} <= ${literal(c.range.lte)}`);
  return `(${parts.join(' AND ')})`;
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
