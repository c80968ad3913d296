import {
  AppError,
  ENCODER_ROLES,
  ImageRejectedError,
  NotFoundError,
  scrollPoints,
  ValidationError,
  type EncoderRole,
  type FieldValue,
  type Filter,
  type ImageRejectionCode,
  type ImageEncoder,
  type PreprocessMode,
  type SearchHit,
  type TextEncoder,
  type VectorStore,
} from '@lookalike/core';
import {
  declaredPixels,
  isPrepareFailure,
  prepareImage,
  type DecodeLimits,
  type ImagePreparer,
} from '@lookalike/imaging';
import { withoutSuspicious } from '@lookalike/screening';

/** Smallest and largest number of hits one search may ask for. */
export const K_RANGE = { min: 1, max: 100, default: 12 } as const;

/**
 * Query images above this many pixels (1 MP: 3 MiB of RGB) go to the preparer. At 50 concurrent uploads the ones
 * decoded on the request thread hold at most ~150 MiB; a thread pool would cost the small ones throughput (76 KiB
 * PNGs at 50 connections: 83 req/s p99 0.9 s on the request thread, 63–75 req/s p99 2.0–2.2 s through one pool
 * thread, bench:load).
 */
export const POOL_MIN_PIXELS = 1_000_000;

/** The label fields the search UI offers as facets. */
export const FACET_FIELDS = ['labels.part', 'labels.defect', 'labels.color', 'labels.material'] as const;
/** One of {@link FACET_FIELDS}. */
export type FacetField = (typeof FACET_FIELDS)[number];

/** How to search; every field has a default. */
export interface SearchOptions {
  /** Number of hits, {@link K_RANGE}.min to {@link K_RANGE}.max; default {@link K_RANGE}.default. */
  k?: number;
  /** Which tower's vector space to search; default `robust`. */
  encoder?: EncoderRole;
  filter?: Filter;
  /**
   * Text search only: also return images whose caption screening flagged as suspicious (and nobody accepted), which
   * it leaves out by default on a screened store ({@link SearchDeps.screened}). Default false.
   */
  includeSuspicious?: boolean;
  /**
   * Which images by their quality grade (the quality head's at ingest): `ok` leaves out the images graded `low`
   * (images never scored stay in), `low` returns only those, `any` (the default) does not look.
   */
  quality?: QualityFilter;
}

/** The values of {@link SearchOptions.quality}. */
export const QUALITY_FILTERS = ['any', 'ok', 'low'] as const;
/** One of {@link QUALITY_FILTERS}. */
export type QualityFilter = (typeof QUALITY_FILTERS)[number];

/** `filter` narrowed to the images of quality grade `quality`. */
export function withQuality(filter: Filter | undefined, quality: QualityFilter): Filter | undefined {
  const low = { field: 'quality.grade', match: 'low' };
  if (quality === 'ok') return { ...filter, mustNot: [...(filter?.mustNot ?? []), low] };
  if (quality === 'low') return { ...filter, must: [...(filter?.must ?? []), low] };
  return filter;
}

/** What every search returns: the hits, best first, and where the time went. */
export interface SearchResult {
  encoder: EncoderRole;
  k: number;
  hits: SearchHit[];
  timings: {
    /** Decoding, preprocessing and embedding the query (0 for a stored vector). */
    embedMs: number;
    /** The vector store's nearest-neighbour search. */
    searchMs: number;
  };
}

/** What {@link SearchService} is built from. */
export interface SearchDeps {
  store: VectorStore;
  encoders: Record<EncoderRole, ImageEncoder>;
  text: TextEncoder;
  /**
   * Whether the store holds caption screenings (its collection indexes `screening.verdict`, as the services'
   * collections do): text search then leaves out images whose caption was flagged as suspicious, unless asked to
   * include them. Default false.
   */
  screened?: boolean;
  /** Limits for uploaded query images; the same ones ingest applies. */
  decode?: DecodeLimits;
  /**
   * Where uploaded query images larger than {@link SearchDeps.poolMinPixels} are decoded and preprocessed: a
   * `PreprocessPool` (shared with ingest in one process) bounds how many are decoded at once, whatever the number of
   * concurrent uploads (a 36 MP photo holds 108 MB of RGB while it is resized); queued uploads wait as their
   * compressed bytes. Default: every upload on this thread, no bound.
   */
  preparer?: ImagePreparer;
  /**
   * Uploads whose header declares at most this many pixels are decoded on this thread even with a preparer: they
   * are cheap, and queueing them behind large ones would only add latency. Default {@link POOL_MIN_PIXELS}.
   */
  poolMinPixels?: number;
  /** How uploaded query images are resized (PREPROCESS): `fast` (the default, as ingest) or `exact`. */
  preprocess?: PreprocessMode;
  /** Distinct values kept per facet field; default 1000. */
  maxFacetValues?: number;
}

// Facets are read by scrolling the whole store; pages of this many points without their vectors.
const FACET_PAGE = 1000;

/**
 * Query-side search: embeds an uploaded image, a stored image's vector or a text with the chosen tower and asks the
 * store for its nearest neighbours. Holds logic only; the store and the encoders are handed in.
 */
export class SearchService {
  private facetCache: Promise<Record<FacetField, string[]>> | undefined;

  constructor(private readonly deps: SearchDeps) {}

  /**
   * Searches with an uploaded image: decoded under the decode limits (hostile files are refused before any pixel
   * buffer exists) and preprocessed exactly as ingest does, by the preparer when one is given. The bytes may be
   * handed to another thread: do not use them afterwards.
   *
   * @throws ImageRejectedError when the bytes are not an acceptable image
   */
  async byImage(bytes: Uint8Array, options: SearchOptions = {}): Promise<SearchResult> {
    const { encoder, k, filter } = resolveOptions(options);
    const started = performance.now();
    const { [encoder]: vector } = await this.embedUpload(bytes, [encoder]);
    const embedMs = performance.now() - started;
    return this.search(vector!, encoder, k, filter, embedMs);
  }

  /**
   * Embeds an uploaded image with each of `roles`' towers: decoded once under the decode limits (hostile files are
   * refused before any pixel buffer exists) and preprocessed exactly as ingest does, by the preparer when one is
   * given. The bytes may be handed to another thread: do not use them afterwards.
   *
   * @throws ImageRejectedError when the bytes are not an acceptable image
   */
  async embedUpload(
    bytes: Uint8Array,
    roles: readonly EncoderRole[] = ENCODER_ROLES,
  ): Promise<Partial<Record<EncoderRole, Float32Array>>> {
    const specs = roles.map((role) => this.deps.encoders[role].info.preprocess);
    const { preparer } = this.deps;
    const pooled = preparer && ((await declaredPixels(bytes)) ?? 0) > (this.deps.poolMinPixels ?? POOL_MIN_PIXELS);
    const mode = this.deps.preprocess ?? 'fast';
    const [outcome] = pooled
      ? await preparer.prepare([bytes], specs, this.deps.decode, mode)
      : [await prepareImage(bytes, specs, this.deps.decode, mode)];
    if (!outcome) throw new AppError('INTERNAL', 'the preprocessing pool returned no outcome for the query image');
    if (isPrepareFailure(outcome)) {
      const options = outcome.details ? { details: outcome.details } : {};
      throw outcome.code.startsWith('IMAGE_')
        ? new ImageRejectedError(outcome.code as ImageRejectionCode, outcome.reason, options)
        : new AppError(outcome.code, outcome.reason, options);
    }
    const vectors: Partial<Record<EncoderRole, Float32Array>> = {};
    await Promise.all(
      roles.map(async (role, s) => {
        const { size } = specs[s]!;
        // [1, 3, S, S] in [0,1]; the encoder normalises.
        const [vector] = await this.deps.encoders[role].embed({
          data: outcome.pixels[s]!,
          n: 1,
          height: size,
          width: size,
        });
        vectors[role] = vector!;
      }),
    );
    return vectors;
  }

  /**
   * Searches with the stored vector of an indexed image; the image itself is left out of the hits.
   *
   * @throws NotFoundError when no image has this id
   */
  async byId(id: string, options: SearchOptions = {}): Promise<SearchResult> {
    const { encoder, k, filter } = resolveOptions(options);
    const [point] = await this.deps.store.get([id], { withVectors: true });
    const vector = point?.vectors?.[encoder];
    if (!point || !vector) throw new NotFoundError('image', id);
    // One extra hit, because the query point is normally its own nearest neighbour.
    const result = await this.search(vector, encoder, k + 1, filter, 0);
    return { ...result, k, hits: result.hits.filter((h) => h.id !== id).slice(0, k) };
  }

  /** The lookalikes of an indexed image: {@link byId}. */
  similar(id: string, options: SearchOptions = {}): Promise<SearchResult> {
    return this.byId(id, options);
  }

  /**
   * Zero-shot search with a text, embedded by the text tower shared by both image towers. Images whose caption
   * screening flagged are left out of a screened store's results unless {@link SearchOptions.includeSuspicious} says
   * otherwise.
   *
   * @throws ValidationError for an empty or over-long text
   */
  async byText(text: string, options: SearchOptions = {}): Promise<SearchResult> {
    const { encoder, k, filter } = resolveOptions(options);
    if (text.trim() === '') throw new ValidationError('the search text is empty', [{ path: 'text', message: 'empty' }]);
    const dim = this.deps.encoders[encoder].info.dim;
    if (this.deps.text.info.dim !== dim)
      throw new ValidationError(
        `the text model ${this.deps.text.info.id} embeds to ${this.deps.text.info.dim} dimensions but the ${encoder} ` +
          `tower to ${dim}; text search needs a text tower trained with the image towers`,
      );
    const started = performance.now();
    const [vector] = await this.deps.text.embed([text]);
    const embedMs = performance.now() - started;
    const leaveOut = this.deps.screened === true && options.includeSuspicious !== true;
    return this.search(vector!, encoder, k, leaveOut ? withoutSuspicious(filter) : filter, embedMs);
  }

  /**
   * Distinct values of the facet fields over the whole store, sorted. Read once by scrolling the store and kept
   * until {@link invalidate} is called (ingest calls it when a batch has added points).
   */
  async facets(fields: readonly FacetField[] = FACET_FIELDS): Promise<Partial<Record<FacetField, string[]>>> {
    if (!this.facetCache) {
      const pending = this.readFacets();
      this.facetCache = pending;
      // A failed read is not kept, so the next call tries again. (An invalidation during the read drops it too.)
      pending.catch(() => {
        if (this.facetCache === pending) this.facetCache = undefined;
      });
    }
    const all = await this.facetCache;
    return Object.fromEntries(fields.map((f) => [f, all[f]]));
  }

  /** Forgets the cached facets; the next {@link facets} call reads the store again. */
  invalidate(): void {
    this.facetCache = undefined;
  }

  private async search(
    vector: Float32Array,
    using: EncoderRole,
    k: number,
    filter: Filter | undefined,
    embedMs: number,
  ): Promise<SearchResult> {
    const started = performance.now();
    const hits = await this.deps.store.search({ vector, using, k, ...(filter ? { filter } : {}) });
    return { encoder: using, k, hits, timings: { embedMs, searchMs: performance.now() - started } };
  }

  private async readFacets(): Promise<Record<FacetField, string[]>> {
    const max = this.deps.maxFacetValues ?? 1000;
    const values = Object.fromEntries(FACET_FIELDS.map((f) => [f, new Set<string>()])) as Record<
      FacetField,
      Set<string>
    >;
    for await (const point of scrollPoints(this.deps.store, { pageSize: FACET_PAGE }))
      for (const field of FACET_FIELDS) {
        const value = labelValue(point.payload.labels, field);
        if (value !== undefined && values[field].size < max) values[field].add(value);
      }
    return Object.fromEntries(
      FACET_FIELDS.map((f) => [f, [...values[f]].sort((a, b) => a.localeCompare(b))]),
    ) as Record<FacetField, string[]>;
  }
}

function labelValue(labels: Record<string, FieldValue | null> | undefined, field: FacetField): string | undefined {
  const value = labels?.[field.slice('labels.'.length)];
  return value === undefined || value === null ? undefined : String(value);
}

function resolveOptions(options: SearchOptions): { encoder: EncoderRole; k: number; filter: Filter | undefined } {
  const k = options.k ?? K_RANGE.default;
  if (!Number.isInteger(k) || k < K_RANGE.min || k > K_RANGE.max)
    throw new ValidationError(`k must be a whole number from ${K_RANGE.min} to ${K_RANGE.max}, not ${k}`, [
      { path: 'k', message: `must be from ${K_RANGE.min} to ${K_RANGE.max}` },
    ]);
  const encoder = options.encoder ?? 'robust';
  if (!ENCODER_ROLES.includes(encoder))
    throw new ValidationError(`encoder must be one of ${ENCODER_ROLES.join(', ')}, not ${String(encoder)}`, [
      { path: 'encoder', message: `must be one of ${ENCODER_ROLES.join(', ')}` },
    ]);
  const quality = options.quality ?? 'any';
  if (!QUALITY_FILTERS.includes(quality))
    throw new ValidationError(`quality must be one of ${QUALITY_FILTERS.join(', ')}, not ${String(quality)}`, [
      { path: 'quality', message: `must be one of ${QUALITY_FILTERS.join(', ')}` },
    ]);
  return { encoder, k, filter: withQuality(options.filter, quality) };
}
