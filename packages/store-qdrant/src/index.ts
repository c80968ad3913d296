export { QdrantVectorStore, type QdrantStoreOptions } from './qdrant-store.js';
export { QdrantCollections } from './collections.js';
export {
  pointId,
  filterJson,
  createCollectionBody,
  payloadIndexBodies,
  upsertBodies,
  queryBody,
  retrieveBody,
  deleteBody,
  countBody,
  scrollBody,
  updateMetadataBody,
  MAX_REQUEST_BYTES,
  MAX_BATCH_POINTS,
  HNSW,
  HNSW_EF,
} from './requests.js';
