/**
 * The ingest job handlers. A run lists its source and fans out into batch jobs (`run.ts`); a batch goes through its
 * chunks in stages, each chunk's first stage running while the chunk before it holds the towers: `dispatch.ts` reads
 * each image, skips those whose vectors already come from the current models and preprocessing, and decodes and
 * preprocesses the rest on worker threads; then the towers embed them (and the quality model scores them,
 * `tower-inputs.ts`), their captions are screened (`caption-screening.ts`), and they are grouped with their
 * near-duplicates (`duplicates.ts`) and upserted. Ids are the sha256 of the bytes, so re-ingesting a file never
 * duplicates it, and a model change re-embeds. A bad file is recorded with its reason and never fails its batch;
 * store faults propagate so the job retries (upserts are idempotent).
 */
import {
  type CaptionScreening,
  type QualityScore,
  type QualityScorer,
  type EncoderRole,
  type ImageEncoder,
  type Point,
  type PointPayload,
  type PreprocessMode,
  type TextEncoder,
  type VectorStore,
} from '@lookalike/core';
import { PreprocessPool, type DecodeLimits, type ImagePreparer } from '@lookalike/imaging';
import type { IngestItem, JobHandlers } from '@lookalike/queue';
import type { CaptionScreen } from '@lookalike/screening';
import type { FetchLimits } from './fetch-url.js';
import { groupDuplicates, type DuplicateJoin, type DuplicatePolicy, type Grouping } from './duplicates.js';
import { screenCaptions, tallyScreenings, type SuspiciousCaption } from './caption-screening.js';
import { gradeQuality, tallyQuality, type LowQualityImage } from './quality.js';
import { createDispatch, handled, type Fresh, type IngestFailure, type Seen } from './dispatch.js';
import { ingestRunHandler } from './run.js';
import { TowerInputs } from './tower-inputs.js';
import { embeddedBy, provenanceOf, towersOf } from './towers.js';

export interface IngestDeps {
  store: VectorStore;
  encoders: Record<EncoderRole, ImageEncoder>;
  /** Folders local paths must lie in. */
  roots: readonly string[];
  decode?: DecodeLimits;
  fetch: FetchLimits;
  /** Images embedded at once (default 16); the next chunk is decoded while one is embedded. */
  chunkSize?: number;
  /**
   * Where images are decoded and preprocessed. Default: a {@link PreprocessPool} of `preprocessThreads` worker
   * threads, started by the first batch and stopped by the handlers' `close()`. A preparer passed here is the
   * caller's to close.
   */
  preparer?: ImagePreparer;
  /** Threads of the default pool. Default: `defaultPreprocessThreads()`, a quarter of the cores, at least one. */
  preprocessThreads?: number;
  /**
   * How images are resized (PREPROCESS): `fast` (the default) or `exact`. Part of each vector's preprocessing
   * hash, so a switch re-embeds stored images when they are next ingested.
   */
  preprocess?: PreprocessMode;
  /**
   * Near-duplicate grouping of new images (see `groupDuplicates`); none when absent. Within one process the chunks
   * are grouped one at a time, so two copies ingested at once still meet; batches in other processes can race, and
   * two copies stored at the same instant there may then stay in separate groups.
   */
  duplicates?: DuplicatePolicy;
  /**
   * Caption screening (SafeCLIP): each captioned image's caption is embedded by `text`, its similarity to the image
   * in both towers' spaces is stored, and `screen` judges it; the screen refits as the collection grows. None when
   * absent.
   */
  screening?: { screen: CaptionScreen; text: TextEncoder };
  /**
   * Quality scoring (a PerceptCLIP-style model made from one tower): each image is scored from the pixels prepared
   * for that tower and graded against the model's threshold. None when absent.
   */
  quality?: QualityScorer;
  now?: () => Date;
}

export type { Fresh, IngestFailure, IngestFailureCode } from './dispatch.js';

/** What a batch job returns (and reports as progress). */
export interface BatchResult {
  batch: number;
  done: number;
  skipped: number;
  failed: IngestFailure[];
  ids: string[];
  /** New images that joined a near-duplicate group. */
  duplicates: DuplicateJoin[];
  /** New images not looked up for duplicates because the store could not search yet (a re-index pending). */
  duplicatesUnchecked: number;
  /**
   * Captions screened in this batch, by the verdict they got when stored (a later refit may change it): judged
   * trusted or suspicious, or pending while the collection is too small to judge.
   */
  captions: { screened: number; suspicious: number; pending: number };
  /** The captions flagged as suspicious, with their similarity and why. */
  suspicious: SuspiciousCaption[];
  /** Images the quality head scored in this batch, and how many of them it graded `low`. */
  quality: { scored: number; low: number };
  /** The images graded `low`, with their scores. */
  lowQuality: LowQualityImage[];
}

/** The ingest handlers, and how to stop what they started. */
export type IngestHandlers = Pick<Required<JobHandlers>, 'ingest-run' | 'ingest-batch'> & {
  /**
   * Stops the preprocessing threads the handlers started (never a preparer from {@link IngestDeps}). Call it once
   * the workers or runners using these handlers are closed; a batch started afterwards fails and is retried.
   */
  close(): Promise<void>;
};

/**
 * The stored point of an embedded image: its vectors, what the item said of it (caption, labels, metadata, its
 * external id as `metadata.externalId`), what decoding found (format, size, bytes), and which towers made the
 * vectors. A re-embedded image keeps the time it was first ingested.
 */
export function pointOf(
  f: Fresh,
  vectors: Point['vectors'],
  provenance: PointPayload['embeddings'],
  now: () => Date,
  screening?: CaptionScreening,
  quality?: QualityScore,
): Point {
  const { item, image } = f;
  // A caption a person rejected stays withdrawn (kept in the screening) when the same caption comes again.
  const caption = screening?.verdict === 'withdrawn' ? undefined : item.caption;
  return {
    id: f.id,
    vectors,
    payload: {
      id: f.id,
      source: item.location,
      format: image.format,
      width: image.width,
      height: image.height,
      bytes: f.size,
      ...(caption ? { caption } : {}),
      ...(item.labels ? { labels: item.labels } : {}),
      ...(item.metadata || item.id
        ? { metadata: { ...(item.metadata ?? {}), ...(item.id ? { externalId: item.id } : {}) } }
        : {}),
      ingestedAt: f.ingestedAt ?? now().toISOString(),
      ...(f.duplicates ? { duplicates: f.duplicates } : {}),
      ...(screening ? { screening } : {}),
      ...(quality ? { quality } : {}),
      embeddings: provenance,
    },
  };
}

/** The ingest handlers for the job runners (BullMQ workers or in-process). */
export function createIngestHandlers(deps: IngestDeps): IngestHandlers {
  const now = deps.now ?? (() => new Date());
  const mode = deps.preprocess ?? 'fast';
  const towers = towersOf(deps.encoders, mode);
  const provenance = provenanceOf(towers);
  const inputs = new TowerInputs(deps.encoders, deps.quality);
  const specs = inputs.specs;

  let owned: PreprocessPool | undefined;
  let closed = false;
  const preparer = (): ImagePreparer => {
    if (deps.preparer) return deps.preparer;
    if (closed) throw new Error('the ingest handlers are closed; the batch will be retried');
    return (owned ??= new PreprocessPool(
      deps.preprocessThreads === undefined ? {} : { threads: deps.preprocessThreads },
    ));
  };

  const dispatch = createDispatch({
    store: deps.store,
    roots: deps.roots,
    fetch: deps.fetch,
    decode: deps.decode,
    upToDate: (e) => embeddedBy(e, towers),
    preparer,
    specs,
    mode,
  });

  /** The tail of this process's grouped upserts: one chunk is looked up and stored at a time. */
  let grouping: Promise<unknown> = Promise.resolve();

  /** One refit at a time per process; the others wait for it rather than start their own. */
  let refitting: Promise<unknown> | undefined;
  const refitIfGrown = (added: number): Promise<unknown> => {
    const screening = deps.screening;
    if (!screening) return Promise.resolve();
    return (refitting ??= screening.screen.refitIfGrown(added).finally(() => (refitting = undefined)));
  };

  async function embedAndUpsert(
    fresh: readonly Fresh[],
  ): Promise<{ grouping: Grouping | undefined; points: Point[] } | undefined> {
    if (fresh.length === 0) return undefined;
    const images = fresh.map((f) => f.image);
    const { vectors, scores } = await inputs.run(images);
    const qualities = gradeQuality(deps.quality, scores, fresh.length);
    const screenings = await screenCaptions(deps.screening, fresh, vectors);
    const points = fresh.map((f, i) => pointOf(f, vectors[i]!, provenance, now, screenings[i], qualities[i]));
    const grouping = await store(fresh, points);
    const screened = screenings.filter((x) => x !== undefined).length;
    if (deps.screening && screened > 0) await refitIfGrown(screened);
    return { grouping, points };
  }

  async function store(fresh: readonly Fresh[], points: Point[]): Promise<Grouping | undefined> {
    const policy = deps.duplicates;
    if (!policy) {
      await deps.store.upsert(points);
      return undefined;
    }
    const turn = grouping.then(async () => {
      const isNew = new Set(fresh.filter((f) => f.ingestedAt === undefined).map((f) => f.id));
      const found = await groupDuplicates(
        points,
        deps.store,
        policy,
        (p) => isNew.has(p.id),
        fresh.map((f) => f.item.location),
      );
      await deps.store.upsert([...points, ...found.founders]);
      return found;
    });
    grouping = turn.catch(() => undefined);
    return turn;
  }

  return {
    'ingest-run': ingestRunHandler(deps),

    'ingest-batch': async (payload, ctx) => {
      const result: BatchResult = {
        batch: payload.batch,
        done: 0,
        skipped: 0,
        failed: [],
        ids: [],
        duplicates: [],
        duplicatesUnchecked: 0,
        captions: { screened: 0, suspicious: 0, pending: 0 },
        suspicious: [],
        quality: { scored: 0, low: 0 },
        lowQuality: [],
      };
      const size = deps.chunkSize ?? 16;
      const chunks: IngestItem[][] = [];
      for (let i = 0; i < payload.items.length; i += size) chunks.push(payload.items.slice(i, i + size));
      const seen: Seen = new Map();
      let next = chunks.length ? handled(dispatch(chunks[0]!, seen)) : undefined;
      try {
        for (let k = 0; k < chunks.length; k++) {
          const staged = await (await next!).ready;
          // Chunk k+1 is handed to the preparer before chunk k is embedded, so that it decodes and resizes on the
          // pool's threads while the towers hold this thread (onnxruntime-node runs models synchronously).
          next = k + 1 < chunks.length ? handled(dispatch(chunks[k + 1]!, seen)) : undefined;
          await next;
          const stored = await embedAndUpsert(staged.fresh);
          result.done += staged.fresh.length;
          const found = stored?.grouping;
          if (found) {
            result.duplicates.push(...found.joined);
            result.duplicatesUnchecked += found.unchecked;
          }
          tallyScreenings(stored?.points ?? [], result);
          tallyQuality(stored?.points ?? [], result);
          result.skipped += staged.skipped;
          result.failed.push(...staged.failed);
          result.ids.push(...staged.ids);
          await ctx.updateProgress({
            done: result.done,
            skipped: result.skipped,
            failed: result.failed.length,
            duplicates: result.duplicates.length,
            suspicious: result.captions.suspicious,
            lowQuality: result.quality.low,
            total: payload.items.length,
          });
        }
      } finally {
        // Work handed over ahead of a failure finishes before the job is retried.
        await next?.then((d) => d.ready).catch(() => undefined);
      }
      return result;
    },

    async close() {
      closed = true;
      const pool = owned;
      owned = undefined;
      await pool?.close();
    },
  };
}
