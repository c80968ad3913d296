export { fetchImage, refusedAddress, type FetchLimits } from './fetch-url.js';
export {
  listDirectory,
  parseManifest,
  manifestFormat,
  resolveInsideRoots,
  DEFAULT_INCLUDE,
  type ManifestProblem,
} from './sources.js';
export {
  createIngestHandlers,
  type IngestDeps,
  type IngestFailure,
  type BatchResult,
  type RunResult,
} from './processor.js';
export { getRunStatus, isRunStatus, type RunStatus, type RunStatusOptions } from './run-status.js';
export {
  PreprocessPool,
  MainThreadPreparer,
  defaultPreprocessThreads,
  isPrepareFailure,
  type ImagePreparer,
  type PreprocessPoolOptions,
  type PixelSpec,
  type PreparedImage,
  type PrepareFailure,
  type PrepareOutcome,
} from './preprocess-pool.js';
