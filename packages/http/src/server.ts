import { createServer, type Server } from 'node:http';
import type { AuditRepository } from '@lookalike/core';
import type { Services } from '@lookalike/services';
import { webRoot as uiRoot } from '@lookalike/web';
import type { Logger } from 'pino';
import { createApp, servicesDeps } from './app.js';
import { createLogger } from '@lookalike/logging';

/** Options of {@link startServer}. */
export interface ServerOptions {
  /** Defaults to pino at the configuration's LOG_LEVEL, redacting credentials ({@link createLogger}). */
  logger?: Logger;
  /** Defaults to the configuration's HOST and PORT (`0` picks a free port). */
  host?: string;
  port?: number;
  /** Finished audits; by default the services' store under DATA_DIR/audits. */
  audits?: AuditRepository;
  /** The web UI folder; by default the one `@lookalike/web` ships; `null` serves the API only. */
  webRoot?: string | null;
  /** How long in-flight requests may take to finish at shutdown before their connections are cut. Default 10 s. */
  drainMs?: number;
}

/** A listening API server. */
export interface RunningServer {
  server: Server;
  logger: Logger;
  /** `http://host:port/`, with the port actually bound. */
  url: string;
  /**
   * Stops in a fixed order: stop accepting connections, let in-flight requests finish (up to `drainMs`, then cut
   * them), then close the services (the runner and its workers, finishing running jobs; the encoders; the store).
   * Calling it again returns the same promise.
   */
  close(): Promise<void>;
}

/** Builds the app on `services`, listens, and returns a handle that shuts everything down in order. */
export async function startServer(services: Services, options: ServerOptions): Promise<RunningServer> {
  const { config } = services;
  const logger = options.logger ?? createLogger(config.logLevel);
  const webRoot = options.webRoot === null ? undefined : (options.webRoot ?? uiRoot);
  const app = createApp({
    config,
    logger,
    ...servicesDeps(services),
    audits: options.audits ?? services.audits,
    auditDefaults: services.auditDefaults,
    ...(webRoot ? { webRoot } : {}),
  });
  const server = createServer(app);
  const host = options.host ?? config.api.host;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? config.api.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : (options.port ?? config.api.port);
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/`;

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      const drained = new Promise<void>((resolve) => {
        server.close(() => resolve());
      });
      server.closeIdleConnections();
      const timer = setTimeout(() => {
        logger.warn(`In-flight requests did not finish within ${options.drainMs ?? 10_000} ms; closing them.`);
        server.closeAllConnections();
      }, options.drainMs ?? 10_000);
      await drained;
      clearTimeout(timer);
      await services.close();
    })());
  return { server, logger, url, close };
}
