#!/usr/bin/env node
/**
 * The API process: reads the configuration once, builds the store, the towers and the job runner (BullMQ producers
 * only when REDIS_URL is set: the worker processes run the jobs), serves the API and the web UI, and on SIGTERM or SIGINT
 * stops accepting, drains in-flight requests, then closes the runner, the encoders and the store, in that order.
 */
import { ConfigError, loadConfig } from '@lookalike/core';
import { closeOnSignals, createLogger, shutdownLog } from '@lookalike/logging';
import { createServices } from '@lookalike/services';
import { startServer } from '@lookalike/http';

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const logger = createLogger(config.logLevel);
  // With Redis, jobs run in the worker processes: attacks and embedding would otherwise share this process's cores
  // and event loop with the requests. Without Redis the in-process runner has to run them here.
  // A store made with other towers is re-indexed in the background (by the workers with Redis); vector search
  // answers a ReindexRequiredError with its progress until it completes, and everything else keeps working.
  const services = await createServices(config, {
    workers: config.redis ? [] : undefined,
    stale: 'reindex',
    log: (line) => logger.info(line),
    logger,
    onStoreOptimize: (outcome) =>
      'error' in outcome
        ? logger.warn({ err: outcome.error }, 'store optimize failed; the next writes try again')
        : logger.info({ optimize: outcome.result }, 'store optimized'),
  });
  const running = await startServer(services, { logger });
  logger.info(
    `Lookalike API listening on ${running.url} (${config.store.kind} store, ` +
      `${config.redis ? 'BullMQ on Redis' : 'in-process jobs'}, models ${services.encoders.robust.info.id} and ` +
      `${services.encoders.clean.info.id}).`,
  );
  closeOnSignals(() => running.close(), shutdownLog(logger));
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    console.error(`lookalike-api: ${error.message}`);
    process.exitCode = 2;
  } else {
    console.error(error);
    process.exitCode = 1;
  }
});
