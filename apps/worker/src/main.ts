#!/usr/bin/env node
/**
 * The worker process: reads the configuration once, requires REDIS_URL, runs the ingest and audit workers (built
 * by packages/services), answers /healthz, /readyz and /metrics on WORKER_HEALTH_HOST:WORKER_HEALTH_PORT and installs
 * the nightly audit schedule (AUDIT_CRON; AUDIT_SCHEDULE=false leaves it out), until SIGTERM or SIGINT, when it stops
 * answering health checks, stops taking jobs, lets running ones finish and closes its connections, in that order.
 * It logs with pino (JSON lines on stdout, at LOG_LEVEL), one child logger per job.
 */
import { ConfigError, loadConfig } from '@lookalike/core';
import { closeOnSignals, createLogger, redactCredentials, shutdownLog } from '@lookalike/logging';
import { createServices, startWorkerHealth } from '@lookalike/services';

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  if (!config.redis) {
    console.error(
      'lookalike-worker: REDIS_URL is not set; workers take jobs from Redis (the CLI and API run jobs in-process without it)',
    );
    process.exitCode = 2;
    return;
  }
  const logger = createLogger(config.logLevel);
  // A store made with other towers: start its re-index (or find the running one); this worker takes part in it.
  const services = await createServices(config, {
    jobEvents: false,
    stale: 'reindex',
    // Workers search only for audits: the embedded store's vectors are loaded into memory by the first one.
    searchIndex: 'lazy',
    log: (line) => logger.info(line),
    logger,
    onStoreOptimize: (outcome) =>
      'error' in outcome
        ? logger.warn({ err: outcome.error }, 'Store optimize failed; the next writes try again.')
        : logger.info(
            { optimize: outcome.result },
            `Store optimized in ${(outcome.result.ms / 1000).toFixed(1)} s: ${outcome.result.fragments.before} → ` +
              `${outcome.result.fragments.after} data files${outcome.result.indexed ? ', ANN indexes up to date' : ''}.`,
          ),
  });
  logger.info(
    `Worker ready: ingest and audit jobs from ${redactCredentials(config.redis.url)} into the ${config.store.kind} store ` +
      `with models ${services.encoders.robust.info.id} and ${services.encoders.clean.info.id}.`,
  );
  const health = await startWorkerHealth(services, {
    host: config.worker.healthHost,
    port: config.worker.healthPort,
  }).catch(async (error: unknown) => {
    await services.close();
    throw new Error(
      `cannot answer health checks on ${config.worker.healthHost}:${config.worker.healthPort} (${
        error instanceof Error ? error.message : String(error)
      }); set WORKER_HEALTH_PORT to a free port`,
    );
  });
  logger.info(`Health checks and metrics at ${health.url}/readyz and ${health.url}/metrics.`);
  if (config.audit.schedule) {
    await services.scheduleAudits();
    logger.info(
      `Nightly audit scheduled with cron "${config.audit.cron}" (${services.auditDefaults.queries} queries).`,
    );
  }
  closeOnSignals(
    async () => {
      await health.close();
      await services.close();
    },
    shutdownLog(logger),
    {
      closing: 'no more health checks or new jobs; finishing running jobs, then closing the connections',
      stopped: 'Worker stopped.',
      failed: 'Worker did not close cleanly.',
    },
  );
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    console.error(`lookalike-worker: ${error.message}`);
    process.exitCode = 2;
  } else {
    console.error(`lookalike-worker: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  }
});
