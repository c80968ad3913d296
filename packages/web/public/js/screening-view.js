/**
 * The parts of the caption screening page that draw one answer of the API: the mixture's summary, one screened image
 * with its review buttons, an error. No state and no requests of their own.
 */
import * as api from './api.js';
import { h } from './dom.js';
import { formatDateTime, formatScore, plural } from './format.js';
import { apiImage, labelChips, shortId } from './search-view.js';

/** @typedef {import('./api.js').CaptionVerdict} CaptionVerdict */
/** @typedef {import('./api.js').CaptionReview} CaptionReview */
/** @typedef {import('./api.js').ScreenedImage} ScreenedImage */
/** @typedef {import('./api.js').ScreeningList} ScreeningList */

/** The lists, in the order the selector shows them; the first is the default. */
export const VERDICTS = /** @type {const} */ (['suspicious', 'withdrawn', 'trusted', 'pending']);
/** @type {Record<CaptionVerdict, string>} */
export const VERDICT_TEXT = {
  suspicious: 'Suspicious',
  withdrawn: 'Withdrawn',
  trusted: 'Trusted',
  pending: 'Pending',
};
/** @type {Record<CaptionReview | 'none', string>} */
const REVIEW_TEXT = { accepted: 'Accepted', rejected: 'Rejected', none: 'Not reviewed' };
/** @param {number} n */
export const count = (n) => n.toLocaleString('en-US');

/**
 * @param {string} title
 * @param {unknown} error
 */
export function alertOf(title, error) {
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
 * The mixture that judges captions, in one or two sentences, with how many images hold each verdict.
 * @param {ScreeningList} answer
 */
export function modelSummary({ model, policy, counts }) {
  const tally =
    `${count(counts.trusted)} trusted, ${count(counts.suspicious)} suspicious, ${count(counts.pending)} pending, ` +
    `${count(counts.withdrawn)} withdrawn`;
  if (!model)
    return [
      h('strong', {}, 'No mixture yet'),
      `: captions stay pending until the collection holds ${count(policy.minCount)} captioned images (${tally}).`,
    ];
  const fitted = h(
    'span',
    { class: 'muted' },
    ` Fitted on ${plural(model.count, 'caption')}, `,
    h('time', { datetime: model.fittedAt }, formatDateTime(model.fittedAt)),
    '.',
  );
  const head = ['Screened by the ', h('strong', {}, `${model.tower} tower`), `: ${tally}. `];
  if (!model.separates || model.boundary === null)
    return [
      ...head,
      h('strong', {}, 'Every caption is trusted'),
      `: the ${model.tower} tower does not separate matching captions from unrelated ones in this collection.`,
      fitted,
    ];
  return [
    ...head,
    'Suspicious below similarity ',
    h('strong', { class: 'distance-value' }, formatScore(model.boundary)),
    ` (clean-component probability < ${model.threshold}).`,
    fitted,
  ];
}

/**
 * One image: its thumbnail (a link to its lookalikes), its caption (struck through when withdrawn), source and
 * labels, its similarity against the boundary, why it was flagged, its verdict and review, and the review buttons.
 * @param {ScreenedImage} image
 * @param {(decision: CaptionReview, item: HTMLElement) => void} onReview
 */
export function captionItem(image, onReview) {
  const { payload } = image;
  const s = payload.screening;
  const review = s.review ?? 'none';
  const withdrawn = s.verdict === 'withdrawn';
  const text = withdrawn ? (s.withdrawnCaption ?? payload.caption) : payload.caption;
  const captionId = `caption-${image.id}`;
  /** @param {string} label @param {CaptionReview} decision */
  const button = (label, decision) =>
    h(
      'button',
      {
        type: 'button',
        class: decision === 'accepted' ? 'button' : 'button subtle',
        'aria-describedby': captionId,
        onclick: () => onReview(decision, item),
      },
      label,
    );
  const item = h(
    'li',
    {
      class: `screening-item verdict-${s.verdict}`,
      'data-id': image.id,
      'data-verdict': s.verdict,
      'data-review': review,
      'aria-labelledby': captionId,
      tabindex: -1,
    },
    h(
      'a',
      {
        class: 'thumb',
        href: `/?id=${encodeURIComponent(image.id)}`,
        'data-nav': true,
        title: 'Search for lookalikes of this image',
        'aria-label': `Search for lookalikes of image ${shortId(image.id)}`,
      },
      apiImage(image.thumbnailUrl, { alt: '', loading: 'lazy', decoding: 'async' }),
    ),
    h(
      'div',
      { class: 'member-body screening-body' },
      h(
        'p',
        { class: 'member-caption screening-caption', id: captionId },
        text === undefined
          ? h('span', { class: 'muted' }, `Image ${shortId(image.id)}, no caption`)
          : withdrawn
            ? [h('del', {}, text), ' ', h('span', { class: 'label' }, 'withdrawn')]
            : text,
      ),
      h('p', { class: 'source', title: payload.source }, payload.source),
      labelChips(payload),
      h(
        'p',
        { class: 'screening-similarity', title: `cos(image, caption) in the ${s.tower} tower's space` },
        'Similarity ',
        h('span', { class: 'distance-value' }, formatScore(s.similarity[s.tower])),
        ` in the ${s.tower} tower`,
        s.boundary !== undefined && [' · boundary ', h('span', { class: 'distance-value' }, formatScore(s.boundary))],
        s.probability !== undefined && ` · clean-component probability ${s.probability.toFixed(3)}`,
      ),
      s.reason && h('p', { class: 'screening-reason' }, `Reason: ${s.reason}`),
      h(
        'p',
        { class: 'screening-state' },
        h('span', { class: `review-state screening-verdict verdict-${s.verdict}` }, VERDICT_TEXT[s.verdict]),
        h(
          'span',
          { class: `review-state review-state-${review}` },
          REVIEW_TEXT[review],
          s.reviewedAt &&
            h('span', { class: 'muted' }, ' · ', h('time', { datetime: s.reviewedAt }, formatDateTime(s.reviewedAt))),
        ),
      ),
    ),
    h(
      'div',
      { class: 'screening-actions' },
      review !== 'accepted' && button('Accept caption', 'accepted'),
      !withdrawn && button('Reject caption', 'rejected'),
      h('a', { class: 'button subtle', href: image.url, target: '_blank', rel: 'noopener' }, 'JSON'),
    ),
    h('div', { class: 'item-problem' }),
  );
  return item;
}
