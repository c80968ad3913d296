/**
 * One ordered shutdown for every long-running process (the API, the worker, `lookalike serve`): on the first SIGTERM
 * or SIGINT run the process's own `close` — which stops accepting work, lets running work finish, flushes, and
 * closes connections, in that order — then exit 0, or 1 when it fails; a second signal exits at once with 1.
 */
import type { Logger } from 'pino';

/** Where {@link closeOnSignals} reports progress: a logger in a service, the terminal in the CLI. */
export interface ShutdownLog {
  info(message: string): void;
  error(message: string, error: unknown): void;
}

/** A {@link ShutdownLog} on a pino logger. */
export function shutdownLog(logger: Logger): ShutdownLog {
  return { info: (message) => logger.info(message), error: (message, error) => logger.error({ err: error }, message) };
}

/** What {@link closeOnSignals} says. */
export interface ShutdownMessages {
  /** What `close` does, for the line logged when it starts: "finishing in-flight requests, then …". */
  closing: string;
  /** The line logged when `close` succeeded. */
  stopped: string;
  /** The line logged, with the error, when it failed. */
  failed: string;
}

const DEFAULT_MESSAGES: ShutdownMessages = {
  closing: 'finishing in-flight requests, then closing the queue, the models and the store',
  stopped: 'Lookalike stopped.',
  failed: 'Lookalike did not close cleanly.',
};

/** Runs `close` on the first SIGTERM or SIGINT (see the module's header). Returns a function that removes the hooks. */
export function closeOnSignals(
  close: () => Promise<void>,
  log: ShutdownLog,
  messages: ShutdownMessages = DEFAULT_MESSAGES,
): () => void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.info(`Received ${signal} again; exiting without waiting.`);
      process.exit(1);
    }
    stopping = true;
    log.info(`Received ${signal}; ${messages.closing}.`);
    close().then(
      () => {
        log.info(messages.stopped);
        process.exit(0);
      },
      (error: unknown) => {
        log.error(messages.failed, error);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return () => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };
}
