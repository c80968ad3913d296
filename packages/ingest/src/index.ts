export { fetchImage, refusedAddress, type FetchLimits } from './fetch-url.js';
export {
  assertPatternConfined,
  listDirectory,
  readManifest,
  type ManifestEntry,
  manifestFormat,
  resolveInsideRoots,
  type ResolveOptions,
  DEFAULT_INCLUDE,
  type ManifestProblem,
} from './sources.js';
export {
  createIngestHandlers,
  type IngestDeps,
  type IngestFailure,
  type IngestFailureCode,
  type BatchResult,
} from './processor.js';
export type { SuspiciousCaption } from './caption-screening.js';
export type { LowQualityImage } from './quality.js';
export { groupDuplicates, type DuplicateJoin, type DuplicatePolicy, type Grouping } from './duplicates.js';
export { ingestRunHandler, sourceEntries, type RunResult, type SourceDeps } from './run.js';
export { readLocal, readOriginal, type OriginalLimits } from './originals.js';
export {
  describeTowers,
  embeddedBy,
  provenanceOf,
  sameTowers,
  towersFingerprint,
  towersOf,
  type TowerSpec,
  type Towers,
} from './towers.js';
export {
  Generations,
  RECORD_KEY,
  reindexPageJobId,
  reindexRunId,
  type Generation,
  type GenerationPlan,
  type GenerationRecord,
  type ReindexRecord,
  type ReindexStatus,
  type StoreCollections,
} from './generations.js';
export {
  createReindexHandlers,
  type ReindexBatchResult,
  type ReindexDeps,
  type ReindexFailureCode,
  type ReindexRunResult,
} from './reindex.js';
export { ReindexRequiredError } from './errors/reindex-required-error.js';
export { getRunStatus, isRunStatus, type RunStatus, type RunStatusOptions } from './run-status.js';
