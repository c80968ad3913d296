/**
 * The search page's controller: query by uploaded, dropped or pasted image, by text, or by clicking a hit; filter by
 * labels; compare the robust and the clean tower side by side. The query string holds the state (see `state.js`);
 * the query bar is in `search-controls.js` and every renderer in `search-view.js`.
 */
import * as api from './api.js';
import { h, replace } from './dom.js';
import { createQueryBar } from './search-controls.js';
import {
  idleOutput,
  idlePreview,
  imagePreview,
  namePreview,
  resultsView,
  shortId,
  textPreview,
  uploadPreview,
} from './search-view.js';
import { emptyFilters, filterOf, formatSearchState, parseSearchState } from './state.js';

/** @typedef {import('./app.js').Page} Page */
/** @typedef {import('./state.js').SearchState} SearchState */
/** @typedef {import('./state.js').Query} Query */
/** @typedef {import('./api.js').EncoderRole} EncoderRole */
/** @typedef {import('./api.js').SearchResponse} SearchResponse */
/** @typedef {import('./api.js').Payload} Payload */

/**
 * Renders the search page into `main` and runs the search in the URL, if any.
 * @param {HTMLElement} main
 * @returns {Page}
 */
export function mountSearch(main) {
  const lifetime = new AbortController();
  const { signal } = lifetime;
  /** @type {AbortController | undefined} */
  let inflight;
  /** The last file searched with; files cannot live in the URL, so going back to an upload finds it here. */
  /** @type {{ name: string, file: File, url: string } | undefined} */
  let upload;
  /** Payloads seen in results, so the preview of a clicked hit needs no extra request. */
  /** @type {Map<string, Payload>} */
  const known = new Map();
  let state = parseSearchState(location.search);
  let facetsLoaded = false;

  const bar = createQueryBar(
    {
      onFile: useFile,
      onText: (text) => {
        if (text) return searchFor({ kind: 'text', text });
        showAlert({ title: 'Nothing to search for', detail: 'Type a description, or drop an image.' });
        bar.focusText();
      },
      onChange: change,
      current: () => state,
    },
    signal,
  );
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
      bar.element,
      h('div', { class: 'search-body' }, preview, results),
    ),
  );

  loadFacets();
  bar.sync(state);
  void run();

  return {
    title: 'Search',
    update() {
      state = parseSearchState(location.search);
      if (!facetsLoaded) loadFacets();
      bar.sync(state);
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
    bar.sync(state);
    void run();
  }

  /**
   * A changed option: same query, history entry replaced.
   * @param {Partial<SearchState>} patch
   */
  function change(patch) {
    navigate({ ...state, ...patch }, 'replace');
  }

  /** @param {Query} query */
  function searchFor(query) {
    navigate({ ...state, query }, 'push');
  }

  /** @param {File} file */
  function useFile(file) {
    if (file.type && !file.type.startsWith('image/')) {
      showAlert({ title: 'Not an image', detail: `${file.name} is ${file.type}. Choose a PNG, JPEG or WebP image.` });
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

  function loadFacets() {
    api.getFacets(signal).then(
      (facets) => {
        facetsLoaded = true;
        bar.fillFacets(facets);
        bar.sync(state);
      },
      (/** @type {unknown} */ error) => {
        if (!signal.aborted) bar.facetsUnavailable(api.describeError(error).title);
      },
    );
  }

  async function run() {
    inflight?.abort();
    const current = state;
    const { query } = current;
    hideAlert();
    if (!query) {
      settle(
        idlePreview(),
        idleOutput((text) => searchFor({ kind: 'text', text })),
      );
      return;
    }
    /** @type {import('./api.js').SearchInput} */
    let input;
    if (query.kind === 'upload') {
      if (!upload || upload.name !== query.name) {
        settle(namePreview(query.name), null);
        showAlert({
          title: 'Upload not available',
          detail: `${query.name} was uploaded in an earlier visit; images are not kept in links. Drop it again to search.`,
        });
        return;
      }
      input = { file: upload.file };
    } else {
      input = query.kind === 'text' ? { text: query.text } : { imageId: query.id };
    }
    const controller = new AbortController();
    inflight = controller;
    showPreview(query, controller.signal);
    setBusy(true);
    status.textContent = 'Searching…';
    /** @type {EncoderRole[]} */
    const roles = current.encoder === 'both' ? ['robust', 'clean'] : [current.encoder];
    const filter = filterOf(current.filters);
    try {
      const responses = await Promise.all(
        roles.map((encoder) =>
          api.search(input, { k: current.k, encoder, filter, quality: current.quality }, controller.signal),
        ),
      );
      for (const response of responses) for (const hit of response.hits) known.set(hit.id, hit.payload);
      const view = resultsView(responses, {
        filtered: Boolean(filter) || current.quality !== 'any',
        onHit: searchFromHit,
        onClearFilters: () => change({ filters: emptyFilters(), quality: 'any' }),
      });
      status.textContent = view.status;
      replace(output, view.content);
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

  /**
   * A page with no search running: this preview and output, no status line.
   * @param {import('./dom.js').Children} previewContent
   * @param {import('./dom.js').Children} outputContent
   */
  function settle(previewContent, outputContent) {
    setBusy(false);
    status.textContent = '';
    replace(preview, previewContent);
    replace(output, outputContent);
  }

  /**
   * @param {Query} query
   * @param {AbortSignal} querySignal
   */
  function showPreview(query, querySignal) {
    if (query.kind === 'text') return replace(preview, textPreview(query.text));
    if (query.kind === 'upload') return upload && replace(preview, uploadPreview(upload));
    const { id } = query;
    const payload = known.get(id);
    replace(preview, imagePreview(id, payload));
    if (payload) return;
    api.getImage(id, querySignal).then(
      (image) => {
        if (querySignal.aborted) return;
        known.set(id, image.payload);
        replace(preview, imagePreview(id, image.payload));
      },
      () => {
        // The search itself reports a missing image; the preview keeps the id only.
      },
    );
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

  /**
   * When the uploaded file is itself in the archive (its sha256 is an id among the hits), the URL switches to that
   * id so the search can be shared. Needs `crypto.subtle`, which browsers offer on https and localhost only.
   * @param {{ name: string, file: File }} uploaded
   * @param {SearchResponse[]} responses
   * @param {AbortSignal} querySignal
   */
  async function noteArchived(uploaded, responses, querySignal) {
    if (!globalThis.crypto?.subtle) return;
    const digest = await crypto.subtle.digest('SHA-256', await uploaded.file.arrayBuffer());
    const id = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
    if (querySignal.aborted || !responses.some((r) => r.hits.some((hit) => hit.id === id))) return;
    state = { ...state, query: { kind: 'id', id } };
    history.replaceState(null, '', `/${formatSearchState(state)}`);
    const note = preview.querySelector('.archive-note');
    if (note) replace(note, 'Already in the archive as ', h('code', { title: id }, shortId(id)), '.');
  }
}
