import { QdrantClient } from '@qdrant/js-client-rest';
import { AppError, ENCODER_ROLES, UnavailableError, type EncoderRole } from '@lookalike/core';
import { QdrantVectorStore, type QdrantStoreOptions } from './qdrant-store.js';
import { countBody, updateMetadataBody } from './requests.js';

function statusOf(error: unknown): number | undefined {
  const e = error as { status?: unknown; response?: { status?: unknown } };
  const s = e.status ?? e.response?.status;
  return typeof s === 'number' ? s : undefined;
}

/**
 * A Qdrant server's collections as collections with JSON metadata (Qdrant's own collection metadata, merged key by
 * key on update), for keeping several generations of the store side by side: a re-index to other towers builds a
 * new collection and switches to it once complete.
 */
export class QdrantCollections {
  /** For messages. */
  readonly where: string;
  private readonly client: QdrantClient;

  constructor(private readonly options: Omit<QdrantStoreOptions, 'collection'>) {
    this.client = new QdrantClient({
      url: options.url,
      apiKey: options.apiKey,
      timeout: options.timeoutMs ?? 30_000,
      checkCompatibility: false,
    });
    this.where = `Qdrant at ${options.url}`;
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (error instanceof AppError) throw error;
      const status = statusOf(error);
      const message = error instanceof Error ? error.message : String(error);
      if (status === undefined || status === 429 || status >= 500)
        throw new UnavailableError('store', `Qdrant could not ${what}: ${message}`, { cause: error });
      throw new AppError('INTERNAL', `Qdrant refused to ${what} (HTTP ${status}): ${message}`, { cause: error });
    }
  }

  private async info(name: string) {
    const { exists } = await this.call('check the collection', () => this.client.collectionExists(name));
    return exists ? this.call(`read collection ${name}`, () => this.client.getCollection(name)) : undefined;
  }

  /** Every collection on the server. */
  async names(): Promise<string[]> {
    const { collections } = await this.call('list collections', () => this.client.getCollections());
    return collections.map((c) => c.name);
  }

  /** The size of each named vector of collection `name`; undefined when it does not exist. */
  async dims(name: string): Promise<Record<EncoderRole, number> | undefined> {
    const info = await this.info(name);
    if (!info) return undefined;
    const vectors = (info.config.params.vectors ?? {}) as Record<string, { size?: number } | undefined>;
    const dims: Partial<Record<EncoderRole, number>> = {};
    for (const role of ENCODER_ROLES) {
      const size = vectors[role]?.size;
      if (typeof size !== 'number') return undefined;
      dims[role] = size;
    }
    return dims as Record<EncoderRole, number>;
  }

  /** Points in collection `name` (exact count); 0 when it does not exist. */
  async points(name: string): Promise<number> {
    if (!(await this.info(name))) return 0;
    const res = await this.call(`count the points of ${name}`, () => this.client.count(name, countBody() as never));
    return res.count;
  }

  /** The collection's metadata; undefined when it has none (or does not exist). */
  async metadata(name: string): Promise<Record<string, unknown> | undefined> {
    const info = await this.info(name);
    const metadata = (info?.config as { metadata?: unknown } | undefined)?.metadata;
    return metadata && typeof metadata === 'object' ? (metadata as Record<string, unknown>) : undefined;
  }

  /** Sets top-level keys of the collection's metadata; Qdrant keeps the others. */
  async setMetadata(name: string, metadata: Record<string, unknown>): Promise<void> {
    await this.call(`record what collection ${name} holds`, () =>
      this.client.updateCollection(name, updateMetadataBody(metadata) as never),
    );
  }

  /** A store handle on collection `name`. */
  open(name: string): Promise<QdrantVectorStore> {
    return Promise.resolve(new QdrantVectorStore({ ...this.options, collection: name }));
  }

  /** Deletes collection `name`. */
  async drop(name: string): Promise<void> {
    if (await this.info(name)) await this.call(`delete collection ${name}`, () => this.client.deleteCollection(name));
  }

  /** Nothing to release: the REST client holds no connections of its own. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}
