/**
 * The schemas of the API: every zod schema that validates a request, and the schemas of the responses, one module
 * per area under `schemas/`. Routes parse with these, and `/openapi.json` is generated from the same objects, so the
 * document cannot drift from what the server accepts.
 */
export * from './schemas/common.js';
export * from './schemas/search.js';
export * from './schemas/images.js';
export * from './schemas/distance.js';
export * from './schemas/ingest.js';
export * from './schemas/duplicates.js';
export * from './schemas/screening.js';
export * from './schemas/audits.js';
export * from './schemas/operations.js';
