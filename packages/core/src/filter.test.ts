import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FIELD_PATH, filterSchema } from './filter.js';

describe('filterSchema', () => {
  it('accepts the three condition kinds under must, should and mustNot', () => {
    const filter = {
      must: [{ field: 'labels.part', match: 'gear' }],
      should: [{ field: 'labels.defect', any: ['crack', 'dent'] }],
      mustNot: [{ field: 'metadata.line', range: { gte: 3, lt: 7 } }],
    };
    expect(filterSchema.parse(filter)).toEqual(filter);
  });

  it('refuses unknown keys, empty ranges, empty any-lists and non-finite numbers', () => {
    expect(filterSchema.safeParse({ must: [{ field: 'a', match: 1, extra: true }] }).success).toBe(false);
    expect(filterSchema.safeParse({ must: [{ field: 'a', range: {} }] }).success).toBe(false);
    expect(filterSchema.safeParse({ must: [{ field: 'a', any: [] }] }).success).toBe(false);
    expect(filterSchema.safeParse({ must: [{ field: 'a', match: Number.NaN }] }).success).toBe(false);
    expect(filterSchema.safeParse({ where: 'part = gear' }).success).toBe(false);
  });

  it('never accepts a field path carrying quotes, operators, brackets or whitespace', () => {
    const hostile = fc.string({ minLength: 1, maxLength: 40 }).filter((s) => /["'`;()[\]{}\s=<>!|&\\/*-]/.test(s));
    fc.assert(
      fc.property(hostile, (field) => {
        expect(FIELD_PATH.test(field)).toBe(false);
        expect(filterSchema.safeParse({ must: [{ field, match: 'x' }] }).success).toBe(false);
      }),
    );
  });

  it('carries any string value through unchanged, as data', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (value) => {
        const parsed = filterSchema.parse({ must: [{ field: 'labels.part', match: value }] });
        expect(parsed.must?.[0]).toEqual({ field: 'labels.part', match: value });
      }),
    );
  });
});
