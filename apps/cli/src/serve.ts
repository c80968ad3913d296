import { startServer, type RunningServer } from '@lookalike/http';
import { closeOnSignals } from '@lookalike/logging';
import { AppError, type Config } from '@lookalike/core';
import type { Services } from '@lookalike/services';

/** Where to listen; the configuration's HOST and PORT when not given. */
export interface ServeOptions {
  host?: string;
  port?: number;
}

/**
 * Serves the API and the web UI on `services` until SIGINT or SIGTERM, then shuts down in order (stop accepting,
 * drain in-flight requests, close the runner and its workers, the encoders, the store) and exits. With REDIS_URL
 * the services already run a BullMQ worker in this process. Prints `Lookalike is running at <url>` once listening.
 * When the port cannot be bound the services are closed and a clear error is thrown.
 */
export async function serve(services: Services, options: ServeOptions = {}): Promise<RunningServer> {
  const config: Config = services.config;
  const host = options.host ?? config.api.host;
  const port = options.port ?? config.api.port;
  let running: RunningServer;
  try {
    running = await startServer(services, { host, port });
  } catch (error) {
    await services.close();
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL')
      throw new AppError(
        'CONFIG_INVALID',
        `cannot listen on ${host}:${port} (${code}); pick another with --port or PORT, or stop what uses it`,
        { cause: error },
      );
    throw error;
  }
  console.log(`Lookalike is running at ${running.url}`);
  console.log('Press Ctrl-C to stop.');
  closeOnSignals(() => running.close(), {
    info: (message) => console.log(message),
    error: (message, error) => console.error(message, error),
  });
  return running;
}
