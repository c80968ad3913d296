/**
 * The ingest job handlers. A run lists its source and fans out into batch jobs; a batch reads, decodes and
 * validates each image, embeds the good ones with both towers, and upserts them. Ids are the sha256 of the bytes,
 * so re-ingesting a file never duplicates it; a point whose vectors already come from the current models and
 * preprocessing is skipped, and a model change re-embeds. A bad file is recorded with its reason and never fails
 * its batch; store faults propagate so the job retries (upserts are idempotent).
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import {
  AppError,
  ENCODER_ROLES,
  isAppError,
  type EncoderRole,
  type ImageEncoder,
  type PixelBatch,
  type Point,
  type PointPayload,
  type VectorStore,
} from '@lookalike/core';
import { decodeImage, preprocessBatch, type DecodeLimits, type DecodedImage } from '@lookalike/imaging';
import type { IngestItem, JobHandlers } from '@lookalike/queue';
import { BadInputError } from '@lookalike/queue';
import { fetchImage, type FetchLimits } from './fetch-url.js';
import { listDirectory, manifestFormat, parseManifest, resolveInsideRoots } from './sources.js';

export interface IngestDeps {
  store: VectorStore;
  encoders: Record<EncoderRole, ImageEncoder>;
  /** Folders local paths must lie in. */
  roots: readonly string[];
  decode?: DecodeLimits;
  fetch: FetchLimits;
  /** Images decoded ahead while the previous chunk is being embedded. */
  chunkSize?: number;
  now?: () => Date;
}

/** One image that could not be ingested, and why. */
export interface IngestFailure {
  location: string;
  code: string;
  reason: string;
}

/** What a batch job returns (and reports as progress). */
export interface BatchResult {
  batch: number;
  done: number;
  skipped: number;
  failed: IngestFailure[];
  ids: string[];
}

/** What a run job returns. */
export interface RunResult {
  items: number;
  batches: number;
  manifestProblems: { line: number; reason: string }[];
}

interface Loaded {
  item: IngestItem;
  id: string;
  bytes: number;
  image: DecodedImage;
}

async function readLocal(path: string, maxBytes: number): Promise<Uint8Array> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    if (size > maxBytes)
      throw new AppError('IMAGE_TOO_MANY_BYTES', `the file is ${size} bytes; the limit is ${maxBytes}`, {
        details: { size },
      });
    const buf = Buffer.alloc(size);
    await handle.read(buf, 0, size, 0);
    return new Uint8Array(buf.buffer, buf.byteOffset, size);
  } finally {
    await handle.close();
  }
}

/** Reads and decodes one item; every failure is returned as a reason, never thrown. */
async function load(item: IngestItem, deps: IngestDeps): Promise<Loaded | IngestFailure> {
  try {
    const maxBytes = deps.decode?.maxBytes ?? 25 * 1024 * 1024;
    const bytes = /^https?:\/\//i.test(item.location)
      ? await fetchImage(item.location, { ...deps.fetch, maxBytes: Math.min(deps.fetch.maxBytes, maxBytes) })
      : await readLocal(await resolveInsideRoots(item.location, deps.roots), maxBytes);
    const id = createHash('sha256').update(bytes).digest('hex');
    const image = await decodeImage(bytes, deps.decode);
    return { item, id, bytes: bytes.length, image };
  } catch (error) {
    return {
      location: item.location,
      code: isAppError(error) ? error.code : 'READ_FAILED',
      reason: error instanceof Error ? error.message : String(error),
    };
  }
}

function isFailure(x: Loaded | IngestFailure): x is IngestFailure {
  return 'reason' in x;
}

/** The ingest handlers for the job runners (BullMQ workers or in-process). */
export function createIngestHandlers(deps: IngestDeps): Pick<Required<JobHandlers>, 'ingest-run' | 'ingest-batch'> {
  const now = deps.now ?? (() => new Date());
  const provenance = Object.fromEntries(
    ENCODER_ROLES.map((r) => [
      r,
      { modelId: deps.encoders[r].info.id, preprocessHash: deps.encoders[r].info.preprocessHash },
    ]),
  ) as PointPayload['embeddings'];

  async function embedAndUpsert(loaded: Loaded[]): Promise<{ done: number; skipped: number }> {
    // The same file twice in one batch is one point.
    const unique = [...new Map(loaded.map((l) => [l.id, l])).values()];
    const existing = new Map((await deps.store.get(unique.map((l) => l.id))).map((p) => [p.id, p]));
    const fresh = unique.filter((l) => {
      const e = existing.get(l.id)?.payload.embeddings;
      return !(
        e &&
        ENCODER_ROLES.every(
          (r) => e[r]?.modelId === provenance[r].modelId && e[r]?.preprocessHash === provenance[r].preprocessHash,
        )
      );
    });
    if (fresh.length === 0) return { done: 0, skipped: loaded.length };
    const images = fresh.map((l) => l.image);
    // Towers that share a preprocessing (the usual case) share one resize of the batch.
    const batches = new Map<string, PixelBatch>();
    const batchFor = (r: EncoderRole): PixelBatch => {
      const { preprocess, preprocessHash } = deps.encoders[r].info;
      let batch = batches.get(preprocessHash);
      if (!batch) batches.set(preprocessHash, (batch = preprocessBatch(images, preprocess)));
      return batch;
    };
    const vectors = await Promise.all(ENCODER_ROLES.map((r) => deps.encoders[r].embed(batchFor(r))));
    const points: Point[] = fresh.map((l, i) => ({
      id: l.id,
      vectors: Object.fromEntries(ENCODER_ROLES.map((r, k) => [r, vectors[k]![i]!])) as Point['vectors'],
      payload: {
        id: l.id,
        source: l.item.location,
        format: l.image.format,
        width: l.image.width,
        height: l.image.height,
        bytes: l.bytes,
        ...(l.item.caption ? { caption: l.item.caption } : {}),
        ...(l.item.labels ? { labels: l.item.labels } : {}),
        ...(l.item.metadata || l.item.id
          ? { metadata: { ...(l.item.metadata ?? {}), ...(l.item.id ? { externalId: l.item.id } : {}) } }
          : {}),
        ingestedAt: existing.get(l.id)?.payload.ingestedAt ?? now().toISOString(),
        embeddings: provenance,
      },
    }));
    await deps.store.upsert(points);
    return { done: fresh.length, skipped: loaded.length - fresh.length };
  }

  return {
    'ingest-run': async (payload, ctx) => {
      const { source } = payload;
      let items: IngestItem[];
      let manifestProblems: RunResult['manifestProblems'] = [];
      try {
        if (source.kind === 'items') items = source.items;
        else if (source.kind === 'directory') {
          const root = await resolveInsideRoots(source.root, deps.roots);
          items = await listDirectory(root, {
            ...(source.include ? { include: source.include } : {}),
            ...(source.exclude ? { exclude: source.exclude } : {}),
          });
        } else {
          const format = source.format ?? manifestFormat(source.location);
          const isUrl = /^https?:\/\//i.test(source.location);
          const path = isUrl ? undefined : await resolveInsideRoots(source.location, deps.roots);
          const bytes = isUrl
            ? await fetchImage(source.location, { ...deps.fetch, maxBytes: 256 * 1024 * 1024 })
            : await readLocal(path!, 256 * 1024 * 1024);
          const baseDir = path ? path.slice(0, path.lastIndexOf('/')) : '/';
          const parsed = parseManifest(new TextDecoder().decode(bytes), format, baseDir);
          items = parsed.items;
          manifestProblems = parsed.problems;
        }
      } catch (error) {
        // A source that cannot be read or parsed will not get better by retrying.
        if (isAppError(error) && error.status < 500) throw new BadInputError(error.message);
        throw error;
      }
      const size = payload.batchSize;
      const batches = Math.ceil(items.length / size);
      const payloads = Array.from({ length: batches }, (_, b) => ({
        runId: payload.runId,
        batch: b,
        items: items.slice(b * size, (b + 1) * size),
      }));
      // Deterministic child ids: a retried run re-adds nothing that is already queued.
      await ctx.enqueueBulk(
        'ingest-batch',
        payloads,
        payloads.map((p) => `${payload.runId}.${p.batch}`),
      );
      await ctx.updateProgress({ items: items.length, batches });
      return { items: items.length, batches, manifestProblems } satisfies RunResult;
    },

    'ingest-batch': async (payload, ctx) => {
      const chunk = deps.chunkSize ?? 16;
      const result: BatchResult = { batch: payload.batch, done: 0, skipped: 0, failed: [], ids: [] };
      const chunks: IngestItem[][] = [];
      for (let i = 0; i < payload.items.length; i += chunk) chunks.push(payload.items.slice(i, i + chunk));
      // Decode chunk k+1 (sharp works off the event loop) while chunk k is embedded.
      let next = chunks.length ? Promise.all(chunks[0]!.map((it) => load(it, deps))) : undefined;
      for (let k = 0; k < chunks.length; k++) {
        const loaded = await next!;
        next = k + 1 < chunks.length ? Promise.all(chunks[k + 1]!.map((it) => load(it, deps))) : undefined;
        const good = loaded.filter((l): l is Loaded => !isFailure(l));
        result.failed.push(...loaded.filter(isFailure));
        const { done, skipped } = good.length ? await embedAndUpsert(good) : { done: 0, skipped: 0 };
        result.done += done;
        result.skipped += skipped;
        result.ids.push(...good.map((g) => g.id));
        await ctx.updateProgress({
          done: result.done,
          skipped: result.skipped,
          failed: result.failed.length,
          total: payload.items.length,
        });
      }
      return result;
    },
  };
}
