/**
 * The compare page: two images side by side — each uploaded or one of the archive's, by id — and their distance
 * under both towers, with each tower's calibrated verdict (same item, same kind, different) and how its thresholds
 * did on a held-out catalog. `?a=<id>&b=<id>` opens a comparison of two stored images.
 */
import * as api from './api.js';
import { h, replace } from './dom.js';
import { formatPercent } from './format.js';
import { fileDropzone } from './search-controls.js';
import { apiImage, labelChips, shortId } from './search-view.js';

/** @typedef {import('./app.js').Page} Page */
/** @typedef {import('./api.js').DistanceSide} DistanceSide */
/** @typedef {import('./api.js').DistanceResponse} DistanceResponse */
/** @typedef {import('./api.js').TowerDistance} TowerDistance */
/** @typedef {{ side: DistanceSide, url?: string | undefined }} Chosen */

const IMAGE_ID = /^[0-9a-f]{64}$/;

/** @type {Record<'robust' | 'clean', string>} */
const TOWER_NAMES = { robust: 'Robust (FARE)', clean: 'Clean baseline' };

/** @type {Record<string, string>} */
const VERDICT_CLASSES = {
  'same item': 'verdict-same-item',
  'same kind': 'verdict-same-kind',
  different: 'verdict-different',
};

/**
 * One side of the comparison: a drop zone for a file, a field for an id, and the preview of what was chosen.
 * @param {'a' | 'b'} name
 * @param {string} title
 * @param {() => void} onChange
 */
function createSlot(name, title, onChange) {
  /** @type {Chosen | undefined} */
  let chosen;
  const preview = h('div', { class: 'compare-preview', 'data-slot': name });
  const idInput = h('input', {
    type: 'text',
    id: `compare-${name}-id`,
    name: `${name}Id`,
    placeholder: 'or an image id (64 hex digits)',
    autocomplete: 'off',
    spellcheck: 'false',
  });
  const idError = h('p', { class: 'field-error', hidden: true, id: `compare-${name}-id-error` });
  const dropzone = fileDropzone({ id: `compare-${name}-file`, name, hint: 'PNG, JPEG or WebP', onFile: setFile });
  dropzone.addEventListener('dragover', (event) => {
    event.preventDefault();
    dropzone.classList.add('is-dragging');
  });
  dropzone.addEventListener('dragleave', () => dropzone.classList.remove('is-dragging'));
  dropzone.addEventListener('drop', (event) => {
    event.preventDefault();
    dropzone.classList.remove('is-dragging');
    const file = event.dataTransfer?.files[0];
    if (file) setFile(file);
  });
  const idForm = h(
    'form',
    {
      class: 'input-group',
      onsubmit: (/** @type {SubmitEvent} */ event) => {
        event.preventDefault();
        setId(idInput.value.trim());
      },
    },
    idInput,
    h('button', { type: 'submit', class: 'button subtle' }, 'Use id'),
  );
  const element = h(
    'section',
    { class: 'compare-slot', 'aria-labelledby': `compare-${name}-title` },
    h('h2', { class: 'panel-title', id: `compare-${name}-title` }, title),
    dropzone,
    idForm,
    idError,
    preview,
  );

  function release() {
    if (chosen?.url) URL.revokeObjectURL(chosen.url);
  }

  /** @param {File} file */
  function setFile(file) {
    release();
    const url = URL.createObjectURL(file);
    chosen = { side: { file }, url };
    idError.hidden = true;
    replace(
      preview,
      h('img', { class: 'preview-image', src: url, alt: `Uploaded image ${file.name}` }),
      h('p', { class: 'preview-caption' }, file.name || 'pasted image'),
    );
    onChange();
  }

  /**
   * @param {string} id
   * @param {boolean} [quiet] no change event (the page sets both sides from the URL at once)
   */
  function setId(id, quiet = false) {
    if (!IMAGE_ID.test(id)) {
      idError.textContent = 'An image id is the 64-character lowercase hex sha256 of the image.';
      idError.hidden = false;
      idInput.setAttribute('aria-invalid', 'true');
      idInput.setAttribute('aria-describedby', idError.id);
      return;
    }
    release();
    idError.hidden = true;
    idInput.removeAttribute('aria-invalid');
    idInput.value = id;
    chosen = { side: { imageId: id } };
    const caption = h('p', { class: 'preview-caption' }, shortId(id));
    const chips = h('div', {});
    replace(
      preview,
      apiImage(api.imagePath(id, '/thumbnail'), { class: 'preview-image', alt: `Image ${shortId(id)}` }),
      caption,
      chips,
    );
    api.getImage(id).then(
      ({ payload }) => {
        if (chosen?.side && 'imageId' in chosen.side && chosen.side.imageId === id) {
          if (payload.caption) caption.textContent = payload.caption;
          replace(chips, labelChips(payload));
        }
      },
      () => undefined,
    );
    if (!quiet) onChange();
  }

  return {
    element,
    /** @returns {DistanceSide | undefined} */
    value: () => chosen?.side,
    setId,
    release,
  };
}

/**
 * @param {number} x
 * @param {number} [digits]
 */
function fixed(x, digits = 4) {
  return x.toFixed(digits);
}

/**
 * One tower's row: its distance on a meter marked with its thresholds, its verdict, and its calibration.
 * @param {'robust' | 'clean'} role
 * @param {TowerDistance} t
 */
function towerRow(role, t) {
  const c = t.calibration;
  const max = Math.max(0.6, Math.min(2, t.distance * 1.25));
  return h(
    'tr',
    { 'data-encoder': role },
    h('th', { scope: 'row' }, TOWER_NAMES[role], h('span', { class: 'muted model-id' }, t.model)),
    h(
      'td',
      { class: 'distance-cell' },
      h('span', { class: 'distance-value' }, fixed(t.distance)),
      h('meter', {
        min: 0,
        max,
        value: Math.min(t.distance, max),
        low: c?.thresholds.sameItem,
        high: c?.thresholds.sameKind,
        optimum: 0,
        title: '1 − cos of the two embeddings',
      }),
    ),
    h(
      'td',
      {},
      t.verdict
        ? h('span', { class: `verdict ${VERDICT_CLASSES[t.verdict] ?? ''}` }, t.verdict)
        : h('span', { class: 'muted' }, 'no verdict'),
    ),
    h(
      'td',
      { class: 'calibration-cell' },
      c
        ? [
            `same item ≤ ${fixed(c.thresholds.sameItem)} · same kind ≤ ${fixed(c.thresholds.sameKind)}`,
            h(
              'span',
              { class: 'muted' },
              `held out (seed ${c.heldOut.seed}): same item recall ${formatPercent(c.heldOut.sameItem.recall)}, ` +
                `specificity ${formatPercent(c.heldOut.sameItem.specificity)}; three-way accuracy ` +
                formatPercent(c.heldOut.accuracy),
            ),
          ]
        : h('span', { class: 'muted' }, t.uncalibrated ?? 'not calibrated'),
    ),
  );
}

/** @param {DistanceResponse} r */
function resultView(r) {
  return [
    h(
      'p',
      { class: 'compare-verdict' },
      'Verdict of the robust tower: ',
      r.verdict
        ? h('strong', { class: `verdict ${VERDICT_CLASSES[r.verdict] ?? ''}`, 'data-verdict': r.verdict }, r.verdict)
        : h('strong', {}, 'none (the robust tower is not calibrated)'),
    ),
    h(
      'table',
      { class: 'compare-table' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', { scope: 'col' }, 'Tower'),
          h('th', { scope: 'col' }, 'Distance (1 − cos)'),
          h('th', { scope: 'col' }, 'Verdict'),
          h('th', { scope: 'col' }, 'Thresholds, calibrated on the synthetic catalog'),
        ),
      ),
      h('tbody', {}, towerRow('robust', r.towers.robust), towerRow('clean', r.towers.clean)),
    ),
    h('p', { class: 'muted' }, `Answered in ${r.tookMs} ms.`),
  ];
}

/**
 * Renders the compare page into `main`.
 * @param {HTMLElement} main
 * @returns {Page}
 */
export function mountCompare(main) {
  /** @type {AbortController | undefined} */
  let controller;
  const result = h('section', { class: 'compare-result', 'aria-live': 'polite', 'aria-label': 'Distance' });
  const button = h(
    'button',
    { type: 'button', class: 'button primary', disabled: true, onclick: () => void compare() },
    'Compare',
  );
  const changed = () => {
    button.disabled = !(a.value() && b.value());
    replace(result);
  };
  const a = createSlot('a', 'First image', changed);
  const b = createSlot('b', 'Second image', changed);

  async function compare() {
    const [sa, sb] = [a.value(), b.value()];
    if (!sa || !sb) return;
    controller?.abort();
    controller = new AbortController();
    const { signal } = controller;
    if ('imageId' in sa && 'imageId' in sb) {
      const url = `/compare?a=${sa.imageId}&b=${sb.imageId}`;
      if (location.pathname + location.search !== url) history.pushState(null, '', url);
    }
    result.setAttribute('aria-busy', 'true');
    replace(result, h('p', { class: 'muted' }, 'Measuring…'));
    try {
      const response = await api.distance(sa, sb, signal);
      replace(result, resultView(response));
    } catch (error) {
      if (signal.aborted) return;
      const { title, detail, code } = api.describeError(error);
      replace(
        result,
        h(
          'div',
          { class: 'alert', role: 'alert' },
          h('p', { class: 'alert-title' }, `Could not compare: ${title}`),
          h('p', {}, detail),
          code && h('p', { class: 'alert-code' }, code),
        ),
      );
    } finally {
      result.removeAttribute('aria-busy');
    }
  }

  function fromUrl() {
    const params = new URLSearchParams(location.search);
    const [ia, ib] = [params.get('a') ?? '', params.get('b') ?? ''];
    if (IMAGE_ID.test(ia)) a.setId(ia, true);
    if (IMAGE_ID.test(ib)) b.setId(ib, true);
    button.disabled = !(a.value() && b.value());
    if (IMAGE_ID.test(ia) && IMAGE_ID.test(ib)) void compare();
  }

  replace(
    main,
    h(
      'div',
      { class: 'page compare-page' },
      h(
        'header',
        { class: 'page-head' },
        h('h1', {}, 'Compare two images'),
        h(
          'p',
          { class: 'lede' },
          'The distance of two images under both towers, and what it means: the same item photographed again, the ',
          'same kind of part with the same kind of defect, or different. The verdicts come from thresholds fitted ',
          "per tower on the synthetic catalog, where the generator knows the truth; the robust tower's is the answer.",
        ),
      ),
      h('div', { class: 'compare-slots' }, a.element, b.element),
      h('div', { class: 'compare-actions' }, button),
      result,
    ),
  );
  fromUrl();
  return {
    title: 'Compare',
    update: fromUrl,
    destroy: () => {
      controller?.abort();
      a.release();
      b.release();
    },
  };
}
