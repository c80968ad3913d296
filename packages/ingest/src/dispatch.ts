/**
 * The first stage of an ingest batch, run one chunk ahead of the towers: read and hash each item, drop the ids
 * already stored with the current towers' vectors or met earlier in the batch, and hand the rest to the preparer
 * (decode and preprocess on its threads). A file that cannot be read, or decoded, is a failure with its reason;
 * copies of a failed file (the same bytes) fail with it, other copies and stored files are skipped.
 */
import { createHash } from 'node:crypto';
import { isAppError, type ErrorCode, type PointPayload, type PreprocessMode, type VectorStore } from '@lookalike/core';
import {
  isPrepareFailure,
  type DecodeLimits,
  type ImagePreparer,
  type PreparedImage,
  type PixelSpec,
  type PrepareOutcome,
} from '@lookalike/imaging';
import type { IngestItem } from '@lookalike/queue';
import type { FetchLimits } from './fetch-url.js';
import { readOriginal } from './originals.js';

/** Why an image was not ingested: an image or limit code from `@lookalike/core`, or `READ_FAILED`. */
export type IngestFailureCode = ErrorCode | 'READ_FAILED';

/** One image that could not be ingested, and why. */
export interface IngestFailure {
  location: string;
  code: IngestFailureCode;
  reason: string;
}

/** An item whose bytes were read and hashed. */
interface Read {
  item: IngestItem;
  id: string;
  /** Moved to a preprocessing thread when decoded: read `size`, not `bytes.length`, afterwards. */
  bytes: Uint8Array;
  size: number;
}

/** An image to embed: one item per distinct fresh id. */
export interface Fresh {
  item: IngestItem;
  id: string;
  size: number;
  image: PreparedImage;
  ingestedAt: string | undefined;
  /** The group a re-embedded image already had. */
  duplicates?: PointPayload['duplicates'];
  /** The caption and screening a re-embedded image had (a review of the same caption carries over). */
  previous?: Pick<PointPayload, 'caption' | 'screening'>;
}

/** The ids of a batch so far, each with its failure (undefined for a good image) once that is known. */
export type Seen = Map<string, Promise<IngestFailure | undefined>>;

/** Marks a promise as handled so that it may reject before it is awaited (it still rejects when awaited). */
export function handled<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}

/** A chunk read, checked against the store and preprocessed, ready to embed. */
export interface Staged {
  fresh: Fresh[];
  skipped: number;
  failed: IngestFailure[];
  ids: string[];
}

function failure(location: string, error: unknown): IngestFailure {
  return {
    location,
    code: isAppError(error) ? error.code : 'READ_FAILED',
    reason: error instanceof Error ? error.message : String(error),
  };
}

/** Reads and hashes one item; every failure is returned as a reason, never thrown. */
async function read(item: IngestItem, o: DispatchOptions): Promise<Read | IngestFailure> {
  try {
    const bytes = await readOriginal(item.location, {
      roots: o.roots,
      fetch: o.fetch,
      ...(o.decode?.maxBytes === undefined ? {} : { maxBytes: o.decode.maxBytes }),
    });
    const id = createHash('sha256').update(bytes).digest('hex');
    return { item, id, bytes, size: bytes.length };
  } catch (error) {
    return failure(item.location, error);
  }
}

function isFailure<T extends object>(x: T | IngestFailure): x is IngestFailure {
  return 'reason' in x;
}

/** What the stage reads with, checks against and prepares with. */
export interface DispatchOptions {
  store: Pick<VectorStore, 'get'>;
  /** Folders local paths must lie in. */
  roots: readonly string[];
  fetch: FetchLimits;
  decode?: DecodeLimits | undefined;
  /** Whether a stored point's vectors come from the current towers and preprocessing (then it is skipped). */
  upToDate: (embeddings: PointPayload['embeddings'] | undefined) => boolean;
  /** The preparer to hand images to (it may throw when the handlers are closed: the batch is then retried). */
  preparer: () => Pick<ImagePreparer, 'prepare'>;
  /** The towers' preprocessing, one prepared input each. */
  specs: readonly PixelSpec[];
  mode: PreprocessMode;
}

/**
 * The stage: `dispatch(items, seen)` reads a chunk and hands its fresh images over; it resolves once they are handed
 * over, and its `ready` once they are decoded and preprocessed. `seen` maps the ids of the batch so far to their
 * failure (undefined for a good image), once that is known.
 */
export function createDispatch(o: DispatchOptions) {
  /**
   * Reads a chunk, drops what is already stored or came earlier in the batch, and hands the rest to the preparer.
   * Resolves once the work is handed over; `ready` resolves when the images are decoded and preprocessed. `seen`
   * maps the ids of the batch so far to their failure (undefined for a good image), once that is known.
   */
  return async function dispatch(items: readonly IngestItem[], seen: Seen): Promise<{ ready: Promise<Staged> }> {
    const reads = await Promise.all(items.map((it) => read(it, o)));
    const byId = new Map<string, Read[]>();
    for (const r of reads) if (!isFailure(r)) byId.set(r.id, [...(byId.get(r.id) ?? []), r]);
    const unseen = [...byId.keys()].filter((id) => !seen.has(id));
    const existing = new Map((await o.store.get(unseen)).map((p) => [p.id, p]));
    const toPrepare = unseen.filter((id) => !o.upToDate(existing.get(id)?.payload.embeddings));
    const firsts = toPrepare.map((id) => byId.get(id)![0]!);
    const outcomes = handled(
      firsts.length
        ? o.preparer().prepare(
            firsts.map((r) => r.bytes),
            o.specs,
            o.decode,
            o.mode,
          )
        : Promise.resolve([]),
    );
    for (const id of unseen) seen.set(id, Promise.resolve(undefined));
    firsts.forEach((r, k) => {
      const failed = (o: PrepareOutcome[]): IngestFailure | undefined => {
        const outcome = o[k]!;
        return isPrepareFailure(outcome) ? { location: r.item.location, ...outcome } : undefined;
      };
      // A preparer fault fails the batch through `ready`; here it only means "no known failure".
      seen.set(
        r.id,
        outcomes.then(failed, () => undefined),
      );
    });
    const ready = handled(
      (async (): Promise<Staged> => {
        const prepared = await outcomes;
        const fresh: Fresh[] = [];
        firsts.forEach((r, k) => {
          const image = prepared[k]!;
          const stored = existing.get(r.id)?.payload;
          if (!isPrepareFailure(image))
            fresh.push({
              item: r.item,
              id: r.id,
              size: r.size,
              image,
              ingestedAt: stored?.ingestedAt,
              ...(stored?.duplicates ? { duplicates: stored.duplicates } : {}),
              ...(stored ? { previous: { caption: stored.caption, screening: stored.screening } } : {}),
            });
        });
        // Copies of a file that failed fail with it; other copies, and stored files, are skipped.
        const staged: Staged = { fresh, skipped: 0, failed: [], ids: [] };
        const freshItems = new Set(fresh.map((f) => f.item));
        for (const r of reads) {
          if (isFailure(r)) {
            staged.failed.push(r);
            continue;
          }
          const failedAs = await seen.get(r.id);
          if (failedAs) staged.failed.push({ ...failedAs, location: r.item.location });
          else {
            staged.ids.push(r.id);
            if (!freshItems.has(r.item)) staged.skipped++;
          }
        }
        return staged;
      })(),
    );
    return { ready };
  };
}
