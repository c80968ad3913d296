/**
 * The `ingest-run` job: it reads its source as it streams — a list of items, a folder listing, or a JSONL/CSV
 * manifest read line by line — and queues `ingest-batch` jobs a page at a time, so a manifest of millions of lines is
 * never held in memory and its first batches are being embedded while the rest is still being read.
 */
import { open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Readable } from 'node:stream';
import { isAppError, isUrl } from '@lookalike/core';
import { BadInputError, type IngestItem, type IngestSource, type JobHandlers } from '@lookalike/queue';
import { fetchImage, type FetchLimits } from './fetch-url.js';
import {
  listDirectory,
  manifestFormat,
  readManifest,
  resolveInsideRoots,
  type ManifestEntry,
  type ManifestProblem,
} from './sources.js';

/** Largest manifest fetched from a URL (it is read whole before it is parsed); local manifests stream, unbounded. */
const MAX_FETCHED_MANIFEST_BYTES = 256 * 1024 * 1024;

/** Batch jobs queued in one Redis round trip. */
export const PAGE_BATCHES = 100;

/** What a run job returns. */
export interface RunResult {
  items: number;
  batches: number;
  manifestProblems: ManifestProblem[];
}

/** What reading a source needs. */
export interface SourceDeps {
  /** Folders local paths must lie in. */
  roots: readonly string[];
  fetch: FetchLimits;
}

/**
 * The source's entries in order: every item, and a problem for each manifest line that could not be used. Throws an
 * `AppError` (a 4xx `ValidationError` or a fetch error) for a source that cannot be read at all.
 */
export async function* sourceEntries(source: IngestSource, deps: SourceDeps): AsyncGenerator<ManifestEntry> {
  if (source.kind === 'items') {
    for (const item of source.items) yield { item };
    return;
  }
  if (source.kind === 'directory') {
    const root = await resolveInsideRoots(source.root, deps.roots, { label: 'the folder' });
    const items = await listDirectory(root, {
      ...(source.include ? { include: source.include } : {}),
      ...(source.exclude ? { exclude: source.exclude } : {}),
    });
    for (const item of items) yield { item };
    return;
  }
  const format = source.format ?? manifestFormat(source.location);
  if (isUrl(source.location)) {
    const bytes = await fetchImage(source.location, { ...deps.fetch, maxBytes: MAX_FETCHED_MANIFEST_BYTES });
    yield* readManifest(Readable.from([Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)]), format, '/');
    return;
  }
  const path = await resolveInsideRoots(source.location, deps.roots, { label: 'the manifest' });
  const stream = (await open(path, 'r')).createReadStream();
  try {
    yield* readManifest(stream, format, dirname(path));
  } finally {
    stream.destroy();
  }
}

/**
 * The `ingest-run` handler. Batch `b` of run `r` has job id `r.b` and the same items however often the run is
 * retried (sources are read in a fixed order), so a retried run re-adds nothing already queued. A source that turns
 * out unreadable part-way (a CSV with an unclosed quote) fails the run as bad input, not retried; the batches queued
 * before that point still run.
 */
export function ingestRunHandler(deps: SourceDeps): Required<JobHandlers>['ingest-run'] {
  return async (payload, ctx) => {
    const { runId, batchSize } = payload;
    const manifestProblems: ManifestProblem[] = [];
    let items = 0;
    let batches = 0;
    let batch: IngestItem[] = [];
    let page: { runId: string; batch: number; items: IngestItem[] }[] = [];
    const flush = async () => {
      if (page.length) {
        await ctx.enqueueBulk(
          'ingest-batch',
          page,
          page.map((p) => `${runId}.${p.batch}`),
        );
        page = [];
      }
      await ctx.updateProgress({ items, batches });
    };
    const seal = async () => {
      if (!batch.length) return;
      page.push({ runId, batch: batches++, items: batch });
      items += batch.length;
      batch = [];
      if (page.length === PAGE_BATCHES) await flush();
    };
    try {
      for await (const entry of sourceEntries(payload.source, deps)) {
        if ('problem' in entry) manifestProblems.push(entry.problem);
        else if (batch.push(entry.item) === batchSize) await seal();
      }
    } catch (error) {
      // A source that cannot be read or parsed will not get better by retrying.
      if (isAppError(error) && error.status < 500) throw new BadInputError(error.message);
      throw error;
    }
    await seal();
    await flush();
    return { items, batches, manifestProblems } satisfies RunResult;
  };
}
