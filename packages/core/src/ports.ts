import type { Filter } from './filter.js';
import type { AuditResult, EncoderRole, PixelBatch, Point, PreprocessSpec, SearchHit, StoredPoint } from './types.js';

/** What an image encoder is and how its inputs must be prepared. */
export interface ImageEncoderInfo {
  /** Model id from its manifest, e.g. `defect-cnn-fare4`. */
  id: string;
  role: EncoderRole;
  /** Length of the (L2-normalised) embedding. */
  dim: number;
  preprocess: PreprocessSpec;
  /**
   * Hash of `preprocess` and the preprocessing code version, for the `exact` mode. Stored vectors carry the hash of
   * the mode they were made with (`preprocessHash(preprocess, mode)` in `@lookalike/imaging`).
   */
  preprocessHash: string;
}

/**
 * Port: turns pixel batches into L2-normalised embeddings. Implementations normalise with their own mean/std, so
 * callers (search, ingest, attacks) all hand over the same [0,1] pixels.
 */
export interface ImageEncoder {
  readonly info: ImageEncoderInfo;
  /** Embeds `[N,3,S,S]` pixels in [0,1] (S = `info.preprocess.size`); returns N vectors of `info.dim`. */
  embed(batch: PixelBatch): Promise<Float32Array[]>;
  /** Releases the runtime session; pending calls finish first. */
  close(): Promise<void>;
}

/** Port: turns text into embeddings in the same space as the image towers. */
export interface TextEncoder {
  readonly info: { id: string; dim: number; contextLength: number };
  embed(texts: readonly string[]): Promise<Float32Array[]>;
  close(): Promise<void>;
}

/** What a quality model is: its id, the tower it was made from, its inputs, and the threshold of a `low` grade. */
export interface QualityScorerInfo {
  /** Model id from its manifest, e.g. `quality-cnn-fare4`. */
  id: string;
  /** The role of the image tower it was made from. */
  tower: EncoderRole;
  /** That tower's model id. */
  backbone: string;
  /** The score under which an image is graded `low`. */
  threshold: number;
  /** How its inputs are prepared (its tower's preprocessing). */
  preprocess: PreprocessSpec;
  /** Hash of `preprocess` for the `exact` mode, as {@link ImageEncoderInfo.preprocessHash}. */
  preprocessHash: string;
}

/** Port: scores images for perceptual quality, in [0, 1] (1 = a sharp, clean photo; 0 = unusable). */
export interface QualityScorer {
  readonly info: QualityScorerInfo;
  /** One score per image of `[N,3,S,S]` pixels in [0,1] (S = `info.preprocess.size`). */
  score(batch: PixelBatch): Promise<number[]>;
  close(): Promise<void>;
}

/** How to search: one query vector against the named vector space `using`. */
export interface SearchQuery {
  vector: Float32Array;
  using: EncoderRole;
  k: number;
  filter?: Filter;
  /** Exact (brute-force) search instead of the ANN index; for evaluation. */
  exact?: boolean;
}

/** The layout of the collection a store keeps. */
export interface CollectionSpec {
  name: string;
  /** Dimension of each named vector. */
  dims: Record<EncoderRole, number>;
  /** Payload fields that filters use and that should be indexed. */
  indexedFields: readonly { path: string; type: 'keyword' | 'integer' | 'float' | 'bool' }[];
}

/**
 * Port: a vector store holding one collection with two named vectors (`robust`, `clean`) per point. Upserts are
 * idempotent by id. Transient faults raise `UnavailableError` so job retries apply.
 */
export interface VectorStore {
  /** Creates the collection if missing; fails with a clear error if it exists with other dimensions. */
  ensureCollection(spec: CollectionSpec): Promise<void>;
  upsert(points: readonly Point[]): Promise<void>;
  search(query: SearchQuery): Promise<SearchHit[]>;
  /** Points with these ids, in the order asked, missing ids left out. */
  get(ids: readonly string[], options?: { withVectors?: boolean }): Promise<StoredPoint[]>;
  delete(ids: readonly string[]): Promise<void>;
  count(filter?: Filter): Promise<number>;
  /** Pages through points; pass the returned `next` to continue until it is undefined. */
  scroll(options: {
    filter?: Filter;
    limit: number;
    cursor?: string;
    withVectors?: boolean;
  }): Promise<{ points: StoredPoint[]; next?: string }>;
  /** Throws if the store cannot serve requests now (readiness probes call this). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Where a job stands. */
export type JobState = 'waiting' | 'active' | 'completed' | 'failed' | 'delayed' | 'unknown';

/** A queued job as a client sees it. */
export interface JobStatus<Result = unknown> {
  id: string;
  name: string;
  state: JobState;
  /** Processor-defined progress object, e.g. `{ done, failed, total }`. */
  progress: unknown;
  result?: Result;
  failedReason?: string;
}

/** One stored audit as listed: enough for an index page and a trend line. */
export interface AuditSummary {
  id: string;
  startedAt: string;
  finishedAt: string;
  attack: AuditResult['attack'];
  queries: number;
  /**
   * Headline numbers per encoder at each ε: overlap@k, top-1 retention and, where the queries carry part and defect
   * labels, the attacked queries' same part+defect precision@k and same-defect precision@k over defective queries
   * (absent in audits made before them or without labelled queries).
   */
  headline: {
    encoder: EncoderRole;
    epsilon: number;
    overlapAtK: number;
    top1Retention: number;
    partDefectAtK?: number;
    defectiveDefectAtK?: number;
  }[];
  /** 2AFC accuracy per encoder and budget, clean and attacked (absent in audits without the perceptual part). */
  twoAfc?: { encoder: EncoderRole; norm: 'linf' | 'l2'; epsilon: number; clean: number; attacked: number }[];
}

/**
 * Port: where finished audits are kept. An audit is written whole (JSON and HTML report together) or not at all, so
 * readers never see a half-written one.
 */
export interface AuditRepository {
  /** Newest first. */
  list(options?: { limit?: number }): Promise<AuditSummary[]>;
  get(id: string): Promise<AuditResult | undefined>;
  /** The self-contained HTML report of an audit. */
  report(id: string): Promise<string | undefined>;
}
