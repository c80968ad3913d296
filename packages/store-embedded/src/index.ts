export {
  EmbeddedVectorStore,
  INDEX_MIN_ROWS,
  OPTIMIZE_EVERY,
  OPTIMIZE_IDLE_MS,
  type EmbeddedStoreOptions,
  type OptimizeResult,
} from './lance-store.js';
export { whereClause, fieldColumn } from './where.js';
