import { resolve } from 'node:path';
import type { Command } from 'commander';
import { AppError, parseConfig } from '@lookalike/core';
import { describeTowers, reindexRunId, type ReindexBatchResult, type ReindexRunResult } from '@lookalike/ingest';
import type { ReindexFailure } from '@lookalike/queue';
import { createServices, type Services } from '@lookalike/services';
import { jobProgressBar } from './progress.js';

/** What one `lookalike reindex` did. */
export interface ReindexSummary {
  /** The store already served the configured towers' vectors: nothing was run. */
  upToDate: boolean;
  runId?: string;
  from?: string;
  to: string;
  towers: string;
  /** Whether search now uses the re-embedded collection. */
  ready: boolean;
  done: number;
  copied: number;
  skipped: number;
  failed: number;
  failures: ReindexFailure[];
  /** Collections deleted afterwards (`--prune`). */
  pruned: string[];
  /** Points the store serves now. */
  points: number;
  seconds: number;
}

/** Options of {@link runReindex}. */
export interface ReindexOptions {
  batchSize?: number;
  /** Switch even when some images could not be re-embedded. */
  acceptFailures?: boolean;
  /** Delete the other collections once the re-index completed without failures. */
  prune?: boolean;
}

/**
 * Re-embeds the store with the configured towers when it waits for that (after a model change), through the
 * configured job runner, with a live progress bar on stderr (images, failures, images/s, ETA), and waits for the
 * run to finish: a run already going (started by a worker or the API) is followed rather than started again.
 * Returns at once when the store is up to date.
 */
export async function runReindex(services: Services, options: ReindexOptions = {}): Promise<ReindexSummary> {
  const started = performance.now();
  const { reindex, runner } = services;
  const towers = describeTowers(reindex.plan.towers);
  const to = reindex.plan.target.name;
  const base = {
    to,
    towers,
    done: 0,
    copied: 0,
    skipped: 0,
    failed: 0,
    failures: [] as ReindexFailure[],
    pruned: [] as string[],
  };
  if (!reindex.pending)
    return {
      ...base,
      upToDate: true,
      ready: true,
      points: await services.store.count(),
      seconds: (performance.now() - started) / 1000,
    };
  const source = reindex.plan.source!;
  const { collections } = reindex.generations;
  const already = await collections.points(to);
  const bar = jobProgressBar('reindex', '{value}/{total} images | {failed} failed | {rate} img/s');
  const prefix = `reindex.${to}.`;
  let runId: string | undefined;
  let processed = 0;
  let failedSoFar = 0;
  const mine = (id: string) => (runId ? id.startsWith(`${runId}.`) : id.startsWith(prefix));
  let onCompleted!: (id: string, name: string, result: unknown) => void;
  let onFailed!: (id: string, name: string, reason: string, final: boolean) => void;
  let poll: NodeJS.Timeout | undefined;
  const finished = new Promise<ReindexRunResult & { finished: true }>((resolveRun, reject) => {
    onCompleted = (id, name, result) => {
      if (!mine(id)) return;
      if (name === 'reindex-batch') {
        const r = result as ReindexBatchResult;
        processed += r.done + r.copied + r.failed.length;
        failedSoFar += r.failed.length;
        const secs = (performance.now() - started) / 1000;
        bar.update(Math.min(source.points, already + processed), {
          failed: failedSoFar,
          rate: (processed / Math.max(secs, 1e-3)).toFixed(1),
        });
      } else if (name === 'reindex-run' && (result as ReindexRunResult).finished)
        resolveRun(result as ReindexRunResult & { finished: true });
    };
    onFailed = (id, _name, reason, final) => {
      if (final && mine(id)) reject(new AppError('INTERNAL', `the re-index failed: ${reason}; run it again to resume`));
    };
    // A run in another process's in-process runner sends no events here, and events can be missed: the target's
    // points and record say how far it is and how it ended.
    poll = setInterval(() => {
      void collections.points(to).then((n) => {
        if (runId && already + processed < n)
          bar.update(Math.min(source.points, n), { failed: failedSoFar, rate: '—' });
      }, reject);
      void reindex.generations.read(to).then((record) => {
        const run = record?.reindex;
        if (run?.finishedAt && run.totals && runId && reindexRunId(to, run.run) === runId)
          resolveRun({
            finished: true,
            runId,
            page: run.page,
            ready: record?.state === 'ready',
            to,
            done: run.totals.done,
            copied: run.totals.copied,
            skipped: run.totals.skipped,
            failedTotal: run.totals.failed,
            failed: run.totals.failures,
          });
      }, reject);
    }, 2000);
  });
  runner.events.on('completed', onCompleted);
  runner.events.on('failed', onFailed);
  let result: ReindexRunResult & { finished: true };
  try {
    const run = await reindex.start({
      ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize }),
      ...(options.acceptFailures === undefined ? {} : { acceptFailures: options.acceptFailures }),
    });
    runId = run.runId;
    console.log(
      `${run.attached ? 'Following the re-index' : 'Re-indexing'} ${run.runId}: the ${source.points} images of ` +
        `collection ${source.name} into ${to}, embedded by ${towers}.`,
    );
    bar.start(source.points, Math.min(source.points, already), { failed: 0, rate: '0.0' });
    result = await finished;
  } finally {
    clearInterval(poll);
    bar.stop();
    runner.events.off('completed', onCompleted);
    runner.events.off('failed', onFailed);
  }
  await reindex.refresh();
  let pruned: string[] = [];
  if (options.prune && result.ready && (result.failedTotal === 0 || options.acceptFailures))
    pruned = await reindex.generations.prune(to);
  await services.store.optimize?.();
  return {
    ...base,
    upToDate: false,
    runId: result.runId,
    from: source.name,
    ready: result.ready,
    done: result.done,
    copied: result.copied,
    skipped: result.skipped,
    failed: result.failedTotal,
    failures: result.failed,
    pruned,
    points: await services.store.count(),
    seconds: (performance.now() - started) / 1000,
  };
}

/** Prints what a re-index did, failures with their reasons, and what to do when it could not switch. */
export function printReindexSummary(services: Services, s: ReindexSummary): void {
  if (s.upToDate) {
    console.log(
      `The store is up to date: collection ${s.to} holds the vectors of ${s.towers} (${s.points} images); nothing to re-index.`,
    );
    return;
  }
  const rate = (s.done + s.copied) / Math.max(s.seconds, 1e-3);
  console.log(
    `Re-indexed collection ${s.from} into ${s.to} in ${s.seconds.toFixed(1)} s (${rate.toFixed(1)} images/s): ${s.done} ` +
      `re-embedded from their originals, ${s.copied} copied (already embedded by these towers), ${s.skipped} already ` +
      `there, ${s.failed} failed.`,
  );
  for (const f of s.failures.slice(0, 20)) console.log(`  failed: ${f.location}: ${f.reason} [${f.code}]`);
  if (s.failed > 20) console.log(`  … and ${s.failed - 20} more failures`);
  if (s.ready) {
    console.log(`Search now uses collection ${s.to} (${s.points} images).`);
    if (s.pruned.length) console.log(`Deleted the old collections: ${s.pruned.join(', ')}.`);
    else if (s.from) console.log(`Collection ${s.from} is kept; \`${services.reindex.command} --prune\` deletes it.`);
  } else
    console.log(
      `Search is not switched to collection ${s.to}: ${s.failed} images could not be re-embedded. Put the originals ` +
        `back (or fix INGEST_ROOTS, URL_ALLOWLIST) and run \`${services.reindex.command}\` again (it re-reads only ` +
        `those), or run \`${services.reindex.command} --accept-failures\` to switch without them.`,
    );
}

/**
 * Re-embeds the store first when it was made with other towers (what the demo does on a data folder from before a
 * model change), printing what it does; deletes the old collection when everything was re-embedded. Throws the
 * store's `ReindexRequiredError` when some images could not be.
 */
export async function reindexIfPending(services: Services): Promise<void> {
  if (!services.reindex.pending) return;
  const source = services.reindex.plan.source!;
  console.log(
    `The store was made with other towers than the configured ${describeTowers(services.reindex.plan.towers)}; ` +
      `re-embedding its ${source.points} images first.`,
  );
  const summary = await runReindex(services, { prune: true });
  printReindexSummary(services, summary);
  if (!summary.ready) throw await services.reindex.required();
}

/** Adds `lookalike reindex` to the program; `integer` makes the parser of a whole-number option. */
export function registerReindex(
  program: Command,
  integer: (name: string, min: number, max: number) => (value: string) => number,
): void {
  program
    .command('reindex')
    .description(
      'Re-embed the stored images with the configured towers after a model change (new ids, preprocessing or ' +
        'dimension), into a new collection that search switches to once complete; resumable, skips what is done.',
    )
    .option('--data <dir>', 'data folder of the store to re-index (sets DATA_DIR and INGEST_ROOTS), e.g. data/demo')
    .option('--batch-size <n>', 'images per batch job', integer('--batch-size', 1, 1024))
    .option(
      '--accept-failures',
      'switch to the new collection even if some images could not be re-embedded (the old collection keeps them)',
      false,
    )
    .option('--prune', 'delete the old collections once the re-index has switched without failures', false)
    .action(async (flags: { data?: string; batchSize?: number; acceptFailures: boolean; prune: boolean }) => {
      const env = flags.data
        ? { ...process.env, DATA_DIR: resolve(flags.data), INGEST_ROOTS: resolve(flags.data) }
        : process.env;
      const services = await createServices(parseConfig(env), { stale: 'serve' });
      try {
        const summary = await runReindex(services, flags);
        printReindexSummary(services, summary);
        if (!summary.ready) process.exitCode = 1;
      } finally {
        await services.close();
      }
    });
}
