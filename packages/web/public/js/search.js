/**
 * The search page: query by uploaded, dropped or pasted image, by text, or by clicking a hit; filter by labels;
 * compare the robust and the clean tower side by side. The query string holds the state (see `state.js`).
 */
import * as api from './api.js';
import { h, replace } from './dom.js';
import { formatBytes, formatScore, plural } from './format.js';
import {
  ENCODER_MODES,
  FILTER_FIELDS,
  K_CHOICES,
  emptyFilters,
  filterOf,
  formatSearchState,
  parseSearchState,
} from './state.js';

/** @typedef {import('./app.js').Page} Page */
/** @typedef {import('./state.js').SearchState} SearchState */
/** @typedef {import('./state.js').Query} Query */
/** @typedef {import('./state.js').EncoderMode} EncoderMode */
/** @typedef {import('./api.js').EncoderRole} EncoderRole */
/** @typedef {import('./api.js').SearchResponse} SearchResponse */
/** @typedef {import('./api.js').Payload} Payload */

/** @type {Record<EncoderRole, { name: string, detail: string }>} */
const TOWERS = {
  robust: { name: 'Robust', detail: 'FARE fine-tuned' },
  clean: { name: 'Clean', detail: 'CLIP baseline' },
};
/** @type {Record<EncoderMode, string>} */
const MODE_LABELS = { robust: 'Robust', clean: 'Clean', both: 'Side by side' };
const EXAMPLES = ['a gear with a crack', 'a bolt with corrosion', 'a glass bottle with a scratch'];
const SHOWN_LABELS = /** @type {const} */ (['part', 'defect', 'color', 'material']);

/**
 * Renders the search page into `main` and runs the search in the URL, if any.
 * @param {HTMLElement} main
 * @returns {Page}
 */
export function mountSearch(main) {
  const lifetime = new AbortController();
  /** @type {AbortController | undefined} */
  let inflight;
  /** The last file searched with; files cannot live in the URL, so going back to an upload finds it here. */
  /** @type {{ name: string, file: File, url: string } | undefined} */
  let upload;
  /** Payloads seen in results, so the preview of a clicked hit needs no extra request. */
  /** @type {Map<string, Payload>} */
  const known = new Map();
  let state = parseSearchState(location.search);

  // Controls.
  const fileInput = h('input', {
    type: 'file',
    id: 'image-file',
    name: 'image',
    accept: 'image/*',
    class: 'sr-only',
    onchange: () => {
      const file = fileInput.files?.[0];
      fileInput.value = '';
      if (file) useFile(file);
    },
  });
  const dropzone = h(
    'label',
    { class: 'dropzone' },
    fileInput,
    h('span', { class: 'dropzone-icon', 'aria-hidden': 'true' }, '⤒'),
    h(
      'span',
      { class: 'dropzone-text' },
      h('span', { class: 'dropzone-title' }, 'Drop an image or choose a file'),
      h('span', { class: 'dropzone-hint' }, 'PNG, JPEG or WebP · paste with Ctrl+V'),
    ),
  );
  const textInput = h('input', {
    type: 'search',
    id: 'text-query',
    name: 'q',
    placeholder: 'Describe it, e.g. a gear with a crack',
    autocomplete: 'off',
    enterkeyhint: 'search',
    'aria-keyshortcuts': '/',
  });
  const textForm = h(
    'form',
    { class: 'text-search', role: 'search', onsubmit: onTextSubmit },
    h('label', { for: 'text-query', class: 'field-label' }, 'Search by description'),
    h('div', { class: 'input-group' }, textInput, h('button', { type: 'submit', class: 'button primary' }, 'Search')),
  );

  const encoderInputs = ENCODER_MODES.map((mode) =>
    h('input', { type: 'radio', name: 'encoder', value: mode, onchange: () => change({ encoder: mode }) }),
  );
  const encoderField = h(
    'fieldset',
    { class: 'field segmented' },
    h('legend', { class: 'field-label' }, 'Encoder'),
    h(
      'div',
      { class: 'segments' },
      ENCODER_MODES.map((mode, i) => h('label', {}, encoderInputs[i], h('span', {}, MODE_LABELS[mode]))),
    ),
  );
  const kSelect = h('select', {
    id: 'k',
    name: 'k',
    onchange: () => change({ k: Number(kSelect.value) }),
  });
  const filterSelects = FILTER_FIELDS.map(({ key }) =>
    h(
      'select',
      {
        id: `filter-${key}`,
        name: key,
        onchange: (/** @type {Event} */ event) => {
          const select = /** @type {HTMLSelectElement} */ (event.currentTarget);
          change({ filters: { ...state.filters, [key]: select.value } });
        },
      },
      h('option', { value: '' }, 'Any'),
    ),
  );
  const clearFilters = h(
    'button',
    { type: 'button', class: 'button subtle', onclick: () => change({ filters: emptyFilters() }) },
    'Clear filters',
  );
  const facetNote = h('p', { class: 'facet-note', hidden: true });

  // Output.
  const preview = h('aside', { class: 'preview', 'aria-label': 'Query' });
  const status = h('p', { class: 'status', role: 'status' });
  const alert = h('div', { class: 'alert', role: 'alert', hidden: true });
  const output = h('div', { class: 'output' });
  const results = h(
    'section',
    { class: 'results', 'aria-label': 'Results', tabindex: '-1' },
    h('div', { class: 'progress', 'aria-hidden': 'true' }),
    status,
    alert,
    output,
  );

  replace(
    main,
    h(
      'div',
      { class: 'page search-page' },
      h('h1', { class: 'sr-only' }, 'Search the archive'),
      h(
        'section',
        { class: 'query-bar', 'aria-label': 'Query and filters' },
        h('div', { class: 'query-inputs' }, dropzone, textForm),
        h(
          'div',
          { class: 'controls' },
          encoderField,
          h('div', { class: 'field' }, h('label', { for: 'k', class: 'field-label' }, 'Results'), kSelect),
          FILTER_FIELDS.map(({ key, label }, i) =>
            h(
              'div',
              { class: 'field' },
              h('label', { for: `filter-${key}`, class: 'field-label' }, label),
              filterSelects[i],
            ),
          ),
          h('div', { class: 'field field-end' }, clearFilters),
        ),
        facetNote,
      ),
      h('div', { class: 'search-body' }, preview, results),
    ),
  );

  // Drop anywhere on the page, paste anywhere, and `/` to type a description.
  const { signal } = lifetime;
  let dragDepth = 0;
  document.addEventListener(
    'dragenter',
    (event) => {
      if (!hasFiles(event)) return;
      dragDepth += 1;
      dropzone.classList.add('is-dragging');
    },
    { signal },
  );
  document.addEventListener(
    'dragleave',
    (event) => {
      if (!hasFiles(event)) return;
      dragDepth = Math.max(0, dragDepth - 1);
      if (dragDepth === 0) dropzone.classList.remove('is-dragging');
    },
    { signal },
  );
  document.addEventListener(
    'dragover',
    (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      if (event.dataTransfer) event.dataTransfer.dropEffect = 'copy';
    },
    { signal },
  );
  document.addEventListener(
    'drop',
    (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      dragDepth = 0;
      dropzone.classList.remove('is-dragging');
      const file = event.dataTransfer?.files[0];
      if (file) useFile(file);
    },
    { signal },
  );
  document.addEventListener(
    'paste',
    (event) => {
      const file = [...(event.clipboardData?.files ?? [])].find((f) => f.type.startsWith('image/'));
      if (!file) return;
      event.preventDefault();
      useFile(file);
    },
    { signal },
  );
  document.addEventListener(
    'keydown',
    (event) => {
      if (event.key !== '/' || event.ctrlKey || event.metaKey || event.altKey || isEditable(event.target)) return;
      event.preventDefault();
      textInput.focus();
      textInput.select();
    },
    { signal },
  );

  let facetsLoaded = false;
  loadFacets();
  syncControls();
  void run();

  return {
    title: 'Search',
    update() {
      state = parseSearchState(location.search);
      if (!facetsLoaded) loadFacets();
      syncControls();
      void run();
    },
    destroy() {
      lifetime.abort();
      inflight?.abort();
      if (upload) URL.revokeObjectURL(upload.url);
    },
  };

  // ---------------------------------------------------------------------------------------------------------------

  /**
   * Moves to a new state: a new query is a new history entry, a changed option replaces the current one.
   * @param {SearchState} next
   * @param {'push' | 'replace'} how
   */
  function navigate(next, how) {
    const url = `/${formatSearchState(next)}`;
    if (how === 'push' && url !== location.pathname + location.search) history.pushState(null, '', url);
    else history.replaceState(null, '', url);
    state = next;
    syncControls();
    void run();
  }

  /** @param {Partial<SearchState>} patch */
  function change(patch) {
    navigate({ ...state, ...patch }, 'replace');
  }

  /** @param {Query} query */
  function searchFor(query) {
    navigate({ ...state, query }, 'push');
  }

  /** @param {SubmitEvent} event */
  function onTextSubmit(event) {
    event.preventDefault();
    const text = textInput.value.trim();
    if (!text) {
      showAlert({ title: 'Nothing to search for', detail: 'Type a description, or drop an image.' });
      textInput.focus();
      return;
    }
    searchFor({ kind: 'text', text });
  }

  /** @param {File} file */
  function useFile(file) {
    if (file.type && !file.type.startsWith('image/')) {
      showAlert({
        title: 'Not an image',
        detail: `${file.name} is ${file.type}. Choose a PNG, JPEG or WebP image.`,
      });
      return;
    }
    if (upload) URL.revokeObjectURL(upload.url);
    const name = file.name || 'pasted image';
    upload = { name, file, url: URL.createObjectURL(file) };
    searchFor({ kind: 'upload', name });
  }

  /** @param {string} id */
  function searchFromHit(id) {
    searchFor({ kind: 'id', id });
    window.scrollTo({ top: 0 });
    results.focus({ preventScroll: true });
  }

  function syncControls() {
    encoderInputs.forEach((input, i) => (input.checked = ENCODER_MODES[i] === state.encoder));
    const ks = K_CHOICES.includes(state.k) ? K_CHOICES : [...K_CHOICES, state.k].sort((a, b) => a - b);
    replace(
      kSelect,
      ks.map((k) => h('option', { value: k }, String(k))),
    );
    kSelect.value = String(state.k);
    FILTER_FIELDS.forEach(({ key }, i) => {
      const select = /** @type {HTMLSelectElement} */ (filterSelects[i]);
      const value = state.filters[key];
      if (value && ![...select.options].some((o) => o.value === value)) select.append(h('option', { value }, value));
      select.value = value;
      select.classList.toggle('is-set', Boolean(value));
    });
    clearFilters.disabled = !filterOf(state.filters);
    textInput.value = state.query?.kind === 'text' ? state.query.text : '';
  }

  function loadFacets() {
    api.getFacets(signal).then(
      (facets) => {
        facetsLoaded = true;
        facetNote.hidden = true;
        fillFacets(facets);
      },
      (/** @type {unknown} */ error) => {
        if (signal.aborted) return;
        facetNote.hidden = false;
        facetNote.textContent = `Filters unavailable (${api.describeError(error).title.toLowerCase()}).`;
      },
    );
  }

  /** @param {import('./api.js').Facets} facets */
  function fillFacets(facets) {
    FILTER_FIELDS.forEach(({ field }, i) => {
      const select = /** @type {HTMLSelectElement} */ (filterSelects[i]);
      const values = facets.fields[field] ?? [];
      const present = new Set([...select.options].map((o) => o.value));
      select.append(...values.filter((v) => !present.has(v)).map((v) => h('option', { value: v }, v)));
    });
    syncControls();
  }

  async function run() {
    inflight?.abort();
    const current = state;
    const { query } = current;
    hideAlert();
    if (!query) {
      renderIdle();
      return;
    }
    /** @type {import('./api.js').SearchInput} */
    let input;
    if (query.kind === 'upload') {
      if (!upload || upload.name !== query.name) {
        renderMissingUpload(query.name);
        return;
      }
      input = { file: upload.file };
    } else {
      input = query.kind === 'text' ? { text: query.text } : { imageId: query.id };
    }
    const controller = new AbortController();
    inflight = controller;
    renderPreview(query, controller.signal);
    setBusy(true);
    status.textContent = 'Searching…';
    /** @type {EncoderRole[]} */
    const roles = current.encoder === 'both' ? ['robust', 'clean'] : [current.encoder];
    const filter = filterOf(current.filters);
    try {
      const responses = await Promise.all(
        roles.map((encoder) => api.search(input, { k: current.k, encoder, filter }, controller.signal)),
      );
      for (const response of responses) for (const hit of response.hits) known.set(hit.id, hit.payload);
      renderResults(current, responses);
      if (query.kind === 'upload' && upload) void noteArchived(upload, responses, controller.signal);
    } catch (error) {
      if (controller.signal.aborted) return;
      replace(output);
      status.textContent = '';
      showAlert(api.describeError(error));
    } finally {
      if (inflight === controller) setBusy(false);
    }
  }

  /** @param {boolean} busy */
  function setBusy(busy) {
    results.classList.toggle('is-loading', busy);
    results.setAttribute('aria-busy', String(busy));
  }

  /** @param {{ title: string, detail: string, code?: string }} error */
  function showAlert({ title, detail, code }) {
    replace(
      alert,
      h('p', { class: 'alert-title' }, title),
      h('p', {}, detail),
      code && h('p', { class: 'alert-code' }, code),
    );
    alert.hidden = false;
  }

  function hideAlert() {
    alert.hidden = true;
    replace(alert);
  }

  function renderIdle() {
    setBusy(false);
    status.textContent = '';
    replace(preview, h('h2', { class: 'panel-title' }, 'Query'), h('p', { class: 'muted' }, 'No query yet.'));
    replace(
      output,
      h(
        'div',
        { class: 'empty' },
        h('h2', {}, 'Find lookalikes in the archive'),
        h(
          'ul',
          { class: 'how' },
          h(
            'li',
            {},
            h('strong', {}, 'By image: '),
            'drop a photo anywhere on this page, paste one, or choose a file.',
          ),
          h('li', {}, h('strong', {}, 'By description: '), 'type what the part and its defect look like.'),
          h('li', {}, h('strong', {}, 'From a result: '), 'click any hit to search for its lookalikes.'),
        ),
        h(
          'p',
          { class: 'examples' },
          h('span', { class: 'muted' }, 'Try '),
          EXAMPLES.map((text) =>
            h(
              'button',
              { type: 'button', class: 'chip-button', onclick: () => searchFor({ kind: 'text', text }) },
              text,
            ),
          ),
        ),
        h(
          'p',
          { class: 'muted small' },
          'Robust is the adversarially fine-tuned tower (FARE); Clean is the CLIP baseline it is measured against. ',
          'Side by side runs both.',
        ),
      ),
    );
  }

  /** @param {string} name */
  function renderMissingUpload(name) {
    setBusy(false);
    status.textContent = '';
    replace(preview, h('h2', { class: 'panel-title' }, 'Query'), h('p', { class: 'muted' }, name));
    replace(output);
    showAlert({
      title: 'Upload not available',
      detail: `${name} was uploaded in an earlier visit; images are not kept in links. Drop it again to search.`,
    });
  }

  /**
   * @param {Query} query
   * @param {AbortSignal} signal
   */
  function renderPreview(query, signal) {
    const title = h('h2', { class: 'panel-title' }, 'Query');
    if (query.kind === 'text') {
      replace(
        preview,
        title,
        h('blockquote', { class: 'text-query-preview' }, query.text),
        h('p', { class: 'muted small' }, 'Text embedding matched against image embeddings.'),
      );
      return;
    }
    if (query.kind === 'upload' && upload) {
      const { file, url } = upload;
      replace(
        preview,
        title,
        h('img', { class: 'preview-image', src: url, alt: `Uploaded image ${upload.name}` }),
        h(
          'dl',
          { class: 'facts' },
          fact('File', upload.name),
          fact('Size', `${formatBytes(file.size)}${file.type ? ` · ${file.type}` : ''}`),
        ),
        h('p', { class: 'muted small archive-note' }, 'Uploaded image.'),
      );
      return;
    }
    if (query.kind !== 'id') return;
    const { id } = query;
    /** @param {Payload | undefined} payload */
    const draw = (payload) =>
      replace(
        preview,
        title,
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
          payload && fact('Source', h('span', { class: 'source', title: payload.source }, payload.source)),
        ),
        h(
          'p',
          { class: 'links' },
          h('a', { href: api.imagePath(id, '/original'), target: '_blank', rel: 'noopener' }, 'Original'),
          h('a', { href: api.imagePath(id), target: '_blank', rel: 'noopener' }, 'JSON'),
        ),
      );
    const payload = known.get(id);
    draw(payload);
    if (payload) return;
    api.getImage(id, signal).then(
      (image) => {
        if (signal.aborted) return;
        known.set(id, image.payload);
        draw(image.payload);
      },
      () => {
        // The search itself reports a missing image; the preview keeps the id only.
      },
    );
  }

  /**
   * @param {SearchState} current
   * @param {SearchResponse[]} responses
   */
  function renderResults(current, responses) {
    const filtered = filterOf(current.filters);
    const [first, second] = responses;
    if (!first) return;
    const took = responses.map((r) => `${TOWERS[r.encoder].name.toLowerCase()} ${r.tookMs} ms`).join(' · ');
    status.textContent = `${plural(first.hits.length, 'lookalike')}${second ? ' per tower' : ''} · ${took}`;
    if (!second) {
      replace(output, first.hits.length ? grid(first, undefined) : noHits(Boolean(filtered)));
      return;
    }
    const rank = (/** @type {SearchResponse} */ r) => new Map(r.hits.map((hit, i) => [hit.id, i + 1]));
    const firstRanks = rank(first);
    const shared = second.hits.filter((hit) => firstRanks.has(hit.id)).length;
    const sameTop = first.hits[0] && first.hits[0].id === second.hits[0]?.id;
    replace(
      output,
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
        column(first, { role: second.encoder, ranks: rank(second) }, Boolean(filtered)),
        column(second, { role: first.encoder, ranks: firstRanks }, Boolean(filtered)),
      ),
    );
  }

  /**
   * @param {SearchResponse} response
   * @param {{ role: EncoderRole, ranks: Map<string, number> }} other
   * @param {boolean} filtered
   */
  function column(response, other, filtered) {
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
      response.hits.length ? grid(response, other) : noHits(filtered),
    );
  }

  /**
   * @param {SearchResponse} response
   * @param {{ role: EncoderRole, ranks: Map<string, number> } | undefined} other
   */
  function grid(response, other) {
    return h(
      'ol',
      { class: 'grid', 'data-encoder': response.encoder },
      response.hits.map((hit, i) => {
        const payload = hit.payload;
        const otherRank = other?.ranks.get(hit.id);
        const otherName = other && TOWERS[other.role].name.toLowerCase();
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
              onclick: () => searchFromHit(hit.id),
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
          ),
        );
      }),
    );
  }

  /** @param {boolean} filtered */
  function noHits(filtered) {
    return h(
      'div',
      { class: 'empty' },
      h('p', {}, 'No images match.'),
      filtered &&
        h(
          'p',
          {},
          'The filters may be too narrow. ',
          h(
            'button',
            { type: 'button', class: 'button subtle', onclick: () => change({ filters: emptyFilters() }) },
            'Clear filters',
          ),
        ),
    );
  }

  /**
   * When the uploaded file is itself in the archive (its sha256 is an id among the hits), the URL switches to that
   * id so the search can be shared. Needs `crypto.subtle`, which browsers offer on https and localhost only.
   * @param {{ name: string, file: File }} uploaded
   * @param {SearchResponse[]} responses
   * @param {AbortSignal} signal
   */
  async function noteArchived(uploaded, responses, signal) {
    if (!globalThis.crypto?.subtle) return;
    const digest = await crypto.subtle.digest('SHA-256', await uploaded.file.arrayBuffer());
    const id = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
    if (signal.aborted || !responses.some((r) => r.hits.some((hit) => hit.id === id))) return;
    state = { ...state, query: { kind: 'id', id } };
    history.replaceState(null, '', `/${formatSearchState(state)}`);
    const note = preview.querySelector('.archive-note');
    if (note) replace(note, 'Already in the archive as ', h('code', { title: id }, shortId(id)), '.');
  }
}

/**
 * @param {string} term
 * @param {import('./dom.js').Children} value
 */
function fact(term, value) {
  return [h('dt', {}, term), h('dd', {}, value)];
}

/** @param {Payload} payload */
function labelChips(payload) {
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
 * An image served by the API. With an API key set it is fetched with the key and shown from a `blob:` URL, since an
 * `<img>` cannot send an Authorization header; otherwise the browser loads it as usual.
 * @param {string} url
 * @param {Record<string, string>} attrs
 */
function apiImage(url, attrs) {
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
function shortId(id) {
  return id.length > 12 ? `${id.slice(0, 12)}…` : id;
}

/** @param {DragEvent} event */
function hasFiles(event) {
  return event.dataTransfer?.types.includes('Files') ?? false;
}

/** @param {EventTarget | null} target */
function isEditable(target) {
  return (
    target instanceof HTMLInputElement ||
    target instanceof HTMLTextAreaElement ||
    target instanceof HTMLSelectElement ||
    (target instanceof HTMLElement && target.isContentEditable)
  );
}
