export { EmbeddedVectorStore, INDEX_MIN_ROWS } from './lance-store.js';
export { whereClause, fieldColumn } from './where.js';
