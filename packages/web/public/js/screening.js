/**
 * The caption screening page: captioned images by the verdict ingest's caption screen gave them (suspicious by
 * default, the most suspect, the lowest similarity, first) with the mixture that judged them. "Accept caption" trusts
 * a caption (restoring a withdrawn one), "Reject caption" withdraws it from the image; nothing is deleted.
 * `?verdict=` picks the list, `?offset=` pages.
 */
import * as api from './api.js';
import { h, replace } from './dom.js';
import { plural } from './format.js';
import { VERDICTS, VERDICT_TEXT, alertOf, captionItem, count, modelSummary } from './screening-view.js';
import { shortId } from './search-view.js';

/** @typedef {import('./app.js').Page} Page */
/** @typedef {import('./api.js').CaptionVerdict} CaptionVerdict */
/** @typedef {import('./api.js').CaptionReview} CaptionReview */
/** @typedef {import('./api.js').ScreenedImage} ScreenedImage */
/** @typedef {import('./api.js').ScreeningList} ScreeningList */
/** @typedef {{ verdict: CaptionVerdict, offset: number }} ListState */

/** Images per page. */
const PAGE_SIZE = 20;
/** @type {Record<CaptionVerdict, string>} */
const EMPTY_TEXT = {
  suspicious: 'No caption is below the trust boundary, or every suspicious one has been reviewed.',
  withdrawn: 'Nobody has rejected a caption. A rejected caption is listed here, kept but withdrawn from its image.',
  trusted: 'No caption is trusted yet: captions are judged once the collection holds enough of them.',
  pending: 'Every caption has been judged.',
};

/** The list the URL asks for. @returns {ListState} */
function readState() {
  const params = new URLSearchParams(location.search);
  const offset = Number(params.get('offset'));
  return {
    verdict: VERDICTS.find((v) => v === params.get('verdict')) ?? 'suspicious',
    offset: Number.isInteger(offset) && offset > 0 ? offset : 0,
  };
}

/** @param {ListState} state */
function urlOf({ verdict, offset }) {
  const params = new URLSearchParams();
  if (verdict !== 'suspicious') params.set('verdict', verdict);
  if (offset) params.set('offset', String(offset));
  const query = params.toString();
  return `/screening${query ? `?${query}` : ''}`;
}

/**
 * Renders the caption screening page into `main` and loads the list the URL asks for.
 * @param {HTMLElement} main
 * @returns {Page}
 */
export function mountScreening(main) {
  /** @type {AbortController | undefined} */
  let controller;
  const lifetime = new AbortController();
  let state = readState();
  const summary = h('p', { class: 'lede screening-model', hidden: true });
  const radios = VERDICTS.map((verdict) =>
    h('input', { type: 'radio', name: 'verdict', value: verdict, onchange: () => go({ verdict, offset: 0 }) }),
  );
  const radioLabels = VERDICTS.map((verdict) => h('span', {}, VERDICT_TEXT[verdict]));
  const status = h('p', { class: 'status screening-status' });
  const toolbar = h(
    'div',
    { class: 'screening-toolbar' },
    h(
      'fieldset',
      { class: 'field segmented' },
      h('legend', { class: 'field-label' }, 'Verdict'),
      h(
        'div',
        { class: 'segments' },
        VERDICTS.map((_, i) => h('label', {}, radios[i], radioLabels[i])),
      ),
    ),
    status,
  );
  const announce = h('p', { class: 'status screening-announce', role: 'status', 'aria-live': 'polite' });
  const results = h('div', { class: 'screening-results', tabindex: -1 });
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages of captions', hidden: true });
  replace(
    main,
    h(
      'div',
      { class: 'page screening-page' },
      h(
        'header',
        { class: 'page-head' },
        h('h1', {}, 'Captions'),
        h(
          'p',
          { class: 'lede' },
          'Ingest screens each caption against its image: how close the two are in the screening tower, judged by a ',
          'mixture fitted to the whole collection. A suspicious caption is left out of text search until someone ',
          'accepts it; rejecting it withdraws it from the image. Nothing is deleted: the image stays, and a withdrawn ',
          'caption is kept.',
        ),
        summary,
      ),
      toolbar,
      announce,
      results,
      pager,
    ),
  );
  void load();

  return {
    title: 'Captions',
    update: () => {
      state = readState();
      announce.textContent = '';
      void load();
    },
    destroy: () => {
      controller?.abort();
      lifetime.abort();
    },
  };

  /** @param {ListState} next */
  function go(next) {
    const url = urlOf(next);
    if (location.pathname + location.search !== url) history.pushState(null, '', url);
    state = next;
    announce.textContent = '';
    void load();
    window.scrollTo({ top: 0 });
  }

  /** Loads the list; `quiet` (after a review) keeps the current one on screen until the answer comes. */
  async function load(quiet = false) {
    controller?.abort();
    const current = new AbortController();
    controller = current;
    for (const radio of radios) radio.checked = radio.value === state.verdict;
    results.setAttribute('aria-busy', 'true');
    if (!quiet) {
      pager.hidden = true;
      status.textContent = '';
      replace(results, h('p', { class: 'muted', role: 'status' }, 'Loading captions…'));
    }
    try {
      const answer = await api.listScreening({ ...state, limit: PAGE_SIZE }, current.signal);
      if (quiet && !answer.images.length && state.offset > 0 && state.offset >= answer.total) {
        // A review emptied the last page: show the one before it.
        state = { ...state, offset: Math.max(0, Math.ceil(answer.total / PAGE_SIZE) - 1) * PAGE_SIZE };
        history.replaceState(null, '', urlOf(state));
        return load(true);
      }
      draw(answer);
    } catch (error) {
      if (current.signal.aborted) return;
      pager.hidden = true;
      if (error instanceof api.ApiError && error.status === 409) showOff(error);
      else replace(results, alertOf('Could not load the captions', error));
    } finally {
      if (controller === current) results.removeAttribute('aria-busy');
    }
  }

  /** @param {ScreeningList} answer */
  function draw(answer) {
    toolbar.hidden = false;
    replace(summary, ...modelSummary(answer));
    summary.hidden = false;
    VERDICTS.forEach((verdict, i) => {
      radioLabels[i]?.replaceChildren(`${VERDICT_TEXT[verdict]} (${count(answer.counts[verdict])})`);
    });
    status.textContent = plural(answer.total, `${state.verdict} caption`);
    replace(
      results,
      answer.images.length
        ? h(
            'ol',
            { class: 'screening-list', 'aria-label': `${VERDICT_TEXT[state.verdict]} captions` },
            answer.images.map((image) => captionItem(image, (decision, item) => void review(image, decision, item))),
          )
        : emptyState(answer),
    );
    showPager(answer);
  }

  /** @param {ScreeningList} answer */
  function emptyState(answer) {
    if (answer.total > 0)
      return h(
        'div',
        { class: 'empty' },
        h('h2', {}, 'No captions on this page'),
        h('p', {}, `There are ${plural(answer.total, `${state.verdict} caption`)}; this page starts after the last.`),
        h('button', { type: 'button', class: 'button', onclick: () => go({ ...state, offset: 0 }) }, 'First page'),
      );
    const waiting = !answer.model && state.verdict !== 'pending';
    return h(
      'div',
      { class: 'empty' },
      h('h2', {}, `No ${state.verdict} captions`),
      h('p', {}, waiting ? 'No caption is judged until the mixture is fitted.' : EMPTY_TEXT[state.verdict]),
    );
  }

  /** @param {api.ApiError} error */
  function showOff(error) {
    toolbar.hidden = true;
    summary.hidden = true;
    replace(
      results,
      h(
        'div',
        { class: 'empty screening-off' },
        h('h2', {}, 'Caption screening is off on this server'),
        h('p', {}, error.message),
        h('p', { class: 'muted' }, 'Set SCREENING to robust or clean to screen the captions of images ingested.'),
      ),
    );
  }

  /**
   * Posts a review, says what it did, and reloads the page of results (the image may have left this list).
   * @param {ScreenedImage} image
   * @param {CaptionReview} decision
   * @param {HTMLElement} item
   */
  async function review(image, decision, item) {
    const buttons = item.querySelectorAll('button');
    const problem = item.querySelector('.item-problem');
    item.setAttribute('aria-busy', 'true');
    for (const button of buttons) button.disabled = true;
    if (problem) replace(problem);
    announce.textContent = 'Saving the review…';
    const index = [...results.querySelectorAll('.screening-item')].indexOf(item);
    try {
      const { payload } = await api.reviewCaption(image.id, decision, lifetime.signal);
      const text = payload.caption ?? payload.screening.withdrawnCaption ?? shortId(image.id);
      const restored = image.payload.screening.verdict === 'withdrawn' ? ' and restored to the image' : '';
      announce.textContent =
        decision === 'rejected'
          ? `Rejected “${text}”: the caption is withdrawn from the image and kept as its withdrawn caption. ` +
            'Nothing was deleted.'
          : `Accepted “${text}”: the caption is trusted${restored}, and text search uses it.`;
      await load(true);
      if (lifetime.signal.aborted) return;
      const items = results.querySelectorAll('.screening-item');
      const next = items[Math.min(index, items.length - 1)];
      (next instanceof HTMLElement ? next : results).focus();
    } catch (error) {
      if (lifetime.signal.aborted) return;
      announce.textContent = '';
      for (const button of buttons) button.disabled = false;
      if (problem) replace(problem, alertOf('Could not save the review', error));
    } finally {
      item.removeAttribute('aria-busy');
    }
  }

  /** @param {ScreeningList} answer */
  function showPager(answer) {
    const { offset } = state;
    if (!answer.images.length || (offset === 0 && answer.total <= PAGE_SIZE)) {
      pager.hidden = true;
      return;
    }
    const last = offset + answer.images.length;
    replace(
      pager,
      h(
        'button',
        {
          type: 'button',
          class: 'button subtle',
          disabled: offset === 0,
          onclick: () => go({ ...state, offset: Math.max(0, offset - PAGE_SIZE) }),
        },
        '← Previous',
      ),
      h('span', { class: 'muted' }, `${offset + 1}–${last} of ${count(answer.total)}`),
      h(
        'button',
        {
          type: 'button',
          class: 'button subtle',
          disabled: last >= answer.total,
          onclick: () => go({ ...state, offset: offset + PAGE_SIZE }),
        },
        'Next →',
      ),
    );
    pager.hidden = false;
  }
}
