import { randomUUID } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { AppError, isUrl } from '@lookalike/core';
import type {
  BatchResult,
  DuplicateJoin,
  IngestFailure,
  LowQualityImage,
  RunResult,
  SuspiciousCaption,
} from '@lookalike/ingest';
import type { IngestSource } from '@lookalike/queue';
import type { Services } from '@lookalike/services';
import { jobProgressBar } from './progress.js';

/** What one ingest run did. */
export interface IngestSummary {
  items: number;
  done: number;
  skipped: number;
  failed: IngestFailure[];
  lostBatches: string[];
  manifestProblems: RunResult['manifestProblems'];
  /** New images that joined a near-duplicate group. */
  duplicates: DuplicateJoin[];
  /** Captions screened, by the verdict each got when stored, and those flagged as suspicious. */
  captions: BatchResult['captions'];
  suspicious: SuspiciousCaption[];
  /** Images the quality model scored, how many it graded `low`, and those (with their scores). */
  quality: BatchResult['quality'];
  lowQuality: LowQualityImage[];
  seconds: number;
  points: number;
}

/**
 * For an ingest of a synthetic catalog's re-renders (`rerenders.jsonl`, whose lines name the item they re-render
 * as `item`): how many joined the group of their own original, another item's group, or none.
 */
export async function printRerenderGrouping(services: Services, s: IngestSummary): Promise<void> {
  const policy = services.duplicates;
  if (!policy) {
    console.log('Near-duplicate grouping is off (DUPLICATES=off, or no calibration): nothing was grouped.');
    return;
  }
  const joins = s.duplicates;
  const ids = new Set(joins.flatMap((d) => [d.id, d.group, d.nearest]));
  const byId = new Map((await services.store.get([...ids])).map((p) => [p.id, p.payload]));
  // Its own original: the image it was found nearest to, or the first image of the group it joined.
  const own = joins.filter((d) => {
    const item = byId.get(d.id)?.metadata?.item;
    return item !== undefined && [d.nearest, d.group].some((id) => byId.get(id)?.metadata?.externalId === item);
  }).length;
  const fresh = s.done;
  console.log(
    `Near-duplicates (${policy.tower} tower, same item at 1 − cos ≤ ${policy.threshold.toFixed(4)}): of ${fresh} ` +
      `re-photographed parts, ${own} joined the group of their own original, ${joins.length - own} another ` +
      `item's group, ${fresh - joins.length} none.`,
  );
}

/** Turns a CLI argument into an ingest source: a folder, a .jsonl/.csv manifest, or a manifest URL. */
export async function sourceOf(arg: string): Promise<IngestSource> {
  if (isUrl(arg)) return { kind: 'manifest', location: arg };
  const path = resolve(arg);
  const info = await stat(path).catch(() => undefined);
  if (!info) throw new Error(`${arg} does not exist`);
  return info.isDirectory() ? { kind: 'directory', root: path } : { kind: 'manifest', location: path };
}

/**
 * Runs one ingest through the configured job runner with a live progress bar (images done, failed, images/s,
 * ETA) and returns the summary. Waits until every batch has finished or failed for good.
 */
export async function runIngest(services: Services, source: IngestSource, batchSize: number): Promise<IngestSummary> {
  const runId = randomUUID();
  const started = performance.now();
  const summary: IngestSummary = {
    items: 0,
    done: 0,
    skipped: 0,
    failed: [],
    lostBatches: [],
    manifestProblems: [],
    duplicates: [],
    captions: { screened: 0, suspicious: 0, pending: 0 },
    suspicious: [],
    quality: { scored: 0, low: 0 },
    lowQuality: [],
    seconds: 0,
    points: 0,
  };
  const bar = jobProgressBar('ingest', '{value}/{total} images | {failed} failed | {rate} img/s');
  const { events } = services.runner;
  let batches = -1;
  let finished = 0;
  const update = () => {
    const processed = summary.done + summary.skipped + summary.failed.length;
    const secs = (performance.now() - started) / 1000;
    bar.update(processed, { failed: summary.failed.length, rate: (processed / Math.max(secs, 1e-3)).toFixed(1) });
  };
  const done = new Promise<void>((resolveDone, reject) => {
    const check = () => {
      if (batches >= 0 && finished >= batches) resolveDone();
    };
    events.on('completed', (id, name, result) => {
      if (name === 'ingest-run' && id === runId) {
        const r = result as RunResult;
        summary.items = r.items;
        summary.manifestProblems = r.manifestProblems;
        batches = r.batches;
        bar.start(r.items, summary.done + summary.skipped + summary.failed.length, { failed: 0, rate: '0.0' });
        check();
      } else if (name === 'ingest-batch' && id.startsWith(`${runId}.`)) {
        const r = result as BatchResult;
        summary.done += r.done;
        summary.skipped += r.skipped;
        summary.failed.push(...r.failed);
        summary.duplicates.push(...r.duplicates);
        summary.captions.screened += r.captions.screened;
        summary.captions.suspicious += r.captions.suspicious;
        summary.captions.pending += r.captions.pending;
        summary.suspicious.push(...r.suspicious);
        summary.quality.scored += r.quality.scored;
        summary.quality.low += r.quality.low;
        summary.lowQuality.push(...r.lowQuality);
        finished++;
        update();
        check();
      }
    });
    events.on('failed', (id, name, reason, final) => {
      if (!final) return;
      if (id === runId) reject(new AppError('VALIDATION_FAILED', `the ingest run failed: ${reason}`));
      else if (name === 'ingest-batch' && id.startsWith(`${runId}.`)) {
        summary.lostBatches.push(`${id}: ${reason}`);
        finished++;
        check();
      }
    });
  });
  await services.runner.enqueue('ingest-run', { runId, source, batchSize }, { jobId: runId });
  try {
    await done;
  } finally {
    bar.stop();
  }
  await services.store.optimize?.();
  summary.seconds = (performance.now() - started) / 1000;
  summary.points = await services.store.count();
  return summary;
}

/** Prints the final summary, failures with their reasons. */
export function printSummary(s: IngestSummary): void {
  const rate = (s.done + s.skipped) / Math.max(s.seconds, 1e-3);
  console.log(
    `Ingested ${s.done} new images (${s.skipped} already present, ${s.failed.length} failed) of ${s.items} in ` +
      `${s.seconds.toFixed(1)} s (${rate.toFixed(1)} images/s); the store now holds ${s.points} images.`,
  );
  for (const f of s.failed.slice(0, 20)) console.log(`  failed: ${f.location}: ${f.reason} [${f.code}]`);
  if (s.failed.length > 20) console.log(`  … and ${s.failed.length - 20} more failures`);
  for (const p of s.manifestProblems.slice(0, 20)) console.log(`  manifest line ${p.line} skipped: ${p.reason}`);
  for (const b of s.lostBatches) console.log(`  batch failed after all retries: ${b}`);
  if (s.duplicates.length > 0)
    console.log(
      `${s.duplicates.length} of the new images joined a near-duplicate group; review them at /duplicates ` +
        '(GET /v1/duplicates).',
    );
  const c = s.captions;
  if (c.screened > 0)
    console.log(
      `Caption screening: ${c.screened} captions screened, ${c.suspicious} suspicious` +
        (c.pending ? `, ${c.pending} pending (too few captioned images to judge yet)` : '') +
        (c.suspicious ? '; list them with npx lookalike screening (GET /v1/screening).' : '.'),
    );
  for (const x of s.suspicious.slice(0, 10))
    console.log(`  suspicious: ${x.location} "${x.caption}" (similarity ${x.similarity.toFixed(3)})`);
  if (s.suspicious.length > 10) console.log(`  … and ${s.suspicious.length - 10} more`);
  const q = s.quality;
  if (q.scored > 0)
    console.log(
      `Image quality: ${q.scored} images scored, ${q.low} graded low` +
        (q.low ? ' (search with "quality": "low" lists them, "ok" leaves them out).' : '.'),
    );
  for (const x of s.lowQuality.slice(0, 10)) console.log(`  low quality: ${x.location} (score ${x.score.toFixed(3)})`);
  if (s.lowQuality.length > 10) console.log(`  … and ${s.lowQuality.length - 10} more`);
}
