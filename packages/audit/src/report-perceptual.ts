/** The perceptual part of the HTML report: 2AFC accuracy, the attacks on the duplicate decision, flipped decisions. */
import { ENCODER_ROLES, type AuditResult, type PerceptualAudit, type TwoAfcMetrics } from '@lookalike/core';
import { esc, pct } from './report-format.js';

const budget = (m: { norm: 'linf' | 'l2'; epsilon: number }) =>
  m.norm === 'linf' ? `ℓ∞ ${Math.round(m.epsilon * 255)}/255` : `ℓ2 ${m.epsilon.toPrecision(3)}`;

/** The one-sentence 2AFC result at ℓ∞ 4/255, or undefined without a perceptual part. */
export function twoAfcHeadline(p: PerceptualAudit | undefined): string | undefined {
  const at = (encoder: string) => p?.twoAfc.find((m) => m.encoder === encoder && m.norm === 'linf');
  const r = at('robust');
  const c = at('clean');
  if (!p || !r || !c) return undefined;
  return (
    `2AFC on ${p.triplets.count} rendered triplets: the robust tower picks the re-render ${pct(r.clean)} of the time ` +
    `and ${pct(r.attacked)} with the reference attacked (${budget(r)}); the clean tower ${pct(c.clean)} and ${pct(c.attacked)}.`
  );
}

function twoAfcTable(p: PerceptualAudit): string {
  const budgets = [...new Map(p.twoAfc.map((m) => [`${m.norm}|${m.epsilon}`, m])).values()];
  const at = (encoder: string, b: TwoAfcMetrics) =>
    p.twoAfc.find((m) => m.encoder === encoder && m.norm === b.norm && m.epsilon === b.epsilon);
  const rows = (label: string, pick: (m: TwoAfcMetrics) => { clean: number; attacked: number } | undefined) =>
    ENCODER_ROLES.map((enc, i) => {
      const first = budgets[0] && at(enc, budgets[0]);
      const clean = first ? pick(first)?.clean : undefined;
      return `<tr class="${enc}">${i === 0 ? `<th rowspan="2" scope="rowgroup">${esc(label)}</th>` : ''}<td><span class="dot ${enc}"></span>${enc}</td><td>${esc(pct(clean))}</td>${budgets
        .map((b) => {
          const m = at(enc, b);
          return `<td>${esc(pct(m ? pick(m)?.attacked : undefined))}</td>`;
        })
        .join('')}</tr>`;
    }).join('');
  const kinds = Object.keys(p.triplets.kinds) as (keyof TwoAfcMetrics['byKind'])[];
  return `<table class="twoafc"><thead><tr><th>triplets</th><th>encoder</th><th>clean</th>${budgets
    .map((b) => `<th>${esc(budget(b))}</th>`)
    .join('')}</tr></thead><tbody>${rows(`all (${p.triplets.count})`, (m) => m)}${kinds
    .map((k) =>
      rows(
        `${k === 'twin' ? 'against its edited twin' : 'against another item of the part'} (${p.triplets.kinds[k]})`,
        (m) => m.byKind[k],
      ),
    )
    .join('')}</tbody></table>`;
}

function duplicateTable(p: PerceptualAudit): string {
  const rows = p.duplicates
    .map((d) => {
      const rate = (x: { eligible: number; succeeded: number }) =>
        `${x.succeeded} of ${x.eligible}${x.eligible ? ` (${pct(x.succeeded / x.eligible)})` : ''}`;
      return `<tr class="${d.encoder}"><td><span class="dot ${d.encoder}"></span>${d.encoder}</td><td>${d.threshold.toFixed(4)}</td><td>${esc(rate(d.hide))}</td><td>${esc(rate(d.forge))}</td></tr>`;
    })
    .join('');
  const missing = Object.entries(p.uncalibrated ?? {})
    .map(([role, reason]) => `<p class="hint">${esc(role)}: not attacked, ${esc(reason)}.</p>`)
    .join('');
  return `${rows ? `<table class="duplicates"><thead><tr><th>encoder</th><th>duplicate threshold</th><th>duplicates hidden</th><th>non-duplicates forged</th></tr></thead><tbody>${rows}</tbody></table>` : ''}${missing}`;
}

function examples(p: PerceptualAudit): string {
  if (!p.examples.length)
    return '<p class="hint">No clean decision was flipped at ℓ∞ 4/255, or no example was kept.</p>';
  return p.examples
    .map(
      (
        ex,
      ) => `<section class="example"><div class="enc"><h4><span class="dot ${ex.encoder}"></span>${ex.encoder} · triplet ${ex.index} (${esc(ex.kind)}) · ${esc(budget(ex))}</h4>
<div class="imgs"><figure><img src="${ex.reference}" alt="reference"><figcaption>reference</figcaption></figure><figure><img src="${ex.adversarial}" alt="attacked reference"><figcaption>attacked reference</figcaption></figure><figure><img src="${ex.same}" alt="re-render"><figcaption>re-render (right)</figcaption></figure><figure><img src="${ex.other}" alt="other image"><figcaption>${ex.kind === 'twin' ? 'edited twin' : 'same part'}</figcaption></figure></div>
<p class="label">margin cos(ref, other) − cos(ref, re-render): ${ex.cleanMargin.toFixed(4)} clean → ${ex.attackedMargin.toFixed(4)} attacked</p></div></section>`,
    )
    .join('');
}

/** The report's perceptual section (a note when the audit has none). */
export function perceptualSection(result: AuditResult): string {
  const p = result.perceptual;
  if (!p) return '<p class="hint">This audit has no perceptual part (run with triplets, AUDIT_TRIPLETS).</p>';
  const headline = twoAfcHeadline(p);
  return `${headline ? `<p class="headline">${esc(headline)}</p>` : ''}
<p class="hint">Each triplet is rendered by the generator (seed ${p.triplets.seed}, ${p.triplets.size} px): a reference item, a re-render of it (the same item photographed again), and its edited twin or another item of the same part. A tower is right when the reference is closer (1 − cos) to the re-render. The attack perturbs only the reference, with ${esc(result.attack.name.toUpperCase())}-${result.attack.steps} on the binary margin loss cos(ref, other) − cos(ref, re-render) (Croce et al.); the ℓ2 budget is the paper's ε = 3 at 224 px scaled to the tower's input side. Higher is better.</p>
${twoAfcTable(p)}
<h3>The duplicate decision under attack (ℓ∞ 4/255)</h3>
<p class="hint">Hidden: a re-render the tower called a duplicate of the reference (distance ≤ its calibrated same-item threshold) pushed over the threshold. Forged: an edited twin or another item the tower kept apart pulled under it. Lower is better.</p>
${duplicateTable(p)}
<h3>Flipped decisions</h3>
${examples(p)}
<p class="hint">${p.cost.seconds.toFixed(1)} s of attack time, ${p.cost.gradientEvaluations} gradient evaluations.</p>`;
}
