import cliProgress from 'cli-progress';

/** A progress bar on stderr that stays quiet when stderr is not a terminal (logs, CI), where it prints a summary. */
export function progressBar(label: string): { update(done: number, total: number): void; stop(): void } {
  if (!process.stderr.isTTY) {
    let last = 0;
    return {
      update(done, total) {
        const pct = Math.floor((100 * done) / total);
        if (pct >= last + 10 || done === total) {
          last = pct;
          process.stderr.write(`${label}: ${done}/${total} (${pct}%)\n`);
        }
      },
      stop() {},
    };
  }
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {percentage}% | {value}/{total} | {eta_formatted} left`, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(done, total) {
      if (!started) {
        bar.start(total, 0);
        started = true;
      }
      bar.update(done);
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

/**
 * The live bar of a job the CLI waits on (ingest, audit, re-index): `<label> [bar] pct | <columns> | ETA`, on stderr.
 * `columns` names cli-progress payload fields (`{value}/{total} images | {failed} failed`); where stderr is not a
 * terminal the bar prints one plain line every `quietMs` instead of redrawing.
 */
export function jobProgressBar(label: string, columns: string, quietMs = 5000): cliProgress.SingleBar {
  const tty = process.stderr.isTTY;
  return new cliProgress.SingleBar(
    {
      format: `${label} [{bar}] {percentage}% | ${columns} | ETA {eta_formatted}`,
      stream: process.stderr,
      noTTYOutput: !tty,
      notTTYSchedule: quietMs,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
}
