/**
 * What the HTTP app is built from ({@link AppDeps}) and what each route module is handed ({@link RouteContext}), in
 * a module of their own so that routes depend on these types and never on the app that mounts them.
 */
import type { AuditRepository, Config, EncoderRole, ImageEncoder, TextEncoder, VectorStore } from '@lookalike/core';
import type { ImagePreparer } from '@lookalike/imaging';
import type { AuditOptions, JobRunner } from '@lookalike/queue';
import type { CalibrationState, DistanceService, DuplicateGroups } from '@lookalike/distance';
import type { DuplicatePolicy } from '@lookalike/ingest';
import type { CaptionScreen } from '@lookalike/screening';
import type { SearchService } from '@lookalike/search';
import type { ReadinessCheck, Services } from '@lookalike/services';
import type { RequestHandler } from 'express';
import type { Logger } from 'pino';
import type { Access } from './auth.js';
import type { ImageFiles } from './image-files.js';
import type { ApiMetrics } from './metrics.js';
import type { ApiRoutes } from './openapi.js';
import type { PublicPaths } from './public-paths.js';

/** A dependency the API needs before it can serve traffic; `/readyz` runs each check. */
export type { ReadinessCheck };

/**
 * Everything the API is built from; `main` builds the real ones from the configuration (`createServices`), tests
 * pass small real ones.
 */
export interface AppDeps {
  config: Config;
  logger: Logger;
  store: VectorStore;
  encoders: Record<EncoderRole, ImageEncoder>;
  text: TextEncoder;
  runner: JobRunner;
  /** Built from the store and encoders when not given. */
  search?: SearchService;
  /** Each tower's distance calibration (the services load them); without it distances come without verdicts. */
  calibrations?: Record<EncoderRole, CalibrationState>;
  /** Built from the search service, the store and the calibrations when not given. */
  distance?: DistanceService;
  /** How ingest groups near-duplicates (the services' policy), shown by `GET /v1/duplicates`; none: it does not. */
  duplicatePolicy?: DuplicatePolicy;
  /** The collection's caption screen (the services'); without it the screening routes answer 409. */
  screening?: CaptionScreen;
  /** Where the built search service decodes uploaded query images (the services' pool); default this thread. */
  preparer?: ImagePreparer;
  /** Finished robustness audits; without it the audit routes answer 503. */
  audits?: AuditRepository;
  /** The configured audit options that `POST /v1/audits` starts from (AUDIT_* variables). */
  auditDefaults?: AuditOptions;
  /** Folder of the web UI (`index.html` and its assets), served at `/`. */
  webRoot?: string;
  /** Checks beyond the built-in ones (store, queue, models). */
  readiness?: readonly ReadinessCheck[];
}

/** The parts of {@link AppDeps} that come straight from the composition root's `Services`. */
export function servicesDeps(
  services: Services,
): Pick<
  AppDeps,
  'store' | 'encoders' | 'text' | 'runner' | 'preparer' | 'calibrations' | 'duplicatePolicy' | 'screening'
> {
  const { store, encoders, text, runner, preparer, calibrations, duplicates, screening } = services;
  return {
    store,
    encoders,
    text,
    runner,
    preparer,
    calibrations,
    ...(duplicates ? { duplicatePolicy: duplicates } : {}),
    ...(screening ? { screening } : {}),
  };
}

/** What the route modules are handed. */
export interface RouteContext {
  routes: ApiRoutes;
  deps: AppDeps;
  search: SearchService;
  distance: DistanceService;
  /** The near-duplicate groups of the store. */
  duplicates: DuplicateGroups;
  metrics: ApiMetrics;
  files: ImageFiles;
  /** Turns server paths into what responses may show. */
  paths: PublicPaths;
  /** Refuses requests whose API key does not grant the access. */
  access: (access: Access) => RequestHandler;
  /** Reads the one image file of a multipart request (field `image`). */
  upload: RequestHandler;
  /** Where uploaded images are saved, named by their sha256. */
  uploadsDir: string;
}
