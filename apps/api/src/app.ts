import express, { type Express } from 'express';
import helmet from 'helmet';
import { pinoHttp } from 'pino-http';
import type { Logger } from 'pino';
import { errorHandler, notFoundHandler } from './error-handler.js';

/** A dependency the API needs before it can serve traffic; `/readyz` runs each check. */
export interface ReadinessCheck {
  name: string;
  /** Resolves when the dependency can serve; rejects with the reason otherwise. */
  check: () => Promise<void>;
}

/** Everything the API is built from; `main` builds the real ones, tests pass small real ones. */
export interface AppDeps {
  logger: Logger;
  readiness: readonly ReadinessCheck[];
}

/**
 * Builds the Express application. Routes are added here as the product grows; the app holds no global state, so
 * tests build as many as they like.
 */
export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  app.use(helmet());
  app.use(pinoHttp({ logger: deps.logger, autoLogging: { ignore: (req) => req.url === '/healthz' } }));

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  app.get('/readyz', async (_req, res) => {
    const results = await Promise.all(
      deps.readiness.map(async ({ name, check }) => {
        try {
          await check();
          return { name, ok: true as const };
        } catch (error) {
          return { name, ok: false as const, reason: error instanceof Error ? error.message : String(error) };
        }
      }),
    );
    const ready = results.every((r) => r.ok);
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', checks: results });
  });

  app.use(notFoundHandler);
  app.use(errorHandler);
  return app;
}
