/**
 * `@lookalike/search`: query-side search. Embeds an uploaded image, a stored image's vector or a text with the
 * chosen tower and searches the vector store; also lists the label facets the UI filters on.
 */
export {
  SearchService,
  POOL_MIN_PIXELS,
  FACET_FIELDS,
  K_RANGE,
  QUALITY_FILTERS,
  withQuality,
  type FacetField,
  type QualityFilter,
  type SearchDeps,
  type SearchOptions,
  type SearchResult,
} from './search-service.js';
