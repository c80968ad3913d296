/**
 * The audits page: every stored robustness audit, newest first, with its headline numbers per tower at each attack
 * budget ε, and links to the full HTML report and the JSON.
 */
import * as api from './api.js';
import { h, replace } from './dom.js';
import { formatDateTime, formatDuration, formatEpsilon, formatPercent, plural } from './format.js';

/** @typedef {import('./app.js').Page} Page */
/** @typedef {import('./api.js').AuditSummary} AuditSummary */
/** @typedef {import('./api.js').EncoderRole} EncoderRole */

/** @type {readonly EncoderRole[]} */
const ROLES = ['robust', 'clean'];
/** @type {readonly { key: 'overlapAtK' | 'top1Retention' | 'partDefectAtK' | 'defectiveDefectAtK', label: string }[]} */
const METRICS = [
  { key: 'partDefectAtK', label: 'same part+defect@k' },
  { key: 'defectiveDefectAtK', label: 'same defect@k, defective' },
  { key: 'overlapAtK', label: 'overlap@k' },
  { key: 'top1Retention', label: 'top-1 retention' },
];

/**
 * Renders the audits page into `main` and loads the list.
 * @param {HTMLElement} main
 * @returns {Page}
 */
export function mountAudits(main) {
  /** @type {AbortController | undefined} */
  let controller;
  const list = h('div', { class: 'audit-list' });
  replace(
    main,
    h(
      'div',
      { class: 'page audits-page' },
      h(
        'header',
        { class: 'page-head' },
        h('h1', {}, 'Robustness audits'),
        h(
          'p',
          { class: 'lede' },
          'Each audit attacks query images with a white-box attack (PGD or APGD) at growing budgets ε and searches ',
          'again with both towers. Higher numbers mean more of the retrieval survives the attack.',
        ),
        h(
          'dl',
          { class: 'legend' },
          h('dt', {}, 'same part+defect@k'),
          h(
            'dd',
            {},
            "share of the attacked query's top-k with the query's part and defect: the lookalikes users want",
          ),
          h('dt', {}, 'same defect@k, defective'),
          h('dd', {}, 'the same for the defect alone, over queries that show a defect'),
          h('dt', {}, 'overlap@k'),
          h('dd', {}, "share of the clean query's top-k still in the attacked query's top-k"),
          h('dt', {}, 'top-1 retention'),
          h('dd', {}, 'share of queries whose first hit stays first'),
        ),
      ),
      list,
    ),
  );
  void load();

  return {
    title: 'Audits',
    update: () => void load(),
    destroy: () => controller?.abort(),
  };

  async function load() {
    controller?.abort();
    const current = new AbortController();
    controller = current;
    list.setAttribute('aria-busy', 'true');
    replace(list, h('p', { class: 'muted', role: 'status' }, 'Loading audits…'));
    try {
      const audits = await api.listAudits(current.signal);
      replace(list, audits.length ? audits.map(auditCard) : emptyState());
    } catch (error) {
      if (current.signal.aborted) return;
      const { title, detail, code } = api.describeError(error);
      replace(
        list,
        h(
          'div',
          { class: 'alert', role: 'alert' },
          h('p', { class: 'alert-title' }, `Could not load audits: ${title}`),
          h('p', {}, detail),
          code && h('p', { class: 'alert-code' }, code),
        ),
      );
    } finally {
      if (controller === current) list.removeAttribute('aria-busy');
    }
  }
}

function emptyState() {
  return h(
    'div',
    { class: 'empty' },
    h('h2', {}, 'No audits yet'),
    h(
      'p',
      {},
      'The nightly audit (AUDIT_CRON, 03:00 by default) lists its first result here once it finishes. ',
      'Each one links to a full report with per-query detail.',
    ),
  );
}

/** @param {AuditSummary} audit */
function auditCard(audit) {
  const headingId = `audit-${audit.id}`;
  const epsilons = [...new Set(audit.headline.map((row) => row.epsilon))].sort((a, b) => a - b);
  /** @type {Map<string, AuditSummary['headline'][number]>} */
  const byCell = new Map(audit.headline.map((row) => [`${row.encoder}@${row.epsilon}`, row]));
  const { attack } = audit;
  const took = formatDuration(audit.startedAt, audit.finishedAt);
  const meta = [
    `${attack.name.toUpperCase()} ${attack.norm === 'linf' ? 'ℓ∞' : 'ℓ2'}`,
    `${plural(attack.steps, 'step')} × ${plural(attack.restarts, 'restart')}`,
    attack.stepSize !== undefined ? `step size ${formatEpsilon(attack.stepSize)}` : '',
    `seed ${attack.seed}`,
    plural(audit.queries, 'query', 'queries'),
    took ? `ran ${took}` : '',
  ].filter(Boolean);
  return h(
    'article',
    { class: 'audit', 'aria-labelledby': headingId, 'data-audit-id': audit.id },
    h(
      'header',
      { class: 'audit-head' },
      h(
        'div',
        {},
        h('h2', { id: headingId }, h('time', { datetime: audit.startedAt }, formatDateTime(audit.startedAt))),
        h('p', { class: 'audit-meta' }, meta.join(' · ')),
      ),
      h(
        'p',
        { class: 'links' },
        h(
          'a',
          { class: 'button', href: api.auditPath(audit.id, '/report'), target: '_blank', rel: 'noopener' },
          'Report',
        ),
        h('a', { class: 'button subtle', href: api.auditPath(audit.id), target: '_blank', rel: 'noopener' }, 'JSON'),
      ),
    ),
    summarySentence(audit, epsilons, byCell),
    twoAfcSentence(audit),
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { class: 'metrics' },
        h('caption', { class: 'sr-only' }, `Headline numbers of the audit started ${formatDateTime(audit.startedAt)}`),
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('th', { scope: 'col' }, 'Metric'),
            h('th', { scope: 'col' }, 'Tower'),
            epsilons.map((epsilon) => h('th', { scope: 'col', class: 'num' }, `ε = ${formatEpsilon(epsilon)}`)),
          ),
        ),
        h(
          'tbody',
          {},
          METRICS.filter(({ key }) => audit.headline.some((row) => row[key] !== undefined)).flatMap(({ key, label }) =>
            ROLES.map((role, i) =>
              h(
                'tr',
                { class: i === 0 ? 'group-start' : '' },
                i === 0 && h('th', { scope: 'rowgroup', rowspan: ROLES.length }, label),
                h('th', { scope: 'row', class: `tower tower-${role}` }, role),
                epsilons.map((epsilon) => {
                  const value = byCell.get(`${role}@${epsilon}`)?.[key];
                  return value === undefined
                    ? h('td', { class: 'num' }, '—')
                    : h('td', { class: `num heat heat-${Math.round(value * 10)}` }, formatPercent(value));
                }),
              ),
            ),
          ),
        ),
      ),
    ),
  );
}

/**
 * One sentence with the numbers a reader looks for first: what each tower keeps at the largest budget.
 * @param {AuditSummary} audit
 * @param {number[]} epsilons
 * @param {Map<string, AuditSummary['headline'][number]>} byCell
 */
function summarySentence(audit, epsilons, byCell) {
  const largest = epsilons.at(-1);
  if (largest === undefined || largest === 0) return null;
  const robust = byCell.get(`robust@${largest}`);
  const clean = byCell.get(`clean@${largest}`);
  if (!robust || !clean) return null;
  return h(
    'p',
    { class: 'audit-summary' },
    `At ε = ${formatEpsilon(largest)} the robust tower keeps `,
    h('strong', {}, formatPercent(robust.overlapAtK)),
    ' of its top-k and the clean tower ',
    h('strong', {}, formatPercent(clean.overlapAtK)),
    ` (top-1 retention ${formatPercent(robust.top1Retention)} vs ${formatPercent(clean.top1Retention)}).`,
    robust.partDefectAtK !== undefined && clean.partDefectAtK !== undefined
      ? [
          " Of the attacked queries' top-k, ",
          h('strong', {}, formatPercent(robust.partDefectAtK)),
          ' share their part and defect with the robust tower, ',
          h('strong', {}, formatPercent(clean.partDefectAtK)),
          ' with the clean one.',
        ]
      : null,
  );
}

/**
 * The perceptual part in one sentence: 2AFC accuracy at ℓ∞ 4/255, clean and with the reference attacked.
 * @param {AuditSummary} audit
 */
function twoAfcSentence(audit) {
  const at = (/** @type {EncoderRole} */ role) => audit.twoAfc?.find((r) => r.encoder === role && r.norm === 'linf');
  const robust = at('robust');
  const clean = at('clean');
  if (!robust || !clean) return null;
  return h(
    'p',
    { class: 'audit-two-afc' },
    `2AFC (is the reference closer to its re-render?), ℓ∞ ${formatEpsilon(robust.epsilon)}: the robust tower `,
    h('strong', {}, `${formatPercent(robust.clean)} → ${formatPercent(robust.attacked)}`),
    ', the clean tower ',
    h('strong', {}, `${formatPercent(clean.clean)} → ${formatPercent(clean.attacked)}`),
    ' (clean → attacked).',
  );
}
