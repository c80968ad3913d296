/**
 * The pieces the schema modules share: request parsing into one `ValidationError`, numbers and JSON sent as text,
 * image ids, towers, k and filters.
 */
import { ENCODER_ROLES, ValidationError, filterSchema, formatIssues, toValidationIssues } from '@lookalike/core';
import { K_RANGE } from '@lookalike/search';
import { z } from 'zod';

/** Longest search text accepted (the text encoder's own bound). */
export const MAX_TEXT_LENGTH = 2000;

/** Parses `value` with `schema`, or throws one {@link ValidationError} listing every problem. */
export function parse<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = toValidationIssues(result.error.issues);
  throw new ValidationError(`The ${what} is invalid: ${formatIssues(issues)}.`, issues);
}

/** A whole number sent as text (query strings and multipart fields), checked against `schema`. */
export const intString = (schema: z.ZodNumber) =>
  z
    .string()
    .regex(/^\d{1,6}$/, 'must be a whole number')
    .transform(Number)
    .pipe(schema);

/** A JSON document sent as text (query strings and multipart fields), checked against `schema`. */
export const jsonString = <S extends z.ZodType>(schema: S, description: string) =>
  z
    .string()
    .max(65_536)
    .transform((text, ctx): unknown => {
      try {
        return JSON.parse(text);
      } catch {
        ctx.addIssue({ code: 'custom', message: 'must be a JSON document' });
        return z.NEVER;
      }
    })
    .pipe(schema)
    .meta({ description });

export const imageIdSchema = z
  .string()
  .regex(/^[0-9a-f]{64}$/, 'must be an image id: the 64-character lowercase hex sha256 of the image')
  .meta({ description: 'Image id: the lowercase hex sha256 of the original bytes.', example: 'ab'.repeat(32) });

export const encoderSchema = z
  .enum(ENCODER_ROLES)
  .meta({ description: 'Which tower to search with: `robust` (FARE) or `clean` (the baseline). Default `robust`.' });

export const kSchema = z
  .number()
  .int()
  .min(K_RANGE.min)
  .max(K_RANGE.max)
  .meta({ description: `Number of hits, ${K_RANGE.min}–${K_RANGE.max}; default ${K_RANGE.default}.` });

export const searchFilterSchema = filterSchema.meta({
  id: 'Filter',
  description:
    'Payload filter: all of `must`, at least one of `should`, none of `mustNot`; conditions match a value, any ' +
    'of several values, or a numeric range of a field such as `labels.part`.',
});

export const fieldValue = z.union([z.string(), z.number(), z.boolean(), z.null()]);

export const idParamsSchema = z.object({ id: imageIdSchema });
