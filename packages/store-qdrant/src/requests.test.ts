import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ENCODER_ROLES, filterSchema, type Filter, type Point } from '@lookalike/core';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  MAX_BATCH_POINTS,
  MAX_REQUEST_BYTES,
  countBody,
  createCollectionBody,
  deleteBody,
  filterJson,
  payloadIndexBodies,
  pointId,
  queryBody,
  retrieveBody,
  scrollBody,
  updateMetadataBody,
  upsertBodies,
} from './requests.js';

// Qdrant's official OpenAPI schema, 1.19: the one the project holds. The compose file pins the 1.18 server that
// matches the client (1.18; the 1.19 JS client needs Node 22); a 1.18 schema would be the closer check.
const openapi = JSON.parse(
  readFileSync(fileURLToPath(new URL('../test/openapi-1.19.json', import.meta.url)), 'utf8'),
) as { components: { schemas: Record<string, unknown> } };

/** OpenAPI 3.0 `nullable` to JSON Schema: `{nullable: true}` alone means null; with a type it adds null. */
function toJsonSchema(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(toJsonSchema);
  if (node === null || typeof node !== 'object') return node;
  const obj = Object.fromEntries(Object.entries(node).map(([k, v]) => [k, toJsonSchema(v)])) as Record<string, unknown>;
  if (obj.nullable === true) {
    delete obj.nullable;
    if (Object.keys(obj).length === 0 || (Object.keys(obj).length === 1 && 'description' in obj))
      return { type: 'null' };
    if (typeof obj.type === 'string') obj.type = [obj.type, 'null'];
    else if (obj.$ref || obj.anyOf || obj.oneOf || obj.allOf) return { anyOf: [obj, { type: 'null' }] };
  }
  return obj;
}

const ajv = new Ajv({ strict: false, allErrors: true });
addFormats.default(ajv);
for (const f of ['uint', 'uint8', 'uint32', 'uint64', 'int64', 'float', 'double', 'int32'])
  ajv.addFormat(f, { type: 'number', validate: (n: number) => Number.isFinite(n) && (!f.startsWith('u') || n >= 0) });
ajv.addSchema({ $id: 'qdrant', components: { schemas: toJsonSchema(openapi.components.schemas) } });
const validator = (name: string): ValidateFunction => {
  const v = ajv.getSchema(`qdrant#/components/schemas/${name}`);
  if (!v) throw new Error(`no schema ${name}`);
  return v;
};
function expectValid(name: string, body: unknown): void {
  const v = validator(name);
  const ok = v(body);
  expect(ok, `${name}: ${ajv.errorsText(v.errors)}`).toBe(true);
}

const spec = {
  name: 'lookalike',
  dims: { robust: 128, clean: 128 },
  indexedFields: [
    { path: 'labels.part', type: 'keyword' as const },
    { path: 'width', type: 'integer' as const },
    { path: 'metadata.score', type: 'float' as const },
  ],
};

function point(i: number, dim = 8, extra = ''): Point {
  const v = Float32Array.from({ length: dim }, (_, k) => Math.sin(i + k));
  return {
    id: (i.toString(16).padStart(8, '0') + 'ab').repeat(7).slice(0, 64),
    vectors: { robust: v, clean: v },
    payload: {
      id: '',
      source: `catalog/${i}.png${extra}`,
      format: 'png',
      width: 256,
      height: 256,
      bytes: 1000,
      labels: { part: 'gear', defect: 'crack' },
      ingestedAt: '2026-11-23T00:00:00.000Z',
      embeddings: {
        robust: { modelId: 'defect-cnn-fare4', preprocessHash: 'abc' },
        clean: { modelId: 'defect-cnn-clean', preprocessHash: 'abc' },
      },
    },
  };
}

const filter: Filter = {
  must: [
    { field: 'labels.part', match: 'gear' },
    { field: 'width', range: { gte: 10, lt: 300 } },
  ],
  should: [
    { field: 'labels.defect', any: ['crack', 'dent'] },
    { field: 'metadata.line', any: [1, 2] },
    { field: 'metadata.mixed', any: ['a', 1.5, true] },
  ],
  mustNot: [{ field: 'labels.defect', match: 'none' }],
};

/** Every object key anywhere in a JSON value. */
function keysOf(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(keysOf);
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => [k, ...keysOf(v)]);
}

describe('Qdrant request bodies', () => {
  it('match the official OpenAPI schema', () => {
    expectValid('CreateCollection', createCollectionBody(spec));
    // What a collection of a store generation records (towers, state, re-index totals) as collection metadata.
    expectValid(
      'UpdateCollection',
      updateMetadataBody({
        lookalike: {
          schemaVersion: 1,
          towers: {
            robust: { modelId: 'm', preprocessHash: 'abc', dim: 48 },
            clean: { modelId: 'n', preprocessHash: 'abc', dim: 48 },
          },
          state: 'building',
          createdAt: '2026-12-01T00:00:00.000Z',
          reindex: { run: 1, page: 0, startedAt: '2026-12-01T00:00:00.000Z' },
        },
      }),
    );
    for (const b of payloadIndexBodies(spec)) expectValid('CreateFieldIndex', b);
    for (const b of upsertBodies([point(1), point(2)])) expectValid('PointInsertOperations', b);
    expectValid('QueryRequest', queryBody({ vector: Float32Array.of(1, 0, 0), using: 'robust', k: 10, filter }));
    expectValid('QueryRequest', queryBody({ vector: Float32Array.of(1, 0, 0), using: 'clean', k: 5, exact: true }));
    expectValid('PointRequest', retrieveBody([point(1).id], true));
    expectValid('PointRequest', retrieveBody([point(1).id], false));
    expectValid('PointsSelector', deleteBody([point(1).id]));
    expectValid('CountRequest', countBody(filter));
    expectValid('CountRequest', countBody());
    expectValid('ScrollRequest', scrollBody({ limit: 100, filter, withVectors: true, cursor: pointId(point(3).id) }));
    expectValid('Filter', filterJson(filter));
  });

  it('rejects what the schema rejects (the validator is not vacuous)', () => {
    expect(validator('QueryRequest')({ query: [1, 2], limit: 0 })).toBe(false);
    expect(validator('Filter')({ must: [{ key: 'a', match: { value: { nested: 1 } } }] })).toBe(false);
    expect(validator('CreateCollection')({ vectors: { robust: { size: 4, distance: 'Angular' } } })).toBe(false);
  });

  it('compiles any valid filter, however hostile its strings, to a schema-valid filter that keeps values as data', () => {
    const value = fc.oneof(
      fc.string(),
      fc.constantFrom('" OR 1=1 --', "'; DROP TABLE points; --", '{"$ne": null}', '\\u0000', 'labels.part', '":":'),
      fc.integer(),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.boolean(),
    );
    const path = fc.constantFrom('labels.part', 'labels.defect', 'metadata.line_no', 'width', 'id');
    const condition = fc.oneof(
      fc.record({ field: path, match: value }),
      fc.record({ field: path, any: fc.array(value, { minLength: 1, maxLength: 5 }) }),
      fc.record({ field: path, range: fc.record({ gte: fc.integer(), lt: fc.integer() }) }),
    );
    const arbFilter = fc.record(
      { must: fc.array(condition, { maxLength: 4 }), mustNot: fc.array(condition, { maxLength: 3 }) },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(arbFilter, (f) => {
        const parsed = filterSchema.safeParse(f);
        if (!parsed.success) return;
        const json = filterJson(parsed.data);
        if (json) expectValid('Filter', json);
        // Every string value appears only as a JSON value, never as a key or structure.
        for (const k of keysOf(json ?? {}))
          expect([
            'must',
            'should',
            'must_not',
            'key',
            'match',
            'value',
            'any',
            'range',
            'gt',
            'gte',
            'lt',
            'lte',
          ]).toContain(k);
      }),
      { numRuns: 300 },
    );
  });

  it('splits upserts under the request limit and the batch cap', () => {
    const many = Array.from({ length: MAX_BATCH_POINTS * 2 + 7 }, (_, i) => point(i));
    const bodies = upsertBodies(many);
    expect(bodies.map((b) => b.points.length)).toEqual([MAX_BATCH_POINTS, MAX_BATCH_POINTS, 7]);
    const big = Array.from({ length: 40 }, (_, i) => point(i, 512, 'x'.repeat(1_000_000)));
    for (const b of upsertBodies(big)) expect(JSON.stringify(b).length).toBeLessThan(MAX_REQUEST_BYTES + 2_000_000);
    expect(upsertBodies(big).length).toBeGreaterThan(1);
  });

  it('maps sha256 ids to stable UUIDs and keeps the full id in the payload', () => {
    const p = point(5);
    expect(pointId(p.id)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(pointId(p.id)).toBe(pointId(p.id));
    const [body] = upsertBodies([p]);
    expect((body!.points[0]!.payload as { id: string }).id).toBe(p.id);
    expect(Object.keys(body!.points[0]!.vector as object)).toEqual([...ENCODER_ROLES]);
  });
});
