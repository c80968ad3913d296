import { randomUUID } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { AppError, isUrl } from '@lookalike/core';
import type { BatchResult, IngestFailure, RunResult } from '@lookalike/ingest';
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
  seconds: number;
  points: number;
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
}
