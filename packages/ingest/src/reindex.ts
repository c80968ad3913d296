/**
 * The re-index job handlers: re-embed the points of one collection (the source) with the configured towers into
 * another (the target), from the originals their payloads name. A run pages through the source by id; each page fans
 * out into batch jobs under the job of the next page (a flow), so the pages go one after another and the batches of
 * a page in parallel, on any worker; the job after the last page marks the target ready. A batch skips the points the
 * target already holds with its towers (an earlier run, a crash, an ingest meanwhile), copies the vectors of source
 * points that already came from these towers, and reads, checks, decodes and embeds the rest; an original that
 * cannot be used is recorded with its reason, its point is left where it was, and the batch goes on. So a rerun
 * does only what is left, and every point is embedded once.
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import {
  isUrl,
  ENCODER_ROLES,
  cosine,
  isAppError,
  type EncoderRole,
  type ImageEncoder,
  type Point,
  type PreprocessMode,
  type StoredPoint,
  type QualityScorer,
  type TextEncoder,
  type VectorStore,
} from '@lookalike/core';
import { isPrepareFailure, type DecodeLimits, type ImagePreparer, type PreparedImage } from '@lookalike/imaging';
import {
  BadInputError,
  type JobContext,
  type JobHandlers,
  type ParsedPayload,
  type ReindexFailure,
  type ReindexTotals,
} from '@lookalike/queue';
import type { FetchLimits } from './fetch-url.js';
import type { IngestFailureCode } from './dispatch.js';
import { reindexPageJobId, reindexRunId, type Generations } from './generations.js';
import { readOriginal, type OriginalLimits } from './originals.js';
import { TowerInputs } from './tower-inputs.js';
import { gradeQuality } from './quality.js';
import { describeTowers, embeddedBy, provenanceOf, sameTowers, towersFingerprint, towersOf } from './towers.js';

/** What the re-index handlers are built from. */
export interface ReindexDeps {
  generations: Generations;
  /** The configured towers: a job for other towers is refused (and retried, for a worker that has them). */
  encoders: Record<EncoderRole, ImageEncoder>;
  /** Folders local originals must lie in: the same as ingest's. */
  roots: readonly string[];
  decode?: DecodeLimits;
  fetch: FetchLimits;
  /** Where originals are decoded and preprocessed (the process's pool); the caller's to close. */
  preparer: ImagePreparer;
  /** How images are resized (PREPROCESS); part of the towers' fingerprint. */
  preprocess?: PreprocessMode;
  /**
   * The text tower: a screened caption's similarities are measured again against the new vectors (its verdict stays
   * until the target's screen refits and rejudges it). Without it they are carried over as they were.
   */
  text?: TextEncoder;
  /**
   * The quality model of the configured tower: re-embedded images are scored again. Without it a stored score is
   * carried over as it was.
   */
  quality?: QualityScorer;
  now?: () => Date;
  /** Told when a run's last page has recorded how it ended (the target `to` is then ready, or not). */
  onFinished?: (to: string, ready: boolean) => void;
}

/** What a batch job returns (and reports as progress, without the failures' list). */
export interface ReindexBatchResult {
  batch: number;
  done: number;
  copied: number;
  skipped: number;
  failed: ReindexFailure[];
}

/**
 * What a page job returns: `finished` on the last one, with the run's totals (the first 100 failures in `failed`,
 * as a batch reports them, and their number in `failedTotal`) and whether the target is now served.
 */
export type ReindexRunResult =
  | { finished: false; runId: string; page: number; points: number; batches: number }
  | {
      finished: true;
      runId: string;
      page: number;
      ready: boolean;
      to: string;
      done: number;
      copied: number;
      skipped: number;
      failedTotal: number;
      failed: ReindexFailure[];
    };

/**
 * Why an original cannot be re-embedded: `SOURCE_MISSING` (the file or URL is gone), `SOURCE_CHANGED` (it holds
 * other bytes than the image the point was made from), or what ingest would say (`VALIDATION_FAILED` for a path
 * outside the roots or a refused URL, `IMAGE_*` for the decoder and limits, `READ_FAILED` and others for the rest).
 */
export type ReindexFailureCode = IngestFailureCode | 'SOURCE_MISSING' | 'SOURCE_CHANGED';

const MAX_FAILURES = 100;

/** Adds `batch` to `totals`, keeping the first {@link MAX_FAILURES} failures. */
function add(totals: ReindexTotals, batch: ReindexBatchResult): ReindexTotals {
  return {
    done: totals.done + batch.done,
    copied: totals.copied + batch.copied,
    skipped: totals.skipped + batch.skipped,
    failed: totals.failed + batch.failed.length,
    failures: [...totals.failures, ...batch.failed].slice(0, MAX_FAILURES),
  };
}

function isBatchResult(value: unknown): value is ReindexBatchResult {
  const r = value as Partial<ReindexBatchResult> | null;
  return !!r && typeof r.done === 'number' && typeof r.copied === 'number' && Array.isArray(r.failed);
}

function failure(point: StoredPoint, code: ReindexFailureCode, reason: string): ReindexFailure {
  return { id: point.id, location: point.payload.source, code, reason };
}

/** Reads the original of `point` and checks it is the image the point was made from (ids are the bytes' sha256). */
async function readChecked(point: StoredPoint, limits: OriginalLimits): Promise<Uint8Array | ReindexFailure> {
  const location = point.payload.source;
  let bytes: Uint8Array;
  try {
    bytes = await readOriginal(location, limits);
  } catch (error) {
    const code = isAppError(error) ? error.code : 'READ_FAILED';
    const reason = error instanceof Error ? error.message : String(error);
    if (code === 'NOT_FOUND' && isUrl(location)) return failure(point, 'SOURCE_MISSING', reason);
    // resolveInsideRoots says the same for a missing file as for one outside the roots; tell them apart here.
    if (
      !isUrl(location) &&
      (await stat(location).then(
        () => false,
        (e: NodeJS.ErrnoException) => e.code === 'ENOENT',
      ))
    )
      return failure(point, 'SOURCE_MISSING', `the original ${location} does not exist any more`);
    return failure(point, code, reason);
  }
  const sha = createHash('sha256').update(bytes).digest('hex');
  if (/^[0-9a-f]{64}$/.test(point.id) && sha !== point.id)
    return failure(
      point,
      'SOURCE_CHANGED',
      `the original ${location} now holds other bytes (sha256 ${sha.slice(0, 12)}…) than this image; ingest it again as a new image`,
    );
  return bytes;
}

/** The re-index handlers for the job runners (BullMQ workers or in-process). */
export function createReindexHandlers(deps: ReindexDeps): Pick<Required<JobHandlers>, 'reindex-run' | 'reindex-batch'> {
  const { generations } = deps;
  const mode = deps.preprocess ?? 'fast';
  const towers = towersOf(deps.encoders, mode);
  const fingerprint = towersFingerprint(towers);
  const provenance = provenanceOf(towers);
  const dims = Object.fromEntries(ENCODER_ROLES.map((r) => [r, towers[r].dim])) as Record<EncoderRole, number>;
  const inputs = new TowerInputs(deps.encoders, deps.quality);
  const limits: OriginalLimits = {
    roots: deps.roots,
    fetch: deps.fetch,
    ...(deps.decode?.maxBytes === undefined ? {} : { maxBytes: deps.decode.maxBytes }),
  };
  const now = deps.now ?? (() => new Date());

  /** Refuses a job for other towers: thrown, not bad input, so that a worker that has them can take it. */
  const checkTowers = (payload: { towers: string; to: string }) => {
    if (payload.towers !== fingerprint)
      throw new Error(
        `this worker embeds with ${describeTowers(towers)} (fingerprint ${fingerprint}), but the re-index into ` +
          `${payload.to} is for towers ${payload.towers}; a worker configured with those takes it`,
      );
  };

  async function target(to: string): Promise<VectorStore> {
    const record = await generations.read(to);
    if (!record) throw new BadInputError(`collection ${to} is not a re-index target (it has no generation record)`);
    if (!sameTowers(record.towers, towers))
      throw new BadInputError(
        `collection ${to} holds vectors of ${describeTowers(record.towers)}, not of these towers`,
      );
    return generations.store(to, dims);
  }

  async function source(from: string): Promise<VectorStore> {
    try {
      return await generations.existing(from);
    } catch (error) {
      throw new BadInputError(`cannot re-index from collection ${from}: ${(error as Error).message}`);
    }
  }

  async function finish(payload: ParsedPayload<'reindex-run'>, totals: ReindexTotals): Promise<ReindexRunResult> {
    const ready = totals.failed === 0 || payload.acceptFailures;
    const at = now().toISOString();
    await generations.update(payload.to, (r) => ({
      ...r,
      ...(ready ? { state: 'ready' as const, readyAt: at } : {}),
      reindex: { ...(r.reindex ?? { run: 0, page: payload.page, startedAt: at }), finishedAt: at, totals },
    }));
    deps.onFinished?.(payload.to, ready);
    return {
      finished: true,
      runId: payload.runId,
      page: payload.page,
      ready,
      to: payload.to,
      done: totals.done,
      copied: totals.copied,
      skipped: totals.skipped,
      failedTotal: totals.failed,
      failed: totals.failures,
    };
  }

  /** The screened captions of re-embedded points, measured against their new vectors by the text tower. */
  async function rescreen(points: Point[]): Promise<void> {
    const text = deps.text;
    const screened = points.flatMap((p) => {
      const s = p.payload.screening;
      const caption = p.payload.caption ?? s?.withdrawnCaption;
      // A text tower of another dimension cannot measure anything against these vectors.
      const fits = ENCODER_ROLES.every((r) => p.vectors[r].length === deps.text?.info.dim);
      return s && caption && fits ? [{ p, s, caption }] : [];
    });
    if (!text || screened.length === 0) return;
    const vectors = await text.embed(screened.map((x) => x.caption));
    screened.forEach(({ p, s }, i) => {
      p.payload = {
        ...p.payload,
        screening: {
          ...s,
          textModel: text.info.id,
          similarity: { robust: cosine(p.vectors.robust, vectors[i]!), clean: cosine(p.vectors.clean, vectors[i]!) },
        },
      };
    });
  }

  return {
    'reindex-run': async (payload, ctx: JobContext): Promise<ReindexRunResult> => {
      checkTowers(payload);
      await target(payload.to);
      let totals = payload.totals;
      if (payload.page > 0) {
        const values = await ctx.childrenValues();
        for (const value of Object.values(values)) if (isBatchResult(value)) totals = add(totals, value);
      }
      // Where the current run is, for a process that starts later and looks for it (an older run leaves it alone).
      await generations.update(payload.to, (r) =>
        r.reindex && reindexRunId(payload.to, r.reindex.run) === payload.runId
          ? { ...r, reindex: { ...r.reindex, page: payload.page } }
          : r,
      );
      if (payload.final) return finish(payload, totals);
      const from = await source(payload.from);
      const { points, next } = await from.scroll({
        limit: payload.batchSize * payload.pageBatches,
        ...(payload.cursor ? { cursor: payload.cursor } : {}),
      });
      if (points.length === 0) return finish(payload, totals);
      const ids = points.map((p) => p.id);
      const batches: string[][] = [];
      for (let i = 0; i < ids.length; i += payload.batchSize) batches.push(ids.slice(i, i + payload.batchSize));
      const first = payload.page * payload.pageBatches;
      await ctx.enqueueFlow({
        parent: {
          name: 'reindex-run',
          payload: {
            ...payload,
            page: payload.page + 1,
            final: !next,
            totals,
            ...(next ? { cursor: next } : {}),
          },
          jobId: reindexPageJobId(payload.runId, payload.page + 1),
        },
        children: {
          name: 'reindex-batch',
          payloads: batches.map((b, j) => ({
            runId: payload.runId,
            batch: first + j,
            from: payload.from,
            to: payload.to,
            towers: payload.towers,
            ids: b,
          })),
          jobIds: batches.map((_, j) => `${payload.runId}.b${first + j}`),
        },
      });
      await ctx.updateProgress({ page: payload.page, points: points.length });
      return {
        finished: false,
        runId: payload.runId,
        page: payload.page,
        points: points.length,
        batches: batches.length,
      };
    },

    'reindex-batch': async (payload, ctx): Promise<ReindexBatchResult> => {
      checkTowers(payload);
      const to = await target(payload.to);
      const from = await source(payload.from);
      const result: ReindexBatchResult = { batch: payload.batch, done: 0, copied: 0, skipped: 0, failed: [] };
      const report = () =>
        ctx.updateProgress({
          done: result.done,
          copied: result.copied,
          skipped: result.skipped,
          failed: result.failed.length,
          total: payload.ids.length,
        });
      const [stored, held] = await Promise.all([from.get(payload.ids), to.get(payload.ids)]);
      const heldById = new Map(held.map((p) => [p.id, p]));
      const copy: string[] = [];
      const embed: StoredPoint[] = [];
      // Points deleted from the source since the page was read, and those the target already has, are skipped.
      result.skipped = payload.ids.length - stored.length;
      for (const p of stored) {
        if (embeddedBy(heldById.get(p.id)?.payload.embeddings, towers)) result.skipped++;
        else if (embeddedBy(p.payload.embeddings, towers)) copy.push(p.id);
        else embed.push(p);
      }

      if (copy.length) {
        const points = await from.get(copy, { withVectors: true });
        await to.upsert(points.map((p) => ({ id: p.id, vectors: p.vectors!, payload: p.payload })));
        result.copied = points.length;
      }

      const reads = await Promise.all(embed.map((p) => readChecked(p, limits)));
      const readable: { point: StoredPoint; bytes: Uint8Array }[] = [];
      reads.forEach((r, i) => {
        if (r instanceof Uint8Array) readable.push({ point: embed[i]!, bytes: r });
        else result.failed.push(r);
      });
      const outcomes = readable.length
        ? await deps.preparer.prepare(
            readable.map((r) => r.bytes),
            inputs.specs,
            deps.decode,
            mode,
          )
        : [];
      const fresh: { point: StoredPoint; image: PreparedImage }[] = [];
      outcomes.forEach((o, i) => {
        const { point } = readable[i]!;
        if (isPrepareFailure(o)) result.failed.push(failure(point, o.code, o.reason));
        else fresh.push({ point, image: o });
      });
      if (fresh.length) {
        const images = fresh.map((f) => f.image);
        const { vectors, scores } = await inputs.run(images);
        const qualities = gradeQuality(deps.quality, scores, fresh.length);
        const points: Point[] = fresh.map(({ point }, i) => ({
          id: point.id,
          vectors: vectors[i]!,
          payload: {
            ...point.payload,
            id: point.id,
            ...(qualities[i] ? { quality: qualities[i] } : {}),
            embeddings: provenance,
          },
        }));
        await rescreen(points);
        await to.upsert(points);
        result.done = points.length;
      }
      await report();
      return result;
    },
  };
}
