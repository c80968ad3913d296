/**
 * The audit's HTML report: one self-contained page (inline CSS, SVG charts rendered on the server, images as data
 * URLs) that reads the same on a laptop, in a CI artefact or attached to a ticket.
 */
import {
  ENCODER_ROLES,
  type AuditMetrics,
  type AuditResult,
  type AuditSummary,
  type EncoderRole,
} from '@lookalike/core';
import { curveSpec, renderSvg, trendSpec, type CurvePoint } from './charts.js';
import { exampleEpsilon } from './batch.js';
import { perceptualSection } from './report-perceptual.js';
import { qualitySection } from './report-quality.js';
import { esc, pct } from './report-format.js';

/** ε as a fraction of 255 when it is one (4/255), else as a decimal. */
export function formatEpsilon(eps: number): string {
  if (eps === 0) return '0';
  const n = eps * 255;
  return Math.abs(n - Math.round(n)) < 1e-6 ? `${Math.round(n)}/255` : eps.toPrecision(3);
}
const num = (x: number | undefined, digits = 3) => (x === undefined || Number.isNaN(x) ? '—' : x.toFixed(digits));

const ROWS: { label: string; value: (m: AuditMetrics) => string; better: 'higher' | 'lower' }[] = [
  { label: 'overlap@k (clean vs attacked top-k)', value: (m) => pct(m.overlapAtK), better: 'higher' },
  { label: 'top-1 retention', value: (m) => pct(m.top1Retention), better: 'higher' },
  { label: 'mean rank of the clean top-1', value: (m) => num(m.meanRankOfCleanTop1, 1), better: 'lower' },
  { label: 'cosine drift 1 − cos(φ(x+δ), φ(x))', value: (m) => num(m.cosineDrift), better: 'lower' },
  {
    label: 'precision@k, attacked (same part + defect)',
    value: (m) => pct(m.precisionAtK?.attacked),
    better: 'higher',
  },
  { label: 'targeted success@k', value: (m) => pct(m.targetedSuccessAtK), better: 'lower' },
];

/** The sentence at the top of the report: how much retrieval each tower keeps at the headline budget. */
export function headline(result: AuditResult): string {
  const eps = exampleEpsilon(result.epsilons);
  const at = (e: EncoderRole) => result.metrics.find((m) => m.encoder === e && m.epsilon === eps);
  const r = at('robust');
  const c = at('clean');
  if (!r || !c) return 'No attacked budget was audited.';
  const ratio = c.overlapAtK > 0 ? ` (${(r.overlapAtK / c.overlapAtK).toFixed(1)}×)` : '';
  return (
    `Under ${result.attack.name.toUpperCase()}-${result.attack.steps} at ε = ${formatEpsilon(eps)} (${result.attack.norm === 'linf' ? 'ℓ∞' : 'ℓ2'}), ` +
    `the robust tower keeps ${pct(r.overlapAtK)} of its top-${result.k} neighbours${ratio}; the clean tower keeps ${pct(c.overlapAtK)}.`
  );
}

/**
 * The sentence on label precision at the headline budget: how many of each tower's top-k share the query's defect,
 * and its part and defect, under attack. Undefined when no query had labels or no attacked budget was audited.
 */
export function labelHeadline(result: AuditResult): string | undefined {
  const eps = exampleEpsilon(result.epsilons);
  const at = (e: EncoderRole) => result.metrics.find((m) => m.encoder === e && m.epsilon === eps);
  const r = at('robust');
  const c = at('clean');
  if (!r?.defectPrecisionAtK || !c?.defectPrecisionAtK || eps === 0) return undefined;
  const both = (m: AuditMetrics, pair: 'attacked' | 'clean') =>
    `${pct(m.defectPrecisionAtK?.[pair])} and ${pct(m.precisionAtK?.[pair])}`;
  return (
    `At ε = ${formatEpsilon(eps)}, ${pct(r.defectPrecisionAtK.attacked)} of the robust tower's top-${result.k} ` +
    `neighbours share the query's defect and ${pct(r.precisionAtK?.attacked)} its part and defect ` +
    `(${both(r, 'clean')} unattacked); of the clean tower's, ${both(c, 'attacked')} (${both(c, 'clean')}).`
  );
}

/** Rows of the label-precision table: the attacked value at each ε (at ε = 0, the clean query's). */
const LABEL_ROWS: { label: string; pair: (m: AuditMetrics) => { clean: number; attacked: number } | undefined }[] = [
  { label: 'same part + defect', pair: (m) => m.precisionAtK },
  { label: 'same defect', pair: (m) => m.defectPrecisionAtK },
  { label: 'same defect, defective queries only', pair: (m) => m.defectivePrecisionAtK },
];

/** The label-precision section: its table, what it averaged over, and what it left out. */
function labelSection(result: AuditResult): string {
  const eps = result.epsilons;
  const counts = result.metrics.find((m) => m.labelCounts)?.labelCounts;
  if (!counts) return '<p class="hint">This audit predates label precision.</p>';
  if (!counts.labelled)
    return `<p class="hint">None of the ${counts.unlabelled} queries has part and defect labels, so no label precision was measured.</p>`;
  // Without an unattacked budget, the clean query's precision gets a column of its own.
  const cleanColumn = !eps.includes(0);
  const cell = (enc: EncoderRole, e: number, value: (m: AuditMetrics) => string) => {
    const m = result.metrics.find((x) => x.encoder === enc && x.epsilon === e);
    return `<td>${m ? esc(value(m)) : '—'}</td>`;
  };
  const group = (label: string, attacked: (m: AuditMetrics) => string, clean: (m: AuditMetrics) => string) =>
    ENCODER_ROLES.map(
      (enc, i) =>
        `<tr class="${enc}">${i === 0 ? `<th rowspan="2" scope="rowgroup">${esc(label)}</th>` : ''}<td><span class="dot ${enc}"></span>${enc}</td>${
          cleanColumn ? cell(enc, eps[0]!, clean) : ''
        }${eps.map((e) => cell(enc, e, attacked)).join('')}</tr>`,
    ).join('');
  const rows = LABEL_ROWS.map((row) =>
    group(
      row.label,
      (m) => pct(row.pair(m)?.attacked),
      (m) => pct(row.pair(m)?.clean),
    ),
  ).join('');
  const hitsMissing = result.metrics.some(
    (m) => (m.labelCounts?.unlabelledHits.clean ?? 0) + (m.labelCounts?.unlabelledHits.attacked ?? 0) > 0,
  );
  const unlabelledHits = hitsMissing
    ? group(
        'top-k hits without labels (counted as not sharing)',
        (m) => String(m.labelCounts?.unlabelledHits.attacked ?? '—'),
        (m) => String(m.labelCounts?.unlabelledHits.clean ?? '—'),
      )
    : '';
  const head = `<th>neighbours with the query's</th><th>encoder</th>${cleanColumn ? '<th>clean query</th>' : ''}${eps
    .map((e) => `<th>ε = ${esc(formatEpsilon(e))}</th>`)
    .join('')}`;
  const left = [
    counts.unlabelled
      ? `${counts.unlabelled} ${counts.unlabelled === 1 ? 'query' : 'queries'} without part and defect labels left out`
      : 'no query left out for lack of labels',
    hitsMissing ? 'some top-k hits had no labels (last row)' : 'every top-k hit had labels',
  ].join('; ');
  return `<p class="hint">Precision@${result.k}: the share of a query's top-${result.k} neighbours (itself left out) whose labels equal its own, averaged over ${counts.labelled} labelled ${counts.labelled === 1 ? 'query' : 'queries'} (${counts.defective} with a defect); ${esc(left)}. Higher is better; at ε = 0 the query is clean.</p>
<table class="labels"><thead><tr>${head}</tr></thead><tbody>${rows}${unlabelledHits}</tbody></table>`;
}

/** Renders the report. `history` holds earlier audits (any order) for the trend chart. */
export async function renderReport(result: AuditResult, history: readonly AuditSummary[] = []): Promise<string> {
  const eps255 = (e: number) => e * 255;
  const curve = (pick: (m: AuditMetrics) => number | undefined, series?: string): CurvePoint[] =>
    result.metrics.flatMap((m) => {
      const v = pick(m);
      return v === undefined || Number.isNaN(v)
        ? []
        : [{ encoder: m.encoder, eps255: eps255(m.epsilon), value: v, ...(series ? { series } : {}) }];
    });
  const charts = await Promise.all([
    renderSvg(
      curveSpec(
        `Overlap@${result.k} vs ε`,
        `overlap@${result.k}`,
        curve((m) => m.overlapAtK),
        [0, 1],
      ),
    ),
    renderSvg(
      curveSpec(
        'Top-1 retention vs ε',
        'top-1 retention',
        curve((m) => m.top1Retention),
        [0, 1],
      ),
    ),
    renderSvg(
      curveSpec(
        `Precision@${result.k} (same part + defect) vs ε`,
        `precision@${result.k}`,
        [...curve((m) => m.precisionAtK?.attacked, 'attacked'), ...curve((m) => m.precisionAtK?.clean, 'clean query')],
        [0, 1],
      ),
    ),
    renderSvg(
      curveSpec(
        `Precision@${result.k} (same defect) vs ε, attacked`,
        `precision@${result.k}`,
        [
          ...curve((m) => m.defectPrecisionAtK?.attacked, 'all queries'),
          ...curve((m) => m.defectivePrecisionAtK?.attacked, 'defective only'),
        ],
        [0, 1],
      ),
    ),
    renderSvg(
      curveSpec(
        'Cosine drift vs ε',
        '1 − cos',
        curve((m) => m.cosineDrift),
      ),
    ),
    renderSvg(
      curveSpec(
        'Rank of the clean top-1 vs ε',
        'mean rank',
        curve((m) => m.meanRankOfCleanTop1),
      ),
    ),
    ...(result.metrics.some((m) => m.targetedSuccessAtK !== undefined)
      ? [
          renderSvg(
            curveSpec(
              `Targeted success@${result.k} vs ε`,
              'success rate',
              curve((m) => m.targetedSuccessAtK),
              [0, 1],
            ),
          ),
        ]
      : []),
  ]);
  const headEps = exampleEpsilon(result.epsilons);
  const past = [...history.filter((h) => h.id !== result.id), toSummary(result)].sort((a, b) =>
    a.startedAt.localeCompare(b.startedAt),
  );
  const trendPoints = past.flatMap((h) =>
    h.headline
      .filter((x) => Math.abs(x.epsilon - headEps) < 1e-9)
      .map((x) => ({ encoder: x.encoder, date: h.startedAt, value: x.overlapAtK })),
  );
  const trend =
    past.length > 1
      ? await renderSvg(trendSpec(`Overlap@k at ε = ${formatEpsilon(headEps)} across audits`, trendPoints))
      : '';

  const eps = result.epsilons;
  const table = `<table><thead><tr><th>metric</th><th>encoder</th>${eps.map((e) => `<th>ε = ${esc(formatEpsilon(e))}</th>`).join('')}</tr></thead><tbody>${ROWS.map(
    (row) =>
      (['robust', 'clean'] as const)
        .map(
          (enc, i) =>
            `<tr class="${enc}">${i === 0 ? `<th rowspan="2" scope="rowgroup">${esc(row.label)} <span class="hint">${row.better} is better</span></th>` : ''}<td><span class="dot ${enc}"></span>${enc}</td>${eps
              .map((e) => {
                const m = result.metrics.find((x) => x.encoder === enc && x.epsilon === e);
                return `<td>${m ? esc(row.value(m)) : '—'}</td>`;
              })
              .join('')}</tr>`,
        )
        .join(''),
  ).join('')}</tbody></table>`;

  const examples = result.examples
    .map((ex) => {
      const cols = (['robust', 'clean'] as const)
        .map((enc) => {
          const e = ex.byEncoder[enc];
          if (!e) return '';
          const hits = (list: typeof e.before, other: typeof e.before) =>
            `<ol class="hits">${list
              .map(
                (h) =>
                  `<li class="${other.some((o) => o.id === h.id) ? 'kept' : 'lost'}" title="${esc(h.caption ?? h.id)}">${h.thumbnail ? `<img src="${h.thumbnail}" alt="">` : ''}<span>${h.score.toFixed(3)}</span></li>`,
              )
              .join('')}</ol>`;
          return `<div class="enc"><h4><span class="dot ${enc}"></span>${enc}</h4>
<div class="imgs"><figure><img src="${e.adversarial}" alt="adversarial image"><figcaption>adversarial</figcaption></figure><figure><img src="${e.perturbation}" alt="perturbation"><figcaption>δ, amplified</figcaption></figure></div>
<p class="label">top-${result.k} before</p>${hits(e.before, e.after)}<p class="label">top-${result.k} after <span class="hint">(red: not in the clean top-k)</span></p>${hits(e.after, e.before)}</div>`;
        })
        .join('');
      return `<section class="example"><div class="query"><figure><img src="${ex.clean}" alt="query"><figcaption>query${ex.caption ? `: ${esc(ex.caption)}` : ''}<br><code>${esc(ex.queryId.slice(0, 12))}</code> · ε = ${esc(formatEpsilon(ex.epsilon))}</figcaption></figure></div>${cols}</section>`;
    })
    .join('');

  const a = result.attack;
  const labelLine = labelHeadline(result);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Lookalike robustness audit ${esc(result.id)}</title>
<style>
:root{--fg:#1f2328;--muted:#59636e;--line:#d0d7de;--robust:#1f6feb;--clean:#d1242f;--bg:#fff;--soft:#f6f8fa}
*{box-sizing:border-box}body{margin:0;font:14px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:1180px;margin:0 auto;padding:24px}h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:32px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}
.meta{color:var(--muted);margin:0 0 16px}.headline{font-size:16px;background:var(--soft);border-left:4px solid var(--robust);padding:12px 16px;margin:16px 0}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:right}th:first-child,td:first-child,thead th:nth-child(2){text-align:left}
tbody th{text-align:left;font-weight:500;vertical-align:top}.hint{color:var(--muted);font-weight:400;font-size:12px}
.dot{display:inline-block;width:9px;height:9px;border-radius:50%;margin-right:6px}.dot.robust{background:var(--robust)}.dot.clean{background:var(--clean)}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:12px}.charts svg{max-width:100%;height:auto}
.example{display:grid;grid-template-columns:160px 1fr 1fr;gap:16px;border:1px solid var(--line);border-radius:8px;padding:12px;margin:12px 0}
figure{margin:0}figure img{width:128px;height:128px;image-rendering:pixelated;border:1px solid var(--line);border-radius:4px}figcaption{font-size:12px;color:var(--muted)}
.enc h4{margin:0 0 6px}.imgs{display:flex;gap:8px}.label{margin:8px 0 2px;font-size:12px;color:var(--muted)}
.hits{display:flex;flex-wrap:wrap;gap:4px;list-style:none;padding:0;margin:0}.hits li{display:flex;flex-direction:column;align-items:center;font-size:11px;border:2px solid transparent;border-radius:4px;padding:1px}
.hits li.lost{border-color:var(--clean)}.hits img{width:48px;height:48px;border-radius:3px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px}dt{color:var(--muted)}dd{margin:0}
@media (max-width:800px){.example{grid-template-columns:1fr}}
</style></head>
<body><main>
<h1>Robustness audit</h1>
<p class="meta">${esc(result.id)} · ${esc(new Date(result.startedAt).toUTCString())} · ${result.queries} queries · catalog of ${result.catalogSize} images</p>
<p class="headline">${esc(headline(result))}${labelLine ? `<br>${esc(labelLine)}` : ''}</p>
<h2>Summary</h2>
${table}
<h2>Neighbours that share the query's labels</h2>
${labelSection(result)}
<h2>The towers as a perceptual metric (2AFC)</h2>
${perceptualSection(result)}
<h2>The quality gate under attack</h2>
${qualitySection(result)}
<h2>Curves</h2>
<div class="charts">${charts.join('')}</div>
${trend ? `<h2>Trend</h2><div class="charts">${trend}</div>` : ''}
<h2>Examples</h2>
${examples || '<p class="hint">No examples were kept.</p>'}
<h2>How this was measured</h2>
<dl>
<dt>attack</dt><dd>${esc(a.name.toUpperCase())}, ${a.norm === 'linf' ? 'ℓ∞' : 'ℓ2'}, ${a.steps} steps, ${a.restarts} restart(s)${a.stepSize ? `, step ${a.stepSize.toPrecision(3)}` : ''}, seed ${a.seed}; untargeted loss 1 − cos(φ(x+δ), φ(x)), in [0,1] pixel space on the search path's preprocessing</dd>
<dt>models</dt><dd>robust ${esc(result.models.robust.modelId)}, clean ${esc(result.models.clean.modelId)} (preprocessing ${esc(result.models.robust.preprocessHash)})</dd>
<dt>retrieval</dt><dd>each tower searched in the index of its own vectors; the query's own image left out; rank searched to depth ${result.depth}</dd>
<dt>labels</dt><dd>precision@k is the share of a query's top-k neighbours (itself left out) whose labels.defect, or labels.part and labels.defect, equal the query's, over k; queries without both labels are left out and counted, a neighbour without them counts as not sharing; defective queries are those whose defect is not "none"</dd>
<dt>cost</dt><dd>${result.cost.seconds.toFixed(1)} s in all, ${result.cost.secondsPerQueryPerEncoder.toFixed(2)} s per query per encoder (all ε), ${result.cost.gradientEvaluations} gradient evaluations</dd>
<dt>details</dt><dd>per-query outcomes are in the JSON of this audit (schema version ${result.schemaVersion})</dd>
</dl>
</main></body></html>
`;
}

/** The list entry of an audit. */
export function toSummary(result: AuditResult): AuditSummary {
  return {
    id: result.id,
    startedAt: result.startedAt,
    finishedAt: result.finishedAt,
    attack: result.attack,
    queries: result.queries,
    headline: result.metrics.map((m) => ({
      encoder: m.encoder,
      epsilon: m.epsilon,
      overlapAtK: m.overlapAtK,
      top1Retention: m.top1Retention,
      ...(m.precisionAtK ? { partDefectAtK: m.precisionAtK.attacked } : {}),
      ...(m.defectivePrecisionAtK ? { defectiveDefectAtK: m.defectivePrecisionAtK.attacked } : {}),
    })),
    ...(result.perceptual
      ? {
          twoAfc: result.perceptual.twoAfc.map(({ encoder, norm, epsilon, clean, attacked }) => ({
            encoder,
            norm,
            epsilon,
            clean,
            attacked,
          })),
        }
      : {}),
  };
}
