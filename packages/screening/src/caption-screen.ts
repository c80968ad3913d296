/**
 * A collection's caption screen: the mixture it fitted (kept in the collection's metadata, so every process of a
 * deployment judges with the same one), the screening of new captioned images, the refit as the collection grows (a
 * refit rejudges every stored pair whose verdict changes), people's reviews and the listing of what was flagged.
 */
import { createHash } from 'node:crypto';
import {
  CAPTION_VERDICTS,
  NotFoundError,
  ValidationError,
  cosine,
  scrollPoints,
  type CaptionReview,
  type CaptionScreening,
  type CaptionVerdict,
  type EncoderRole,
  type Filter,
  type Point,
  type PointPayload,
  type StoredPoint,
  type TextEncoder,
  type VectorStore,
} from '@lookalike/core';
import {
  fitScreen,
  fitsPolicy,
  judge,
  rejudge,
  sameVerdict,
  screeningModelSchema,
  type ScreeningModel,
  type ScreeningPolicy,
} from './screen.js';

/** Where a collection's screen is kept: its metadata key `screening`. */
export interface ScreeningMetadata {
  read(): Promise<unknown>;
  write(model: ScreeningModel): Promise<void>;
}

/** Every screened image (whatever its verdict). */
export const SCREENED: Filter = { must: [{ field: 'screening.verdict', any: [...CAPTION_VERDICTS] }] };

/**
 * `filter` that also leaves out the images whose caption screening flagged and nobody accepted yet: what text
 * search searches unless asked to include them.
 */
export function withoutSuspicious(filter: Filter | undefined): Filter {
  return {
    ...filter,
    mustNot: [...(filter?.mustNot ?? []), { field: 'screening.verdict', match: 'suspicious' }],
  };
}

/** A captioned image to screen: its vectors, its caption's text vector, and what was stored of it before. */
export interface ScreenInput {
  vectors: Record<EncoderRole, Float32Array>;
  caption: string;
  text: Float32Array;
  /** The stored payload of an image being re-embedded: a review of the same caption carries over. */
  previous?: Pick<PointPayload, 'caption' | 'screening'>;
}

/** What a refit did. */
export interface RefitResult {
  model: ScreeningModel;
  /** Stored pairs whose verdict the new model changed. */
  rejudged: number;
  suspicious: number;
}

/** Counts per verdict, and the model judging. */
export interface ScreeningSummary {
  counts: Record<CaptionVerdict, number>;
  model: ScreeningModel | undefined;
  policy: ScreeningPolicy;
}

/** A page of screened images. */
export interface ScreeningPage {
  verdict: CaptionVerdict;
  total: number;
  /** Lowest similarity (most suspect) first. */
  images: { id: string; payload: PointPayload & { screening: CaptionScreening } }[];
}

function isScreened(p: StoredPoint): p is StoredPoint & { payload: { screening: CaptionScreening } } {
  return p.payload.screening !== undefined;
}

const PAGE = 256;
/** Unrelated pairs (an image and another image's caption) a refit measures the low component on. */
export const UNRELATED_PAIRS = 500;

/** A number in [0, 1) from a string, the same in every process. */
function hashUnit(key: string): number {
  return createHash('sha256').update(key).digest().readUInt32BE(0) / 2 ** 32;
}

/**
 * Up to `m` pairs `[i, j]` of distinct indices below `n` (an image and another image's caption): the images spread
 * evenly, each caption drawn by a hash of `n` and the pair's number, so the same `n` gives the same pairs everywhere.
 */
export function unrelatedPairs(n: number, m: number): [number, number][] {
  if (n < 2) return [];
  const count = Math.min(m, n);
  return Array.from({ length: count }, (_, k) => {
    const i = Math.floor((k * n) / count);
    return [i, (i + 1 + Math.floor(hashUnit(`${n}:${k}`) * (n - 1))) % n];
  });
}

export class CaptionScreen {
  private cached: { model: ScreeningModel | undefined; at: number } | undefined;
  /** Captions this process screened since it last counted the collection's. */
  private sinceCount = 0;
  private readonly now: () => Date;
  private readonly cacheMs: number;
  private readonly growth: number;

  constructor(
    private readonly store: VectorStore,
    private readonly text: TextEncoder,
    private readonly metadata: ScreeningMetadata,
    readonly policy: ScreeningPolicy,
    options: {
      now?: () => Date;
      /** How long a model read from the metadata is used before it is read again (other processes refit). */
      cacheMs?: number;
      /** Refit once the screened images grew by this share since the last fit (default 0.1). */
      growth?: number;
    } = {},
  ) {
    this.now = options.now ?? (() => new Date());
    this.cacheMs = options.cacheMs ?? 10_000;
    this.growth = options.growth ?? 0.1;
  }

  /** The model judging now: the collection's, when it was fitted under this policy; undefined before the first fit. */
  async model(): Promise<ScreeningModel | undefined> {
    const t = Date.now();
    if (this.cached && t - this.cached.at < this.cacheMs) return this.cached.model;
    const parsed = screeningModelSchema.safeParse(await this.metadata.read());
    const model = parsed.success && fitsPolicy(parsed.data, this.policy) ? parsed.data : undefined;
    this.cached = { model, at: t };
    return model;
  }

  /**
   * The screenings of new captioned images, judged by the current model. A re-embedded image whose caption a person
   * reviewed keeps the review (a rejected caption stays withdrawn: its verdict is `withdrawn`).
   */
  async screen(inputs: readonly ScreenInput[]): Promise<CaptionScreening[]> {
    const model = await this.model();
    return inputs.map((input) => {
      const similarity = {
        robust: cosine(input.vectors.robust, input.text),
        clean: cosine(input.vectors.clean, input.text),
      };
      const before = input.previous?.screening;
      const reviewedSame =
        before?.review === 'rejected'
          ? before.withdrawnCaption === input.caption
          : before?.review === 'accepted' && input.previous?.caption === input.caption;
      const base = { similarity, tower: this.policy.tower, textModel: this.policy.textModel };
      if (before && reviewedSame) return { ...before, ...base };
      return { ...base, ...judge(model, similarity[this.policy.tower], this.policy.minCount) };
    });
  }

  /**
   * Refits when the collection holds at least `minCount` screened images and none was fitted yet, or they grew since
   * the last fit by the growth share and by `minCount` images. `added`: the captions just screened. Returns what the
   * refit did, or undefined when none was due.
   */
  async refitIfGrown(added = 1): Promise<RefitResult | undefined> {
    // Counting the collection costs ~10 ms at 100,000 images: with a model, count again only once this process has
    // screened a tenth of the growth a refit waits for (other processes' captions are seen at the next count).
    this.sinceCount += added;
    const fitted = await this.model();
    if (fitted && this.sinceCount < Math.max(this.policy.minCount, fitted.count * this.growth) / 10) return undefined;
    this.sinceCount = 0;
    const count = await this.store.count(SCREENED);
    if (count < this.policy.minCount) return undefined;
    if (fitted && (count < fitted.count * (1 + this.growth) || count - fitted.count < this.policy.minCount))
      return undefined;
    return this.refit();
  }

  /**
   * Fits the mixture to every screened image's similarity, with the low component measured on unrelated pairs,
   * keeps it, and rejudges the stored pairs it changes.
   */
  async refit(): Promise<RefitResult | undefined> {
    const similarities: number[] = [];
    const captions: { id: string; caption: string }[] = [];
    const screened: { id: string; screening: CaptionScreening }[] = [];
    for await (const p of scrollPoints(this.store, { filter: SCREENED })) {
      if (!isScreened(p)) continue;
      screened.push({ id: p.id, screening: p.payload.screening });
      similarities.push(p.payload.screening.similarity[this.policy.tower]);
      const caption = p.payload.caption ?? p.payload.screening.withdrawnCaption;
      if (caption) captions.push({ id: p.id, caption });
    }
    if (similarities.length < this.policy.minCount) return undefined;
    // The unrelated pairs are measured again once the collection has doubled since they last were.
    const before = await this.model();
    const low =
      before && before.lowFrom === 'unrelated' && similarities.length < 2 * before.unrelatedMeasuredAt
        ? {
            mean: before.low.mean,
            sd: before.low.sd,
            pairs: before.unrelatedPairs,
            measuredAt: before.unrelatedMeasuredAt,
          }
        : await this.unrelated(captions);
    const model = fitScreen(similarities, this.policy, this.now(), low);
    await this.metadata.write(model);
    this.cached = { model, at: Date.now() };
    // The pairs whose verdict changes, from the payloads the fit read.
    let suspicious = 0;
    const changed: string[] = [];
    for (const { id, screening } of screened) {
      const next = rejudge(screening, model, this.policy);
      if (next.verdict === 'suspicious') suspicious++;
      if (!sameVerdict(next, screening)) changed.push(id);
    }
    let rejudged = 0;
    for (let start = 0; start < changed.length; start += PAGE) {
      // Read again just before writing: a review made since the scroll is kept.
      const fresh = await this.store.get(changed.slice(start, start + PAGE), { withVectors: true });
      const points: Point[] = [];
      for (const p of fresh) {
        if (!isScreened(p) || !p.vectors) continue;
        const next = rejudge(p.payload.screening, model, this.policy);
        if (sameVerdict(next, p.payload.screening)) continue;
        points.push({ id: p.id, vectors: p.vectors, payload: { ...p.payload, screening: next } });
      }
      if (points.length) await this.store.upsert(points);
      rejudged += points.length;
    }
    return { model, rejudged, suspicious };
  }

  /**
   * The similarities of up to {@link UNRELATED_PAIRS} unrelated pairs: an image and the caption of another image
   * (another text), in the screening tower's space. The pairs depend only on the collection's ids, so every process
   * measures the same ones.
   */
  private async unrelated(captions: { id: string; caption: string }[]): Promise<number[]> {
    captions.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const pairs = unrelatedPairs(captions.length, UNRELATED_PAIRS)
      .filter(([i, j]) => captions[j]!.caption !== captions[i]!.caption)
      .map(([i, j]) => ({ image: captions[i]!.id, caption: captions[j]!.caption }));
    const out: number[] = [];
    for (let start = 0; start < pairs.length; start += 128) {
      const chunk = pairs.slice(start, start + 128);
      const points = new Map(
        (
          await this.store.get(
            chunk.map((p) => p.image),
            { withVectors: true },
          )
        ).map((p) => [p.id, p]),
      );
      const texts = await this.text.embed(chunk.map((p) => p.caption));
      chunk.forEach((p, k) => {
        const v = points.get(p.image)?.vectors?.[this.policy.tower];
        if (v) out.push(cosine(v, texts[k]!));
      });
    }
    return out;
  }

  /**
   * A person's review of image `id`'s caption: `accepted` trusts it (and restores a withdrawn caption), `rejected`
   * withdraws it from the payload (kept in `screening.withdrawnCaption`). Nothing is deleted; a second review
   * replaces the first.
   */
  async review(id: string, review: CaptionReview): Promise<StoredPoint & { payload: { screening: CaptionScreening } }> {
    const [point] = await this.store.get([id], { withVectors: true });
    if (!point) throw new NotFoundError('image', id);
    if (!isScreened(point) || !point.vectors)
      throw new ValidationError(`Image ${id} has no screened caption to review.`, [
        { path: 'id', message: 'not screened' },
      ]);
    const { caption, screening, ...rest } = point.payload;
    const reviewedAt = this.now().toISOString();
    const text = caption ?? screening.withdrawnCaption;
    const { withdrawnCaption: _w, ...kept } = screening;
    const payload: PointPayload & { screening: CaptionScreening } =
      review === 'accepted'
        ? {
            ...rest,
            ...(text === undefined ? {} : { caption: text }),
            screening: { ...kept, verdict: 'trusted', review, reviewedAt },
          }
        : {
            ...rest,
            screening: {
              ...kept,
              verdict: 'withdrawn',
              review,
              reviewedAt,
              ...(text === undefined ? {} : { withdrawnCaption: text }),
            },
          };
    await this.store.upsert([{ id, vectors: point.vectors, payload }]);
    return { id, payload };
  }

  /** How many screened images have each verdict, and the model judging them. */
  async summary(): Promise<ScreeningSummary> {
    const counts = Object.fromEntries(
      await Promise.all(
        CAPTION_VERDICTS.map(
          async (v) => [v, await this.store.count({ must: [{ field: 'screening.verdict', match: v }] })] as const,
        ),
      ),
    ) as Record<CaptionVerdict, number>;
    return { counts, model: await this.model(), policy: this.policy };
  }

  /**
   * Screened images with one verdict, the lowest similarity in the screening tower first. Each carries its
   * probability, boundary and reason under the current model (the stored ones are those of the fit that last changed
   * its verdict), unless a person reviewed it.
   */
  async list(options: { verdict: CaptionVerdict; limit: number; offset?: number }): Promise<ScreeningPage> {
    const filter: Filter = { must: [{ field: 'screening.verdict', match: options.verdict }] };
    const model = await this.model();
    const now = (s: CaptionScreening): CaptionScreening => {
      if (!model || s.review) return s;
      const j = judge(model, s.similarity[this.policy.tower], this.policy.minCount);
      return j.verdict === s.verdict ? { ...s, ...j } : s;
    };
    const images: ScreeningPage['images'] = [];
    for await (const p of scrollPoints(this.store, { filter }))
      if (isScreened(p)) images.push({ id: p.id, payload: { ...p.payload, screening: now(p.payload.screening) } });
    const tower = this.policy.tower;
    images.sort(
      (a, b) =>
        a.payload.screening.similarity[tower] - b.payload.screening.similarity[tower] || a.id.localeCompare(b.id),
    );
    const offset = options.offset ?? 0;
    return { verdict: options.verdict, total: images.length, images: images.slice(offset, offset + options.limit) };
  }
}
