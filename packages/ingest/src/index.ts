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
