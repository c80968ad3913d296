export { fetchImage, refusedAddress, type FetchLimits } from './fetch-url.js';
export {
  assertPatternConfined,
  listDirectory,
  parseManifest,
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
  type BatchResult,
  type RunResult,
} from './processor.js';
export { getRunStatus, isRunStatus, type RunStatus, type RunStatusOptions } from './run-status.js';
