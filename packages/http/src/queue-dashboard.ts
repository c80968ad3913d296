/**
 * The queue dashboard for operators (bull-board at {@link QUEUE_DASHBOARD_PATH}): every queue, its jobs, the failed
 * ones with their reasons and stack traces, and retry or remove. It changes jobs, so it is never open: it needs a
 * write API key, which a browser sends as the password of HTTP Basic auth (any user name), and it is there only
 * where there are queues to show (`REDIS_URL` set: jobs on BullMQ) and a write key configured to guard it.
 */
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { AppError, type Config } from '@lookalike/core';
import { BullJobRunner, QUEUE_NAMES, type JobRunner, type QueueKey } from '@lookalike/queue';
import type { Express } from 'express';
import { requireAccess } from './auth.js';

/** Where the dashboard is served. */
export const QUEUE_DASHBOARD_PATH = '/admin/queues';

/**
 * The dashboard's page runs bull-board's own bundle: scripts from this server only, as everywhere, but the inline
 * styles of its React components need `'unsafe-inline'` for styles (and nothing else).
 */
const DASHBOARD_CSP = [
  "default-src 'self'",
  "base-uri 'self'",
  "script-src 'self'",
  "script-src-attr 'none'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "form-action 'self'",
  "frame-ancestors 'self'",
].join('; ');

/** Mounts the dashboard on `app` (or, where it cannot be offered, a typed answer that says why). */
export function mountQueueDashboard(app: Express, runner: JobRunner, keys: Config['api']['keys']): void {
  if (!(runner instanceof BullJobRunner)) {
    app.use(QUEUE_DASHBOARD_PATH, (_req, _res, next) =>
      next(
        new AppError('NOT_FOUND', 'There are no queues to show: REDIS_URL is not set, so jobs run in this process.'),
      ),
    );
    return;
  }
  if (!keys.some((k) => k.scope === 'write')) {
    app.use(QUEUE_DASHBOARD_PATH, (_req, _res, next) =>
      next(
        new AppError(
          'FORBIDDEN',
          'The queue dashboard retries and removes jobs, so it needs a write API key: configure one in API_KEYS.',
        ),
      ),
    );
    return;
  }
  const adapter = new ExpressAdapter();
  adapter.setBasePath(QUEUE_DASHBOARD_PATH);
  createBullBoard({
    queues: (Object.keys(QUEUE_NAMES) as QueueKey[]).map((key) => new BullMQAdapter(runner.queue(key))),
    serverAdapter: adapter,
    options: { uiConfig: { boardTitle: 'Lookalike queues' } },
  });
  app.use(
    QUEUE_DASHBOARD_PATH,
    requireAccess('write', keys, 'basic'),
    (_req, res, next) => {
      res.setHeader('Content-Security-Policy', DASHBOARD_CSP);
      next();
    },
    adapter.getRouter() as Express,
  );
}
