/**
 * The search page's renderers: pure functions from data (a query, search responses, a payload) and callbacks to DOM
 * nodes. They keep no state and start no request except `apiImage`'s keyed image fetch; the controller in
 * `search.js` decides what to show and where.
 */
import * as api from './api.js';
import { h } from './dom.js';
import { formatBytes, formatScore, plural } from './format.js';

/** @typedef {import('./api.js').EncoderRole} EncoderRole */
/** @typedef {import('./api.js').SearchResponse} SearchResponse */
/** @typedef {import('./api.js').Payload} Payload */
/** @typedef {import('./dom.js').Children} Children */
/** @typedef {{ role: EncoderRole, ranks: Map<string, number> }} OtherTower */
/** @typedef {{ filtered: boolean, onHit: (id: string) => void, onClearFilters: () => void }} ResultActions */

/** @type {Record<EncoderRole, { name: string, detail: string }>} */
export const TOWERS = {
  robust: { name: 'Robust', detail: 'FARE fine-tuned' },
  clean: { name: 'Clean', detail: 'CLIP baseline' },
};
export const EXAMPLES = ['a gear with a crack', 'a bolt with corrosion', 'a glass bottle with a scratch'];
const SHOWN_LABELS = /** @type {const} */ (['part', 'defect', 'color', 'material']);

const queryTitle = () => h('h2', { class: 'panel-title' }, 'Query');

/** The preview panel before any query. */
export function idlePreview() {
  return [queryTitle(), h('p', { class: 'muted' }, 'No query yet.')];
}

/**
 * The results area before any query: how to search, and example descriptions to try.
 * @param {(text: string) => void} onExample
 */
export function idleOutput(onExample) {
  return h(
    'div',
    { class: 'empty' },
    h('h2', {}, 'Find lookalikes in the archive'),
    h(
      'ul',
      { class: 'how' },
      h('li', {}, h('strong', {}, 'By image: '), 'drop a photo anywhere on this page, paste one, or choose a file.'),
      h('li', {}, h('strong', {}, 'By description: '), 'type what the part and its defect look like.'),
      h('li', {}, h('strong', {}, 'From a result: '), 'click any hit to search for its lookalikes.'),
    ),
    h(
      'p',
      { class: 'examples' },
      h('span', { class: 'muted' }, 'Try '),
      EXAMPLES.map((text) =>
        h('button', { type: 'button', class: 'chip-button', onclick: () => onExample(text) }, text),
      ),
    ),
    h(
      'p',
      { class: 'muted small' },
      'Robust is the adversarially fine-tuned tower (FARE); Clean is the CLIP baseline it is measured against. ',
      'Side by side runs both.',
    ),
  );
}

/** @param {string} name */
export function namePreview(name) {
  return [queryTitle(), h('p', { class: 'muted' }, name)];
}

/** @param {string} text */
export function textPreview(text) {
  return [
    queryTitle(),
    h('blockquote', { class: 'text-query-preview' }, text),
    h('p', { class: 'muted small' }, 'Text embedding matched against image embeddings.'),
  ];
}

/** @param {{ name: string, file: File, url: string }} upload */
export function uploadPreview({ name, file, url }) {
  return [
    queryTitle(),
    h('img', { class: 'preview-image', src: url, alt: `Uploaded image ${name}` }),
    h(
      'dl',
      { class: 'facts' },
      fact('File', name),
      fact('Size', `${formatBytes(file.size)}${file.type ? ` · ${file.type}` : ''}`),
    ),
    h('p', { class: 'muted small archive-note' }, 'Uploaded image.'),
  ];
}

/**
 * An archived image as the query: its thumbnail, caption and labels once its payload is known, and links to the
 * original and its JSON.
 * @param {string} id
 * @param {Payload | undefined} payload
 */
export function imagePreview(id, payload) {
  return [
    queryTitle(),
    apiImage(api.imagePath(id, '/thumbnail'), {
      class: 'preview-image',
      alt: payload?.caption ?? `Image ${shortId(id)}`,
    }),
    payload?.caption && h('p', { class: 'preview-caption' }, payload.caption),
    payload && labelChips(payload),
    h(
      'dl',
      { class: 'facts' },
      fact('Id', h('code', { title: id }, shortId(id))),
      payload && fact('Size', `${payload.width}×${payload.height} ${payload.format}`),
      payload?.quality &&
        fact(
          'Quality',
          `${payload.quality.score.toFixed(2)} · ${payload.quality.grade === 'low' ? 'low' : 'ok'} (threshold ${payload.quality.threshold.toFixed(2)})`,
        ),
      payload && fact('Source', h('span', { class: 'source', title: payload.source }, payload.source)),
    ),
    h(
      'p',
      { class: 'links' },
      h('a', { href: api.imagePath(id, '/original'), target: '_blank', rel: 'noopener' }, 'Original'),
      h('a', { href: api.imagePath(id), target: '_blank', rel: 'noopener' }, 'JSON'),
      h('a', { href: `/compare?a=${encodeURIComponent(id)}`, 'data-nav': true }, 'Compare with…'),
    ),
  ];
}

/**
 * The results of one search on one or both towers: a status line, and a grid, or two columns with how far the towers
 * agree and each hit's rank in the other tower.
 * @param {SearchResponse[]} responses
 * @param {ResultActions} actions
 * @returns {{ status: string, content: Children }}
 */
export function resultsView(responses, actions) {
  const [first, second] = responses;
  if (!first) return { status: '', content: null };
  const took = responses.map((r) => `${TOWERS[r.encoder].name.toLowerCase()} ${r.tookMs} ms`).join(' · ');
  const status = `${plural(first.hits.length, 'lookalike')}${second ? ' per tower' : ''} · ${took}`;
  if (!second) return { status, content: hitsOrNone(first, undefined, actions) };
  const firstRanks = ranks(first);
  const shared = second.hits.filter((hit) => firstRanks.has(hit.id)).length;
  const sameTop = first.hits[0] && first.hits[0].id === second.hits[0]?.id;
  return {
    status,
    content: [
      h(
        'p',
        { class: 'agreement' },
        h('strong', {}, `${shared} of ${Math.max(first.hits.length, second.hits.length)}`),
        ' hits shared by both towers · top-1 ',
        h('strong', {}, sameTop ? 'agrees' : 'differs'),
      ),
      h(
        'div',
        { class: 'compare' },
        column(first, { role: second.encoder, ranks: ranks(second) }, actions),
        column(second, { role: first.encoder, ranks: firstRanks }, actions),
      ),
    ],
  };
}

/** @param {SearchResponse} response */
function ranks(response) {
  return new Map(response.hits.map((hit, i) => [hit.id, i + 1]));
}

/**
 * @param {SearchResponse} response
 * @param {OtherTower} other
 * @param {ResultActions} actions
 */
function column(response, other, actions) {
  const tower = TOWERS[response.encoder];
  const headingId = `results-${response.encoder}`;
  return h(
    'section',
    { class: `column column-${response.encoder}`, 'aria-labelledby': headingId, 'data-encoder': response.encoder },
    h(
      'header',
      { class: 'column-head' },
      h('h2', { id: headingId }, tower.name, h('span', { class: 'muted' }, ` · ${tower.detail}`)),
      h('span', { class: 'muted small' }, `${response.tookMs} ms`),
    ),
    hitsOrNone(response, other, actions),
  );
}

/**
 * @param {SearchResponse} response
 * @param {OtherTower | undefined} other
 * @param {ResultActions} actions
 */
function hitsOrNone(response, other, actions) {
  return response.hits.length ? grid(response, other, actions.onHit) : noHits(actions);
}

/**
 * @param {SearchResponse} response
 * @param {OtherTower | undefined} other
 * @param {(id: string) => void} onHit
 */
function grid(response, other, onHit) {
  const otherName = other && TOWERS[other.role].name.toLowerCase();
  return h(
    'ol',
    { class: 'grid', 'data-encoder': response.encoder },
    response.hits.map((hit, i) => {
      const payload = hit.payload;
      const otherRank = other?.ranks.get(hit.id);
      return h(
        'li',
        { class: 'hit' },
        h(
          'button',
          {
            type: 'button',
            class: 'hit-button',
            'data-id': hit.id,
            title: 'Search for lookalikes of this image',
            onclick: () => onHit(hit.id),
          },
          h(
            'span',
            { class: 'thumb' },
            apiImage(hit.thumbnailUrl ?? api.imagePath(hit.id, '/thumbnail'), {
              alt: payload.caption ? '' : `Image ${shortId(hit.id)}`,
              loading: 'lazy',
              decoding: 'async',
            }),
          ),
          h(
            'span',
            { class: 'hit-meta' },
            h('span', { class: 'rank' }, `#${i + 1}`),
            other &&
              h(
                'span',
                { class: otherRank ? 'xref' : 'xref xref-miss', title: `Rank in the ${otherName} tower's results` },
                otherRank ? `${otherName} #${otherRank}` : `not in ${otherName}`,
              ),
            h('span', { class: 'score', title: 'Cosine similarity' }, formatScore(hit.score)),
          ),
          h('span', { class: 'caption' }, payload.caption ?? shortId(hit.id)),
          labelChips(payload),
          qualityBadge(payload),
        ),
      );
    }),
  );
}

/** @param {ResultActions} actions */
function noHits({ filtered, onClearFilters }) {
  return h(
    'div',
    { class: 'empty' },
    h('p', {}, 'No images match.'),
    filtered &&
      h(
        'p',
        {},
        'The filters may be too narrow. ',
        h('button', { type: 'button', class: 'button subtle', onclick: onClearFilters }, 'Clear filters'),
      ),
  );
}

/**
 * @param {string} term
 * @param {Children} value
 */
function fact(term, value) {
  return [h('dt', {}, term), h('dd', {}, value)];
}

/** @param {Payload} payload */
export function labelChips(payload) {
  const labels = payload.labels ?? {};
  return h(
    'span',
    { class: 'labels' },
    SHOWN_LABELS.map((name) => {
      const value = labels[name];
      if (value === null || value === undefined || value === '') return null;
      const text = String(value);
      const defect = name === 'defect' && text !== 'none';
      return h(
        'span',
        { class: `label label-${name}${defect ? ' is-defect' : ''}`, 'data-label': name, title: name },
        text,
      );
    }),
  );
}

/**
 * A badge on a photo the quality model graded low at ingest (blurred, noisy, compressed hard, badly exposed or flat);
 * nothing on the others.
 * @param {Payload} payload
 */
function qualityBadge(payload) {
  const q = payload.quality;
  if (!q || q.grade !== 'low') return null;
  return h(
    'span',
    {
      class: 'quality-low',
      'data-quality': q.score.toFixed(3),
      title: `Quality ${q.score.toFixed(2)}, under the threshold ${q.threshold.toFixed(2)} (${q.model})`,
    },
    'low quality',
  );
}

/**
 * An image served by the API. With an API key set it is fetched with the key and shown from a `blob:` URL, since an
 * `<img>` cannot send an Authorization header; otherwise the browser loads it as usual.
 * @param {string} url
 * @param {Record<string, string>} attrs
 */
export function apiImage(url, attrs) {
  if (!api.getApiKey()) return h('img', { ...attrs, src: url });
  const img = h('img', attrs);
  api.fetchImage(url).then(
    (blob) => {
      const objectUrl = URL.createObjectURL(blob);
      img.addEventListener('load', () => URL.revokeObjectURL(objectUrl), { once: true });
      img.src = objectUrl;
    },
    () => img.classList.add('is-broken'),
  );
  return img;
}

/** @param {string} id */
export function shortId(id) {
  return id.length > 12 ? `${id.slice(0, 12)}…` : id;
}
