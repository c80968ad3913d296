/**
 * The near-duplicates page: the groups ingest made of images within the same-item distance of each other, newest
 * first, each as a row of its members with the distance each joined at and its review. "Keep this one" keeps a
 * member and marks the others as duplicates; nothing is deleted. `?unreviewed=true` lists only groups with members
 * nobody reviewed yet, `?offset=` pages.
 *
 * One file over 400 lines on purpose: one page (its list, its group rows and the review actions they share);
 * the API calls, DOM helpers and formatting are in `api.js`, `dom.js` and `format.js`.
 */
import * as api from './api.js';
import { h, replace } from './dom.js';
import { formatDateTime, formatDistance, plural } from './format.js';
import { apiImage, labelChips, shortId } from './search-view.js';

/** @typedef {import('./app.js').Page} Page */
/** @typedef {import('./api.js').DuplicateGroup} DuplicateGroup */
/** @typedef {import('./api.js').DuplicateMember} DuplicateMember */
/** @typedef {import('./api.js').DuplicateList} DuplicateList */
/** @typedef {{ unreviewed: boolean, offset: number }} ListState */

/** Groups per page. */
const PAGE_SIZE = 20;

/** @type {Record<'kept' | 'duplicate' | 'none', string>} */
const REVIEW_TEXT = { kept: 'Kept', duplicate: 'Marked duplicate', none: 'Not reviewed' };

/** The list the URL asks for. */
function readState() {
  const params = new URLSearchParams(location.search);
  const offset = Number(params.get('offset'));
  const unreviewed = params.get('unreviewed');
  return {
    unreviewed: unreviewed === 'true' || unreviewed === '1',
    offset: Number.isInteger(offset) && offset > 0 ? offset : 0,
  };
}

/** @param {ListState} state */
function urlOf({ unreviewed, offset }) {
  const params = new URLSearchParams();
  if (unreviewed) params.set('unreviewed', 'true');
  if (offset) params.set('offset', String(offset));
  const query = params.toString();
  return `/duplicates${query ? `?${query}` : ''}`;
}

/**
 * @param {string} title
 * @param {unknown} error
 */
function alertOf(title, error) {
  const { title: what, detail, code } = api.describeError(error);
  return h(
    'div',
    { class: 'alert', role: 'alert' },
    h('p', { class: 'alert-title' }, `${title}: ${what}`),
    h('p', {}, detail),
    code && h('p', { class: 'alert-code' }, code),
  );
}

/**
 * How ingest groups now, in one sentence, and what a review does.
 * @param {DuplicateList['grouping']} grouping
 */
function groupingNote(grouping) {
  return [
    grouping
      ? [
          'Ingest puts a new image in the group of a stored one when their distance (1 − cos) under the ',
          h('strong', {}, `${grouping.tower} tower`),
          ' is at most ',
          h('strong', { class: 'distance-value' }, formatDistance(grouping.threshold)),
          ', the same-item threshold in use. ',
        ]
      : [
          h('strong', {}, 'Grouping is off'),
          ': ingest puts new images in no group (DUPLICATES is off, or its tower has no distance calibration); ',
          'the groups below were made before. ',
        ],
    'Nothing is deleted: keeping one image only labels the others of its group as duplicates, and a search can ',
    'leave marked copies out.',
  ];
}

/**
 * @param {ListState} state
 * @param {DuplicateList} list
 * @param {(state: ListState) => void} go
 */
function emptyState(state, list, go) {
  if (list.total > 0)
    return h(
      'div',
      { class: 'empty' },
      h('h2', {}, 'No groups on this page'),
      h('p', {}, `There are ${plural(list.total, 'group')}; this page starts after the last one.`),
      h('button', { type: 'button', class: 'button', onclick: () => go({ ...state, offset: 0 }) }, 'First page'),
    );
  if (state.unreviewed)
    return h(
      'div',
      { class: 'empty' },
      h('h2', {}, 'Nothing left to review'),
      h('p', {}, 'Every near-duplicate group has been reviewed.'),
      h(
        'button',
        { type: 'button', class: 'button', onclick: () => go({ unreviewed: false, offset: 0 }) },
        'Show all groups',
      ),
    );
  return h(
    'div',
    { class: 'empty' },
    h('h2', {}, 'No near-duplicates found'),
    h(
      'p',
      {},
      list.grouping
        ? 'Ingest has found no two images within the same-item distance of each other. A group shows here as soon ' +
            'as an image is ingested that close to a stored one.'
        : 'Grouping is off, so ingest puts no image in a group. Set DUPLICATES (robust, the default, or clean) to ' +
            'group the images ingested from then on.',
    ),
  );
}

/**
 * One line on where a group's review stands.
 * @param {DuplicateGroup} group
 */
function reviewSummary(group) {
  if (group.unreviewed === group.size) return 'Not reviewed';
  const kept = group.members.find((m) => m.id === group.kept);
  const marked = group.members.filter((m) => m.payload.duplicates.review === 'duplicate').length;
  const summary = kept
    ? `Reviewed: kept ${kept.payload.caption ?? shortId(kept.id)}, ${plural(marked, 'other')} marked duplicate`
    : `Reviewed: ${plural(marked, 'image')} marked duplicate`;
  return group.unreviewed ? `${summary}; ${group.unreviewed} joined since, not reviewed` : summary;
}

/**
 * One member: its thumbnail (a link to its lookalikes), caption, source and labels, the distance it joined at, its
 * review, and the button that keeps it.
 * @param {DuplicateGroup} group
 * @param {DuplicateMember} member
 * @param {(member: DuplicateMember) => void} onKeep
 */
function memberItem(group, member, onKeep) {
  const { payload } = member;
  const record = payload.duplicates;
  const first = member.id === group.id;
  const review = record.review ?? 'none';
  const captionId = `member-${group.id}-${member.id}`;
  const nearest = record.nearest === undefined || record.nearest === group.id ? 'the first image' : record.nearest;
  return h(
    'li',
    { class: `duplicate-member review-${review}`, 'data-id': member.id, 'data-review': review },
    h(
      'a',
      {
        class: 'thumb',
        href: `/?id=${encodeURIComponent(member.id)}`,
        'data-nav': true,
        title: 'Search for lookalikes of this image',
      },
      apiImage(member.thumbnailUrl, {
        alt: payload.caption ? '' : `Image ${shortId(member.id)}`,
        loading: 'lazy',
        decoding: 'async',
      }),
    ),
    h(
      'div',
      { class: 'member-body' },
      h('p', { class: 'member-caption', id: captionId }, payload.caption ?? shortId(member.id)),
      h('p', { class: 'source', title: payload.source }, payload.source),
      labelChips(payload),
      h(
        'p',
        {
          class: 'member-distance',
          title: `1 − cos under the ${record.tower} tower; grouped at ≤ ${formatDistance(record.threshold)}`,
        },
        first
          ? 'First image of the group'
          : [
              'Distance ',
              h('span', { class: 'distance-value' }, formatDistance(record.distance)),
              ' to ',
              nearest === record.nearest ? h('code', { title: nearest }, shortId(nearest)) : nearest,
            ],
      ),
      h(
        'p',
        { class: `review-state review-state-${review}` },
        REVIEW_TEXT[review],
        record.reviewedAt &&
          h(
            'span',
            { class: 'muted' },
            ' · ',
            h('time', { datetime: record.reviewedAt }, formatDateTime(record.reviewedAt)),
          ),
      ),
    ),
    h(
      'div',
      { class: 'member-actions' },
      h(
        'button',
        {
          type: 'button',
          class: review === 'kept' ? 'button subtle' : 'button',
          disabled: review === 'kept',
          'aria-describedby': captionId,
          onclick: () => onKeep(member),
        },
        'Keep this one',
      ),
      !first &&
        h(
          'a',
          {
            class: 'button subtle',
            href: `/compare?a=${encodeURIComponent(group.id)}&b=${encodeURIComponent(member.id)}`,
            'data-nav': true,
          },
          'Compare',
        ),
    ),
  );
}

/**
 * A group as a card that reviews itself: "Keep this one" posts the review and draws the group the API answers.
 * @param {DuplicateGroup} initial
 * @param {AbortSignal} signal ends the reviews in flight with the page
 */
function groupCard(initial, signal) {
  let group = initial;
  const headingId = `group-${group.id}`;
  const content = h('div', { class: 'group-content' });
  const problem = h('div', { class: 'group-problem' });
  const status = h('p', { class: 'group-status', role: 'status' });
  const card = h(
    'article',
    { class: 'duplicate-group', 'data-group-id': group.id, 'aria-labelledby': headingId, tabindex: -1 },
    content,
    problem,
    status,
  );
  draw();
  return card;

  function draw() {
    replace(
      content,
      h(
        'header',
        { class: 'group-head' },
        h(
          'div',
          {},
          h(
            'h2',
            { id: headingId },
            plural(group.size, 'image'),
            h(
              'span',
              { class: 'muted' },
              ' · newest ',
              h('time', { datetime: group.latest }, formatDateTime(group.latest)),
            ),
          ),
          h('p', { class: 'group-review' }, reviewSummary(group)),
        ),
        h(
          'p',
          { class: 'links' },
          h(
            'a',
            { class: 'button subtle', href: api.duplicatePath(group.id), target: '_blank', rel: 'noopener' },
            'JSON',
          ),
        ),
      ),
      h(
        'ol',
        { class: 'duplicate-members' },
        group.members.map((member) => memberItem(group, member, (m) => void keep(m))),
      ),
    );
  }

  /** @param {DuplicateMember} member */
  async function keep(member) {
    card.setAttribute('aria-busy', 'true');
    for (const button of card.querySelectorAll('button')) button.disabled = true;
    replace(problem);
    status.textContent = 'Saving the review…';
    try {
      group = await api.reviewDuplicates(group.id, member.id, signal);
      draw();
      const others = group.size - 1;
      status.textContent =
        `Kept ${member.payload.caption ?? shortId(member.id)}; ${plural(others, 'other image')} marked as ` +
        `duplicate${others === 1 ? '' : 's'}. Nothing was deleted.`;
      card.focus({ preventScroll: true });
    } catch (error) {
      if (signal.aborted) return;
      status.textContent = '';
      draw();
      replace(problem, alertOf('Could not save the review', error));
    } finally {
      card.removeAttribute('aria-busy');
    }
  }
}

/**
 * Renders the near-duplicates page into `main` and loads the groups the URL asks for.
 * @param {HTMLElement} main
 * @returns {Page}
 */
export function mountDuplicates(main) {
  /** @type {AbortController | undefined} */
  let controller;
  const lifetime = new AbortController();
  let state = readState();
  const note = h('p', { class: 'lede grouping-note', hidden: true });
  const toggle = h('input', {
    type: 'checkbox',
    id: 'duplicates-unreviewed',
    name: 'unreviewed',
    onchange: () => go({ unreviewed: toggle.checked, offset: 0 }),
  });
  const status = h('p', { class: 'status duplicates-status' });
  const list = h('div', { class: 'duplicate-list' });
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages of groups', hidden: true });
  replace(
    main,
    h(
      'div',
      { class: 'page duplicates-page' },
      h(
        'header',
        { class: 'page-head' },
        h('h1', {}, 'Near-duplicates'),
        h(
          'p',
          { class: 'lede' },
          'Images ingest found within the same-item distance of each other: the same item stored twice, re-encoded, ',
          'resized or photographed again. Keep one image of each group to mark the others as its duplicates.',
        ),
        note,
      ),
      h(
        'div',
        { class: 'duplicates-toolbar' },
        h('label', { class: 'check', for: 'duplicates-unreviewed' }, toggle, h('span', {}, 'Only unreviewed')),
        status,
      ),
      list,
      pager,
    ),
  );
  void load();

  return {
    title: 'Duplicates',
    update: () => {
      state = readState();
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
    void load();
    window.scrollTo({ top: 0 });
  }

  async function load() {
    controller?.abort();
    const current = new AbortController();
    controller = current;
    toggle.checked = state.unreviewed;
    list.setAttribute('aria-busy', 'true');
    pager.hidden = true;
    status.textContent = '';
    replace(list, h('p', { class: 'muted', role: 'status' }, 'Loading near-duplicate groups…'));
    try {
      const answer = await api.listDuplicates({ limit: PAGE_SIZE, ...state }, current.signal);
      replace(note, ...groupingNote(answer.grouping));
      note.hidden = false;
      status.textContent =
        `${plural(answer.total, 'group')}${state.unreviewed ? ' with images not reviewed' : ''} · ` +
        `${plural(answer.images, 'image')}`;
      replace(
        list,
        answer.groups.length
          ? answer.groups.map((group) => groupCard(group, lifetime.signal))
          : emptyState(state, answer, go),
      );
      showPager(answer);
    } catch (error) {
      if (current.signal.aborted) return;
      replace(list, alertOf('Could not load near-duplicates', error));
    } finally {
      if (controller === current) list.removeAttribute('aria-busy');
    }
  }

  /** @param {DuplicateList} answer */
  function showPager(answer) {
    const { offset } = state;
    if (!answer.groups.length || (offset === 0 && answer.total <= PAGE_SIZE)) return;
    const last = offset + answer.groups.length;
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
        '← Newer',
      ),
      h('span', { class: 'muted' }, `Groups ${offset + 1}–${last} of ${answer.total}`),
      h(
        'button',
        {
          type: 'button',
          class: 'button subtle',
          disabled: last >= answer.total,
          onclick: () => go({ ...state, offset: offset + PAGE_SIZE }),
        },
        'Older →',
      ),
    );
    pager.hidden = false;
  }
}
