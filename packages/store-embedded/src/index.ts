export {
  EmbeddedVectorStore,
  OPTIMIZE_EVERY,
  OPTIMIZE_IDLE_MS,
  type EmbeddedStoreOptions,
  type OptimizeResult,
} from './lance-store.js';
export { whereClause, fieldColumn } from './where.js';
export { VectorIndex, type IndexHit, type IndexedPoint } from './vector-index.js';
export { EmbeddedCollections } from './collections.js';
