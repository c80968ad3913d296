import type { JobState, JobStatus } from '@lookalike/core';
import type { JobRunner } from '@lookalike/queue';
import type { DuplicateJoin } from './duplicates.js';
import type { SuspiciousCaption } from './caption-screening.js';
import type { LowQualityImage } from './quality.js';
import type { BatchResult, IngestFailure } from './processor.js';
import type { RunResult } from './run.js';

/** Where a whole ingest run stands: its run job plus every batch job it fanned out to. */
export interface RunStatus {
  /** The run job's id (its `runId`). */
  id: string;
  name: 'ingest-run';
  /**
   * `completed` once the run job and every batch have finished (a batch that failed for good counts as finished;
   * see `batchesFailed`); `failed` when the run job itself failed (e.g. an unreadable source); otherwise the
   * state of the run job, or `active` while batches are still pending.
   */
  state: JobState;
  /** Images the source listed; 0 until the run job has listed it. */
  items: number;
  batches: number;
  batchesDone: number;
  /** Batches that failed after all their attempts; their images are not in `done`, `skipped` or `failed`. */
  batchesFailed: number;
  /** Batches the queue no longer knows (removed by retention) or has not been told of yet. */
  batchesUnknown: number;
  /** Images embedded and stored. */
  done: number;
  /** Images already stored with the current models. */
  skipped: number;
  /** The first {@link RunStatusOptions.maxFailures} images that could not be ingested, with their reasons. */
  failed: IngestFailure[];
  /** How many images could not be ingested in all. */
  failedTotal: number;
  /**
   * The first {@link RunStatusOptions.maxFailures} new images that joined a near-duplicate group: the group, the
   * image they were found closest to, and the distance.
   */
  duplicates: DuplicateJoin[];
  /** How many new images joined a near-duplicate group in all (also counted in `done`). */
  duplicatesTotal: number;
  /** New images stored without a duplicate lookup because the store could not search yet (a re-index pending). */
  duplicatesUnchecked: number;
  /**
   * Captions screened, by the verdict each got when it was stored (a refit as the collection grows may change it
   * later; `GET /v1/screening` has the verdicts now).
   */
  captions: BatchResult['captions'];
  /** The first {@link RunStatusOptions.maxFailures} captions flagged as suspicious when stored. */
  suspicious: SuspiciousCaption[];
  /** Images the quality head scored, and how many it graded `low` (under its threshold). */
  quality: BatchResult['quality'];
  /** The first {@link RunStatusOptions.maxFailures} images graded `low`, with their scores. */
  lowQuality: LowQualityImage[];
  /** Why each failed batch failed (first {@link RunStatusOptions.maxFailures}). */
  batchFailures: { id: string; reason: string }[];
  manifestProblems: RunResult['manifestProblems'];
  /** Why the run job failed, when it did. */
  failedReason?: string;
}

/** Options of {@link getRunStatus}. */
export interface RunStatusOptions {
  /** Longest `failed` list returned; the total is always given. Default 100. */
  maxFailures?: number;
  /** Batch jobs read at once. Default 32. */
  concurrency?: number;
}

function isBatchResult(result: unknown): result is BatchResult {
  return (
    result !== null &&
    typeof result === 'object' &&
    typeof (result as BatchResult).done === 'number' &&
    Array.isArray((result as BatchResult).failed)
  );
}

/** Batch progress as {@link createIngestHandlers} reports it while a batch runs. */
function partialCounts(progress: unknown): {
  done: number;
  skipped: number;
  duplicates: number;
  suspicious: number;
  lowQuality: number;
} {
  const p = (progress !== null && typeof progress === 'object' ? progress : {}) as {
    done?: unknown;
    skipped?: unknown;
    duplicates?: unknown;
    suspicious?: unknown;
    lowQuality?: unknown;
  };
  const count = (v: unknown) => (typeof v === 'number' ? v : 0);
  return {
    done: count(p.done),
    skipped: count(p.skipped),
    duplicates: count(p.duplicates),
    suspicious: count(p.suspicious),
    lowQuality: count(p.lowQuality),
  };
}

/**
 * The status of job `jobId`. For an ingest run it reads the run job's result and then each batch job
 * `${runId}.${b}` and sums them into a {@link RunStatus}; any other job comes back as its plain {@link JobStatus}.
 * Works with every {@link JobRunner} (BullMQ or in-process), since it only calls `getJob`. `undefined` when the
 * runner does not know the job.
 */
export async function getRunStatus(
  runner: Pick<JobRunner, 'getJob'>,
  jobId: string,
  options: RunStatusOptions = {},
): Promise<RunStatus | JobStatus | undefined> {
  const run = await runner.getJob(jobId);
  if (!run || run.name !== 'ingest-run') return run;
  const maxFailures = options.maxFailures ?? 100;
  const result =
    run.result !== null && typeof run.result === 'object' && typeof (run.result as RunResult).batches === 'number'
      ? (run.result as RunResult)
      : undefined;
  const status: RunStatus = {
    id: jobId,
    name: 'ingest-run',
    state: run.state,
    items: result?.items ?? 0,
    batches: result?.batches ?? 0,
    batchesDone: 0,
    batchesFailed: 0,
    batchesUnknown: 0,
    done: 0,
    skipped: 0,
    failed: [],
    failedTotal: 0,
    duplicates: [],
    duplicatesTotal: 0,
    duplicatesUnchecked: 0,
    captions: { screened: 0, suspicious: 0, pending: 0 },
    suspicious: [],
    quality: { scored: 0, low: 0 },
    lowQuality: [],
    batchFailures: [],
    manifestProblems: result?.manifestProblems ?? [],
    ...(run.failedReason && run.state === 'failed' ? { failedReason: run.failedReason } : {}),
  };
  if (run.state === 'completed' && !result) return { ...status, state: 'active' };
  if (run.state !== 'completed' || !result) return status;

  const concurrency = Math.max(1, options.concurrency ?? 32);
  let pending = 0;
  for (let start = 0; start < result.batches; start += concurrency) {
    const ids = Array.from(
      { length: Math.min(concurrency, result.batches - start) },
      (_, i) => `${jobId}.${start + i}`,
    );
    const jobs = await Promise.all(ids.map((id) => runner.getJob(id)));
    jobs.forEach((job, i) => {
      if (!job || job.state === 'unknown') {
        status.batchesUnknown++;
      } else if (job.state === 'completed' && isBatchResult(job.result)) {
        const r = job.result;
        status.batchesDone++;
        status.done += r.done;
        status.skipped += r.skipped;
        status.failedTotal += r.failed.length;
        for (const f of r.failed) if (status.failed.length < maxFailures) status.failed.push(f);
        // Batches finished before duplicate grouping existed have neither field.
        const older: Partial<BatchResult> = r;
        const joins = older.duplicates ?? [];
        status.duplicatesTotal += joins.length;
        status.duplicatesUnchecked += older.duplicatesUnchecked ?? 0;
        for (const d of joins) if (status.duplicates.length < maxFailures) status.duplicates.push(d);
        // And those finished before caption screening have neither of these.
        if (older.captions) {
          status.captions.screened += older.captions.screened;
          status.captions.suspicious += older.captions.suspicious;
          status.captions.pending += older.captions.pending;
        }
        for (const c of older.suspicious ?? []) if (status.suspicious.length < maxFailures) status.suspicious.push(c);
        // And those finished before quality scoring have neither of these.
        if (older.quality) {
          status.quality.scored += older.quality.scored;
          status.quality.low += older.quality.low;
        }
        for (const q of older.lowQuality ?? []) if (status.lowQuality.length < maxFailures) status.lowQuality.push(q);
      } else if (job.state === 'failed') {
        status.batchesFailed++;
        if (status.batchFailures.length < maxFailures)
          status.batchFailures.push({ id: ids[i]!, reason: job.failedReason ?? 'unknown' });
      } else {
        // Waiting, active, delayed, or completed an instant ago with its result not readable yet (BullMQ reads the
        // job and then its state, so the two can straddle the completion).
        pending++;
        const partial = partialCounts(job.progress);
        status.done += partial.done;
        status.skipped += partial.skipped;
        status.duplicatesTotal += partial.duplicates;
        status.captions.suspicious += partial.suspicious;
        status.quality.low += partial.lowQuality;
      }
    });
  }
  // Unknown batches are not waited for: they were pruned long after finishing, or will never come.
  status.state = pending > 0 ? 'active' : 'completed';
  return status;
}

/** True when `status` is a run-level {@link RunStatus} rather than a plain job status. */
export function isRunStatus(status: RunStatus | JobStatus): status is RunStatus {
  return status.name === 'ingest-run' && 'batches' in status;
}
