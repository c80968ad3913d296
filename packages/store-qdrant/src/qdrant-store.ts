import { QdrantClient } from '@qdrant/js-client-rest';
import {
  AppError,
  ENCODER_ROLES,
  UnavailableError,
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
  countBody,
  createCollectionBody,
  deleteBody,
  payloadIndexBodies,
  queryBody,
  retrieveBody,
  scrollBody,
  upsertBodies,
} from './requests.js';

/** How to reach Qdrant. */
export interface QdrantStoreOptions {
  url: string;
  apiKey?: string;
  collection: string;
  /** Per-request timeout in milliseconds; default 30 s. */
  timeoutMs?: number;
}

type Body = Record<string, unknown>;
interface RawPoint {
  id: string | number;
  score?: number;
  payload?: Record<string, unknown> | null;
  vector?: unknown;
}

function statusOf(error: unknown): number | undefined {
  const e = error as { status?: unknown; response?: { status?: unknown } };
  const s = e.status ?? e.response?.status;
  return typeof s === 'number' ? s : undefined;
}

/**
 * Maps a client failure to the app's errors: no answer, timeouts, 429 and 5xx are transient
 * (`UnavailableError`, so job retries apply); other statuses mean the request itself was wrong.
 */
function translate(error: unknown, what: string): AppError {
  if (error instanceof AppError) return error;
  const status = statusOf(error);
  const message = error instanceof Error ? error.message : String(error);
  if (status === undefined || status === 429 || status >= 500) {
    return new UnavailableError('store', `Qdrant could not ${what}: ${message}`, { cause: error, details: { status } });
  }
  if (status === 404) return new AppError('NOT_FOUND', `Qdrant could not ${what}: ${message}`, { cause: error });
  return new AppError('INTERNAL', `Qdrant refused to ${what} (HTTP ${status}): ${message}`, {
    cause: error,
    details: { status },
  });
}

function toFloat32(v: unknown): Float32Array {
  return Float32Array.from(Array.isArray(v) ? (v as number[]) : []);
}

function storedPoint(raw: RawPoint, withVectors: boolean): StoredPoint {
  const payload = { ...(raw.payload ?? {}) } as unknown as PointPayload & { id: string };
  const point: StoredPoint = { id: payload.id, payload };
  if (withVectors && raw.vector && typeof raw.vector === 'object') {
    const named = raw.vector as Record<string, unknown>;
    point.vectors = Object.fromEntries(ENCODER_ROLES.map((r) => [r, toFloat32(named[r])])) as Record<
      EncoderRole,
      Float32Array
    >;
  }
  return point;
}

/**
 * The `VectorStore` port on Qdrant: one collection with two named cosine vectors (`robust`, `clean`), HNSW,
 * payload indexes on the filter fields, upserts batched under the request limit and acknowledged (`wait`).
 */
export class QdrantVectorStore implements VectorStore {
  private readonly client: QdrantClient;
  private readonly collection: string;

  constructor(options: QdrantStoreOptions) {
    this.client = new QdrantClient({
      url: options.url,
      apiKey: options.apiKey,
      timeout: options.timeoutMs ?? 30_000,
      checkCompatibility: false,
    });
    this.collection = options.collection;
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw translate(error, what);
    }
  }

  async ensureCollection(spec: CollectionSpec): Promise<void> {
    const { exists } = await this.call('check the collection', () => this.client.collectionExists(this.collection));
    if (exists) {
      const info = await this.call('read the collection', () => this.client.getCollection(this.collection));
      const vectors = (info.config.params.vectors ?? {}) as Record<string, { size?: number } | undefined>;
      for (const role of ENCODER_ROLES) {
        const size = vectors[role]?.size;
        if (size !== spec.dims[role]) {
          throw new AppError(
            'CONFLICT',
            `Qdrant collection ${this.collection} has ${role} vectors of size ${size ?? 'none'}, but the ${role} ` +
              `model embeds in ${spec.dims[role]} dimensions; use another COLLECTION or re-create it`,
          );
        }
      }
    } else {
      await this.call('create the collection', () =>
        this.client.createCollection(this.collection, createCollectionBody(spec) as never),
      ).catch(async (error: unknown) => {
        // Another process (a worker starting beside this one) created it in between: check it like an existing one.
        const again = await this.call('check the collection', () => this.client.collectionExists(this.collection));
        if (!again.exists) throw error;
        return this.ensureCollection(spec);
      });
    }
    for (const body of payloadIndexBodies(spec)) {
      await this.call(`index payload field ${String(body.field_name)}`, () =>
        this.client.createPayloadIndex(this.collection, { ...body, wait: true } as never),
      );
    }
  }

  async upsert(points: readonly Point[]): Promise<void> {
    for (const body of upsertBodies(points)) {
      await this.call('upsert points', () => this.client.upsert(this.collection, { ...body, wait: true } as never));
    }
  }

  async search(query: SearchQuery): Promise<SearchHit[]> {
    const res = await this.call('search', () => this.client.query(this.collection, queryBody(query) as never));
    return (res.points as RawPoint[]).map((p) => {
      const { payload } = storedPoint(p, false);
      return { id: payload.id, score: p.score ?? 0, payload };
    });
  }

  async get(ids: readonly string[], options: { withVectors?: boolean } = {}): Promise<StoredPoint[]> {
    if (ids.length === 0) return [];
    const withVectors = options.withVectors ?? false;
    const raw = await this.call('retrieve points', () =>
      this.client.retrieve(this.collection, retrieveBody(ids, withVectors) as never),
    );
    const byId = new Map((raw as RawPoint[]).map((p) => [String(p.payload?.id), storedPoint(p, withVectors)]));
    return ids.flatMap((id) => byId.get(id) ?? []);
  }

  async delete(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.call('delete points', () =>
      this.client.delete(this.collection, { ...deleteBody(ids), wait: true } as never),
    );
  }

  async count(filter?: Filter): Promise<number> {
    const res = await this.call('count points', () => this.client.count(this.collection, countBody(filter) as never));
    return res.count;
  }

  async scroll(options: {
    filter?: Filter;
    limit: number;
    cursor?: string;
    withVectors?: boolean;
  }): Promise<{ points: StoredPoint[]; next?: string }> {
    const body: Body = scrollBody(options);
    const res = await this.call('scroll points', () => this.client.scroll(this.collection, body as never));
    const next = res.next_page_offset;
    return {
      points: (res.points as RawPoint[]).map((p) => storedPoint(p, options.withVectors ?? false)),
      ...(typeof next === 'string' || typeof next === 'number' ? { next: String(next) } : {}),
    };
  }

  async ping(): Promise<void> {
    await this.call('answer', () => this.client.getCollections());
  }

  close(): Promise<void> {
    // The REST client holds no connections of its own beyond fetch's pool.
    return Promise.resolve();
  }
}
