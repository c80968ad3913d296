import { z } from 'zod';
import type { FieldValue } from './types.js';

/**
 * A payload field path: dotted identifiers such as `labels.part` or `metadata.line_no`. Anything else (quotes,
 * brackets, operators, whitespace) is refused here, so compiled filters can never carry injected syntax.
 */
export const FIELD_PATH = /^[A-Za-z_][A-Za-z0-9_]{0,63}(\.[A-Za-z_][A-Za-z0-9_]{0,63}){0,3}$/;

const fieldValue = z.union([z.string().max(1024), z.number().finite(), z.boolean()]);
const field = z.string().regex(FIELD_PATH, 'must be a dotted field path such as labels.part');

/** Match one exact value. */
export interface MatchCondition {
  field: string;
  match: FieldValue;
}
/** Match any of several values. */
export interface AnyCondition {
  field: string;
  any: FieldValue[];
}
/** Numeric range; at least one bound. */
export interface RangeCondition {
  field: string;
  range: { gt?: number; gte?: number; lt?: number; lte?: number };
}
/** One condition of a {@link Filter}. */
export type Condition = MatchCondition | AnyCondition | RangeCondition;

/**
 * The one typed filter model. Every store adapter compiles it to its own language (Qdrant filter JSON, the embedded
 * engine's SQL-like predicates); nothing else reaches a store as a filter.
 * Semantics: all of `must`, at least one of `should` (when present), none of `mustNot`.
 */
export interface Filter {
  must?: Condition[];
  should?: Condition[];
  mustNot?: Condition[];
}

const condition: z.ZodType<Condition> = z.union([
  z.strictObject({ field, match: fieldValue }),
  z.strictObject({ field, any: z.array(fieldValue).min(1).max(256) }),
  z.strictObject({
    field,
    range: z
      .strictObject({
        gt: z.number().finite().optional(),
        gte: z.number().finite().optional(),
        lt: z.number().finite().optional(),
        lte: z.number().finite().optional(),
      })
      .refine((r) => Object.values(r).some((v) => v !== undefined), 'a range needs at least one bound'),
  }),
]);

/** zod schema for {@link Filter}; request validation and job payloads use it. */
export const filterSchema: z.ZodType<Filter> = z.strictObject({
  must: z.array(condition).max(64).optional(),
  should: z.array(condition).max(64).optional(),
  mustNot: z.array(condition).max(64).optional(),
});
