/**
 * The search page's state and its URL form. Everything a search needs except an uploaded file lives in the query
 * string, so a search can be shared, bookmarked and reached with the back button. Pure: no DOM access.
 */

/** @typedef {'robust' | 'clean' | 'both'} EncoderMode */
/** @typedef {'any' | 'ok' | 'low'} QualityMode */
/** @typedef {'part' | 'defect' | 'color' | 'material'} FilterKey */
/**
 * What is searched for. An upload cannot travel in a URL; its `name` only lets the page say which file it was.
 * @typedef {{ kind: 'id', id: string } | { kind: 'text', text: string } | { kind: 'upload', name: string }} Query
 */
/**
 * @typedef {object} SearchState
 * @property {Query | null} query
 * @property {number} k
 * @property {EncoderMode} encoder
 * @property {Record<FilterKey, string>} filters  Empty string: no filter on that field.
 * @property {QualityMode} quality  Which photos by the quality grade ingest gave them.
 */
/**
 * The API's filter model (the subset the UI builds).
 * @typedef {{ field: string, match: string }} MatchCondition
 * @typedef {{ must?: MatchCondition[] }} Filter
 */

/** @type {readonly EncoderMode[]} */
export const ENCODER_MODES = ['robust', 'clean', 'both'];

/** @type {readonly QualityMode[]} */
export const QUALITY_MODES = ['any', 'ok', 'low'];

/** @type {readonly { key: FilterKey, field: string, label: string }[]} */
export const FILTER_FIELDS = [
  { key: 'part', field: 'labels.part', label: 'Part' },
  { key: 'defect', field: 'labels.defect', label: 'Defect' },
  { key: 'color', field: 'labels.color', label: 'Colour' },
  { key: 'material', field: 'labels.material', label: 'Material' },
];

export const DEFAULT_K = 12;
export const MAX_K = 100;
/** @type {readonly number[]} */
export const K_CHOICES = [4, 8, 12, 16, 24, 32, 48, 64, 100];

/** @returns {Record<FilterKey, string>} */
export function emptyFilters() {
  return { part: '', defect: '', color: '', material: '' };
}

/**
 * Reads the state from a query string such as `location.search`. Unknown or malformed values fall back to the
 * defaults rather than failing, since links are typed and edited by people.
 * @param {string} search
 * @returns {SearchState}
 */
export function parseSearchState(search) {
  const params = new URLSearchParams(search);
  const id = params.get('id')?.trim();
  const text = params.get('q')?.trim();
  const upload = params.get('upload');
  /** @type {Query | null} */
  let query = null;
  if (id) query = { kind: 'id', id };
  else if (text) query = { kind: 'text', text };
  else if (upload !== null) query = { kind: 'upload', name: upload };
  const k = Number(params.get('k'));
  const encoder = params.get('encoder');
  const filters = emptyFilters();
  for (const { key } of FILTER_FIELDS) filters[key] = params.get(key)?.trim() ?? '';
  return {
    query,
    k: Number.isInteger(k) && k >= 1 && k <= MAX_K ? k : DEFAULT_K,
    encoder: ENCODER_MODES.find((mode) => mode === encoder) ?? 'robust',
    filters,
    quality: QUALITY_MODES.find((mode) => mode === params.get('quality')) ?? 'any',
  };
}

/**
 * The query string (with its `?`, or empty) for a state; defaults are left out so links stay short.
 * @param {SearchState} state
 * @returns {string}
 */
export function formatSearchState(state) {
  const params = new URLSearchParams();
  const { query } = state;
  if (query?.kind === 'id') params.set('id', query.id);
  else if (query?.kind === 'text') params.set('q', query.text);
  else if (query?.kind === 'upload') params.set('upload', query.name);
  if (state.k !== DEFAULT_K) params.set('k', String(state.k));
  if (state.encoder !== 'robust') params.set('encoder', state.encoder);
  for (const { key } of FILTER_FIELDS) if (state.filters[key]) params.set(key, state.filters[key]);
  if (state.quality !== 'any') params.set('quality', state.quality);
  const text = params.toString();
  return text ? `?${text}` : '';
}

/**
 * The API filter for the chosen label values: every chosen field must match; `undefined` when nothing is chosen.
 * @param {Record<FilterKey, string>} filters
 * @returns {Filter | undefined}
 */
export function filterOf(filters) {
  const must = FILTER_FIELDS.filter(({ key }) => filters[key]).map(({ key, field }) => ({
    field,
    match: filters[key],
  }));
  return must.length > 0 ? { must } : undefined;
}
