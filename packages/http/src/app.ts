import { join, resolve } from 'node:path';
import { AppError } from '@lookalike/core';
import { DuplicateGroups } from '@lookalike/distance';
import { queryServices, uploadsDir, type QueryDeps } from '@lookalike/services';
import { clientRoutes, contentSecurityPolicy as uiContentSecurityPolicy } from '@lookalike/web';
import express, { type Express } from 'express';
import { ipKeyGenerator, rateLimit } from 'express-rate-limit';
import helmet from 'helmet';
import { callerOf, identifyCaller, requireAccess } from './auth.js';
import type { AppDeps, RouteContext } from './context.js';
import { errorHandler, notFoundHandler } from './error-handler.js';
import { ImageFiles } from './image-files.js';
import { requestLogger } from './logging.js';
import { createMetrics } from './metrics.js';
import { ApiRoutes } from './openapi.js';
import { PublicPaths } from './public-paths.js';
import { mountQueueDashboard } from './queue-dashboard.js';
import { refuseCrossSiteWrites, requireAllowedHost } from './request-guards.js';
import { auditRoutes } from './routes/audits.js';
import { distanceRoutes } from './routes/distance.js';
import { duplicateRoutes } from './routes/duplicates.js';
import { screeningRoutes } from './routes/screening.js';
import { imageRoutes } from './routes/images.js';
import { ingestRoutes } from './routes/ingest.js';
import { searchRoutes } from './routes/search.js';
import { systemRoutes } from './routes/system.js';
import { singleUpload } from './uploads.js';

export type { AppDeps, ReadinessCheck, RouteContext } from './context.js';
export { servicesDeps } from './context.js';

const NO_CALIBRATIONS = "the API was started without the towers' calibrations";

/** The query side's pieces from the app's dependencies (a search service given is reused). */
function queryDeps(deps: AppDeps): QueryDeps {
  return {
    config: deps.config,
    store: deps.store,
    encoders: deps.encoders,
    text: deps.text,
    preparer: deps.preparer,
    search: deps.search,
    calibrations: deps.calibrations ?? {
      robust: { status: 'uncalibrated', reason: NO_CALIBRATIONS },
      clean: { status: 'uncalibrated', reason: NO_CALIBRATIONS },
    },
  };
}

/**
 * Builds the Express application: the search API under `/v1`, operations endpoints (`/healthz`, `/readyz`,
 * `/metrics`, `/openapi.json`) and, when a web root is given, the UI at `/`. The app holds no global state (its
 * metrics registry, rate-limit store and caches are its own), so tests build as many as they like. It listens to
 * the runner's events for the app's life, to drop cached facets when an ingest batch has stored images.
 */
export function createApp(deps: AppDeps): Express {
  const { config } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  app.set('query parser', 'simple');
  // No ETags from res.send: each response body would be hashed (sha1) for conditional GETs no client of this API
  // makes. The UI's static files keep theirs (express.static sets its own); images are served immutable, by id.
  app.set('etag', false);
  app.use(
    helmet({
      // Exactly the policy the UI is written for. Not helmet's defaults: their upgrade-insecure-requests would break
      // every asset of the demo, which is served over plain http on 127.0.0.1.
      contentSecurityPolicy: { useDefaults: false, directives: { ...uiContentSecurityPolicy } },
    }),
  );
  app.use(requestLogger(deps.logger));
  // Before anything answers: a foreign Host is a rebinding page, a cross-site write a page acting for its visitor.
  app.use(requireAllowedHost(config.api.allowedHosts), refuseCrossSiteWrites());

  const metrics = createMetrics(deps.runner);
  app.use(metrics.middleware);

  const query = queryServices(queryDeps(deps));
  const search = query.search;
  const distance = deps.distance ?? query.distance;
  deps.runner.events.on('completed', (_id, name, result) => {
    if (name === 'ingest-batch' && (result as { done?: number } | undefined)?.done !== 0) search.invalidate();
  });

  const uploads = resolve(uploadsDir(config));
  const ctx: RouteContext = {
    routes: new ApiRoutes(app),
    deps,
    search,
    distance,
    duplicates: new DuplicateGroups(deps.store),
    metrics,
    files: new ImageFiles({
      store: deps.store,
      roots: [...config.ingest.roots, uploads],
      thumbsDir: resolve(join(config.paths.data, 'thumbs')),
      maxBytes: config.images.maxBytes,
      maxPixels: config.images.maxPixels,
    }),
    paths: new PublicPaths({ roots: config.ingest.roots, uploadsDir: uploads, dataDir: config.paths.data }),
    access: (access) => requireAccess(access, config.api.keys),
    upload: singleUpload('image', config.api.maxUploadBytes),
    uploadsDir: uploads,
  };

  // Identifying never refuses; routes refuse by their access (`/metrics` needs a read key where read keys exist).
  app.use(identifyCaller(config.api.keys));
  systemRoutes(ctx);
  app.use(
    '/v1',
    rateLimit({
      windowMs: 60_000,
      limit: config.api.rateLimitPerMinute,
      standardHeaders: 'draft-8',
      legacyHeaders: false,
      // A verified key is its own bucket; everyone else (bad keys included) is counted by address.
      keyGenerator: (req, res) => {
        const { keyId } = callerOf(res);
        return keyId ? `key:${keyId}` : `ip:${ipKeyGenerator(req.ip ?? 'unknown')}`;
      },
      handler: (_req, _res, next) => {
        next(
          new AppError(
            'RATE_LIMITED',
            `Too many requests: the limit is ${config.api.rateLimitPerMinute} per minute; retry after the ` +
              'Retry-After header says.',
            { details: { limitPerMinute: config.api.rateLimitPerMinute } },
          ),
        );
      },
    }),
    express.json({ limit: '256kb' }),
  );
  searchRoutes(ctx);
  distanceRoutes(ctx);
  duplicateRoutes(ctx);
  screeningRoutes(ctx);
  imageRoutes(ctx);
  ingestRoutes(ctx);
  auditRoutes(ctx);
  mountQueueDashboard(app, deps.runner, config.api.keys);

  if (deps.webRoot) {
    const index = join(deps.webRoot, 'index.html');
    app.use(express.static(deps.webRoot, { index: false, fallthrough: true }));
    // The UI's own routes all load the one page, which picks its view from the path.
    app.get([...clientRoutes], (_req, res, next) => {
      res.sendFile(index, (error) => {
        if (error) next(error);
      });
    });
  }

  app.use(notFoundHandler);
  app.use(errorHandler);
  return app;
}
