/**
 * The search page's query bar — the drop zone, the description field, the encoder, k and the label filters — and the
 * page-wide inputs: drop anywhere, paste anywhere, `/` to type a description. The bar reports what the user did
 * through callbacks and shows whatever state it is given; it keeps none of its own.
 */
import { h, replace } from './dom.js';
import { ENCODER_MODES, FILTER_FIELDS, K_CHOICES, QUALITY_MODES, emptyFilters, filterOf } from './state.js';

/** @typedef {import('./state.js').QualityMode} QualityMode */

/** @type {Record<QualityMode, string>} */
const QUALITY_LABELS = { any: 'Any', ok: 'Hide low quality', low: 'Only low quality' };

/** @typedef {import('./state.js').SearchState} SearchState */
/** @typedef {import('./state.js').EncoderMode} EncoderMode */

/** @type {Record<EncoderMode, string>} */
const MODE_LABELS = { robust: 'Robust', clean: 'Clean', both: 'Side by side' };

/**
 * @typedef {object} QueryBarActions
 * @property {(file: File) => void} onFile an image chosen, dropped or pasted
 * @property {(text: string) => void} onText a description submitted (trimmed, maybe empty)
 * @property {(patch: Partial<SearchState>) => void} onChange an option changed
 * @property {() => SearchState} current the state the controls show, for a filter change to build on
 */

/**
 * A drop zone that is also a file chooser: a label holding a visually hidden file input, which reports the chosen
 * file and is ready for the next (the same file chosen twice counts twice).
 * @param {{ id: string, name: string, hint: string, onFile: (file: File) => void }} options
 */
export function fileDropzone({ id, name, hint, onFile }) {
  const fileInput = h('input', {
    type: 'file',
    id,
    name,
    accept: 'image/*',
    class: 'sr-only',
    onchange: () => {
      const file = fileInput.files?.[0];
      fileInput.value = '';
      if (file) onFile(file);
    },
  });
  return h(
    'label',
    { class: 'dropzone' },
    fileInput,
    h('span', { class: 'dropzone-icon', 'aria-hidden': 'true' }, '⤒'),
    h(
      'span',
      { class: 'dropzone-text' },
      h('span', { class: 'dropzone-title' }, 'Drop an image or choose a file'),
      h('span', { class: 'dropzone-hint' }, hint),
    ),
  );
}

/**
 * @param {QueryBarActions} actions
 * @param {AbortSignal} signal ends the page-wide listeners
 */
export function createQueryBar({ onFile, onText, onChange, current }, signal) {
  const dropzone = fileDropzone({
    id: 'image-file',
    name: 'image',
    hint: 'PNG, JPEG or WebP · paste with Ctrl+V',
    onFile,
  });
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
    {
      class: 'text-search',
      role: 'search',
      onsubmit: (/** @type {SubmitEvent} */ event) => {
        event.preventDefault();
        onText(textInput.value.trim());
      },
    },
    h('label', { for: 'text-query', class: 'field-label' }, 'Search by description'),
    h('div', { class: 'input-group' }, textInput, h('button', { type: 'submit', class: 'button primary' }, 'Search')),
  );

  const encoderInputs = ENCODER_MODES.map((mode) =>
    h('input', { type: 'radio', name: 'encoder', value: mode, onchange: () => onChange({ encoder: mode }) }),
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
  const kSelect = h('select', { id: 'k', name: 'k', onchange: () => onChange({ k: Number(kSelect.value) }) });
  const filterSelects = FILTER_FIELDS.map(({ key }) =>
    h(
      'select',
      {
        id: `filter-${key}`,
        name: key,
        onchange: (/** @type {Event} */ event) => {
          const select = /** @type {HTMLSelectElement} */ (event.currentTarget);
          onChange({ filters: { ...current().filters, [key]: select.value } });
        },
      },
      h('option', { value: '' }, 'Any'),
    ),
  );
  const qualitySelect = h(
    'select',
    {
      id: 'filter-quality',
      name: 'quality',
      title: 'Photos the quality head graded low at ingest: blurred, noisy, compressed hard, badly exposed or flat',
      onchange: () => onChange({ quality: /** @type {QualityMode} */ (qualitySelect.value) }),
    },
    QUALITY_MODES.map((mode) => h('option', { value: mode }, QUALITY_LABELS[mode])),
  );
  const clearFilters = h(
    'button',
    { type: 'button', class: 'button subtle', onclick: () => onChange({ filters: emptyFilters(), quality: 'any' }) },
    'Clear filters',
  );
  const facetNote = h('p', { class: 'facet-note', hidden: true });

  const element = h(
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
      h(
        'div',
        { class: 'field' },
        h('label', { for: 'filter-quality', class: 'field-label' }, 'Photo quality'),
        qualitySelect,
      ),
      h('div', { class: 'field field-end' }, clearFilters),
    ),
    facetNote,
  );
  bindPageInputs(dropzone, textInput, onFile, signal);

  /** Shows `state` in the controls; a filter value not among the facets yet gets an option of its own. */
  function sync(/** @type {SearchState} */ state) {
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
    qualitySelect.value = state.quality;
    qualitySelect.classList.toggle('is-set', state.quality !== 'any');
    clearFilters.disabled = !filterOf(state.filters) && state.quality === 'any';
    textInput.value = state.query?.kind === 'text' ? state.query.text : '';
  }

  /** Adds the archive's label values to the filter menus. */
  function fillFacets(/** @type {import('./api.js').Facets} */ facets) {
    facetNote.hidden = true;
    FILTER_FIELDS.forEach(({ field }, i) => {
      const select = /** @type {HTMLSelectElement} */ (filterSelects[i]);
      const values = facets.fields[field] ?? [];
      const present = new Set([...select.options].map((o) => o.value));
      select.append(...values.filter((v) => !present.has(v)).map((v) => h('option', { value: v }, v)));
    });
  }

  /** @param {string} reason */
  function facetsUnavailable(reason) {
    facetNote.hidden = false;
    facetNote.textContent = `Filters unavailable (${reason.toLowerCase()}).`;
  }

  return { element, sync, fillFacets, facetsUnavailable, focusText: () => textInput.focus() };
}

/**
 * @param {HTMLElement} dropzone highlighted while files are dragged over the page
 * @param {HTMLInputElement} textInput focused by `/`
 * @param {(file: File) => void} onFile
 * @param {AbortSignal} signal
 */
function bindPageInputs(dropzone, textInput, onFile, signal) {
  let dragDepth = 0;
  const on = (/** @type {string} */ type, /** @type {(event: any) => void} */ listener) =>
    document.addEventListener(type, listener, { signal });
  on('dragenter', (/** @type {DragEvent} */ event) => {
    if (!hasFiles(event)) return;
    dragDepth += 1;
    dropzone.classList.add('is-dragging');
  });
  on('dragleave', (/** @type {DragEvent} */ event) => {
    if (!hasFiles(event)) return;
    dragDepth = Math.max(0, dragDepth - 1);
    if (dragDepth === 0) dropzone.classList.remove('is-dragging');
  });
  on('dragover', (/** @type {DragEvent} */ event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    if (event.dataTransfer) event.dataTransfer.dropEffect = 'copy';
  });
  on('drop', (/** @type {DragEvent} */ event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    dragDepth = 0;
    dropzone.classList.remove('is-dragging');
    const file = event.dataTransfer?.files[0];
    if (file) onFile(file);
  });
  on('paste', (/** @type {ClipboardEvent} */ event) => {
    const file = [...(event.clipboardData?.files ?? [])].find((f) => f.type.startsWith('image/'));
    if (!file) return;
    event.preventDefault();
    onFile(file);
  });
  on('keydown', (/** @type {KeyboardEvent} */ event) => {
    if (event.key !== '/' || event.ctrlKey || event.metaKey || event.altKey || isEditable(event.target)) return;
    event.preventDefault();
    textInput.focus();
    textInput.select();
  });
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
