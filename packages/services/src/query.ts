import type { Config, EncoderRole, ImageEncoder, TextEncoder, VectorStore } from '@lookalike/core';
import { DistanceService, type CalibrationState } from '@lookalike/distance';
import { decodeLimitsOf, type ImagePreparer } from '@lookalike/imaging';
import { SearchService } from '@lookalike/search';

/** What the query side is built from: the configuration, the store and towers, and optionally their pieces. */
export interface QueryDeps {
  config: Config;
  store: VectorStore;
  encoders: Record<EncoderRole, ImageEncoder>;
  text: TextEncoder;
  /** Where uploaded query images are decoded (the services' pool); default this thread. */
  preparer?: ImagePreparer | undefined;
  /** Each tower's distance calibration; without it distances come without verdicts, for the reason given. */
  calibrations: Record<EncoderRole, CalibrationState>;
  /** A search service to reuse instead of building one. */
  search?: SearchService | undefined;
}

/**
 * The search and distance services of a configuration, as the API and the CLI answer queries with them: uploads
 * decoded under the configured intake limits and preprocessed as ingest does, text search leaving out suspicious
 * captions (the services' collections index `screening.verdict` whether or not screening is on), distances judged
 * with each tower's calibration.
 */
export function queryServices(d: QueryDeps): { search: SearchService; distance: DistanceService } {
  const search =
    d.search ??
    new SearchService({
      store: d.store,
      encoders: d.encoders,
      text: d.text,
      screened: true,
      decode: decodeLimitsOf(d.config.images),
      preprocess: d.config.images.preprocess,
      ...(d.preparer ? { preparer: d.preparer } : {}),
    });
  const distance = new DistanceService({
    store: d.store,
    embedUpload: (bytes, roles) => search.embedUpload(bytes, roles),
    models: { robust: d.encoders.robust.info.id, clean: d.encoders.clean.info.id },
    calibrations: d.calibrations,
  });
  return { search, distance };
}
