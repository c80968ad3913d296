/**
 * Pure builders of the Qdrant REST request bodies the adapter sends. Keeping them pure lets the tests validate
 * every body against Qdrant's official OpenAPI schema without a server.
 */
import { createHash } from 'node:crypto';
import {
  ENCODER_ROLES,
  type CollectionSpec,
  type Condition,
  type Filter,
  type Point,
  type SearchQuery,
} from '@lookalike/core';

/** Qdrant's REST request limit is 32 MiB; batches stay well under it, allowing for JSON overhead estimates. */
export const MAX_REQUEST_BYTES = 24 * 1024 * 1024;
/** Most points one upsert carries, whatever their size. */
export const MAX_BATCH_POINTS = 512;

/** HNSW settings of the collection: Qdrant's defaults, written out so a deployment's index is explicit. */
export const HNSW = { m: 16, ef_construct: 128 } as const;
/** Search-time beam width; higher than Qdrant's default for recall@10 ≥ 0.95 at 100k points. */
export const HNSW_EF = 128;

/**
 * Qdrant point ids are UUIDs or integers; Lookalike's ids are sha256 hex. The point id is the first 128 bits of the
 * sha256 formatted as a UUID, and the full id is kept in the payload (`id`, indexed).
 */
export function pointId(id: string): string {
  const hex = /^[0-9a-f]{64}$/.test(id) ? id : createHash('sha256').update(id).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** `PUT /collections/{name}`: two named cosine vectors, explicit HNSW settings. */
export function createCollectionBody(spec: CollectionSpec): Record<string, unknown> {
  const vectors = Object.fromEntries(
    ENCODER_ROLES.map((role) => [role, { size: spec.dims[role], distance: 'Cosine' }]),
  );
  return { vectors, hnsw_config: { ...HNSW }, on_disk_payload: false };
}

/**
 * `PATCH /collections/{name}`: sets top-level keys of the collection's metadata (Qdrant merges them into what is
 * there). Lookalike records the generation a collection holds under one key.
 */
export function updateMetadataBody(metadata: Record<string, unknown>): Record<string, unknown> {
  return { metadata };
}

/** `PUT /collections/{name}/index` bodies: the full id plus every filter field. */
export function payloadIndexBodies(spec: CollectionSpec): Record<string, unknown>[] {
  const fields = [{ path: 'id', type: 'keyword' as const }, ...spec.indexedFields];
  return fields.map((f) => ({ field_name: f.path, field_schema: f.type }));
}

/** Qdrant matches strings, integers and booleans exactly; a float becomes the one-point range [v, v]. */
function exact(field: string, v: string | number | boolean): Record<string, unknown> {
  if (typeof v === 'number' && !Number.isInteger(v)) return { key: field, range: { gte: v, lte: v } };
  return { key: field, match: { value: v } };
}

function conditionJson(c: Condition): Record<string, unknown> {
  if ('match' in c) return exact(c.field, c.match);
  if ('any' in c) {
    // Qdrant's MatchAny holds distinct strings or distinct integers; other mixes become a `should` of exact matches.
    const values = [...new Set(c.any)];
    const homogeneous =
      values.every((v) => typeof v === 'string') || values.every((v) => typeof v === 'number' && Number.isInteger(v));
    if (homogeneous) return { key: c.field, match: { any: values } };
    return { should: values.map((v) => exact(c.field, v)) };
  }
  const range: Record<string, number> = {};
  for (const k of ['gt', 'gte', 'lt', 'lte'] as const) if (c.range[k] !== undefined) range[k] = c.range[k];
  return { key: c.field, range };
}

/**
 * Compiles the typed filter to Qdrant filter JSON. Field paths were validated by `filterSchema` and values travel
 * as JSON values, never as syntax, so no input can change the filter's structure.
 */
export function filterJson(filter: Filter | undefined): Record<string, unknown> | undefined {
  if (!filter) return undefined;
  const out: Record<string, unknown> = {};
  if (filter.must?.length) out.must = filter.must.map(conditionJson);
  if (filter.should?.length) out.should = filter.should.map(conditionJson);
  if (filter.mustNot?.length) out.must_not = filter.mustNot.map(conditionJson);
  return Object.keys(out).length ? out : undefined;
}

/** One upsert point (`PointStruct`). */
export function pointJson(p: Point): Record<string, unknown> {
  return {
    id: pointId(p.id),
    vector: Object.fromEntries(ENCODER_ROLES.map((role) => [role, Array.from(p.vectors[role])])),
    payload: { ...p.payload, id: p.id },
  };
}

/**
 * `PUT /collections/{name}/points` bodies: the points split so that each request stays under
 * {@link MAX_REQUEST_BYTES} (estimated from the vector lengths and the payload's JSON) and {@link MAX_BATCH_POINTS}.
 */
export function upsertBodies(points: readonly Point[]): { points: Record<string, unknown>[] }[] {
  const bodies: { points: Record<string, unknown>[] }[] = [];
  let current: Record<string, unknown>[] = [];
  let bytes = 0;
  for (const p of points) {
    const json = pointJson(p);
    // A float32 prints as at most ~16 characters with its comma.
    const size =
      16 * ENCODER_ROLES.reduce((n, r) => n + p.vectors[r].length, 0) + JSON.stringify(json.payload).length + 128;
    if (current.length > 0 && (bytes + size > MAX_REQUEST_BYTES || current.length >= MAX_BATCH_POINTS)) {
      bodies.push({ points: current });
      current = [];
      bytes = 0;
    }
    current.push(json);
    bytes += size;
  }
  if (current.length) bodies.push({ points: current });
  return bodies;
}

/** `POST /collections/{name}/points/query`: nearest neighbours of one vector in one named space. */
export function queryBody(q: SearchQuery): Record<string, unknown> {
  const filter = filterJson(q.filter);
  return {
    query: Array.from(q.vector),
    using: q.using,
    limit: q.k,
    with_payload: true,
    with_vector: false,
    params: { exact: q.exact ?? false, hnsw_ef: Math.max(HNSW_EF, q.k) },
    ...(filter ? { filter } : {}),
  };
}

/** `POST /collections/{name}/points`: points by id. */
export function retrieveBody(ids: readonly string[], withVectors: boolean): Record<string, unknown> {
  return { ids: ids.map(pointId), with_payload: true, with_vector: withVectors ? [...ENCODER_ROLES] : false };
}

/** `POST /collections/{name}/points/delete`. */
export function deleteBody(ids: readonly string[]): Record<string, unknown> {
  return { points: ids.map(pointId) };
}

/** `POST /collections/{name}/points/count` (exact). */
export function countBody(filter?: Filter): Record<string, unknown> {
  const f = filterJson(filter);
  return { exact: true, ...(f ? { filter: f } : {}) };
}

/** `POST /collections/{name}/points/scroll`; the cursor is the previous page's `next_page_offset`. */
export function scrollBody(options: {
  filter?: Filter;
  limit: number;
  cursor?: string;
  withVectors?: boolean;
}): Record<string, unknown> {
  const f = filterJson(options.filter);
  return {
    limit: options.limit,
    with_payload: true,
    with_vector: options.withVectors ? [...ENCODER_ROLES] : false,
    ...(options.cursor ? { offset: options.cursor } : {}),
    ...(f ? { filter: f } : {}),
  };
}
