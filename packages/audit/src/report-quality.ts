/** The quality part of the HTML report: each tower's quality gate, its right decisions, and those an attack flips. */
import { type AuditResult, type QualityAudit } from '@lookalike/core';
import { esc, pct } from './report-format.js';

/** The one-sentence result: the share of right decisions each gate loses at ℓ∞ 4/255, or undefined without one. */
export function qualityHeadline(q: QualityAudit | undefined): string | undefined {
  const at = (encoder: string) => q?.metrics.find((m) => m.encoder === encoder);
  const r = at('robust');
  const c = at('clean');
  if (!q || !r || !c) return undefined;
  return (
    `Quality gate on ${q.images.count} rendered photos: an ℓ∞ ${Math.round(r.epsilon * 255)}/255 attack flips ` +
    `${pct(r.flippedShare)} of the robust quality model's right decisions and ${pct(c.flippedShare)} of the clean one's.`
  );
}

function table(q: QualityAudit): string {
  const rate = (x: { correct: number; flipped: number }) =>
    `${x.flipped} of ${x.correct}${x.correct ? ` (${pct(x.flipped / x.correct)})` : ''}`;
  const rows = q.metrics
    .map(
      (m) =>
        `<tr class="${m.encoder}"><td><span class="dot ${m.encoder}"></span>${m.encoder}</td><td>${esc(m.model)}</td><td>${m.threshold.toFixed(4)}</td>` +
        `<td>${m.good.correct} of ${m.good.images}</td><td>${m.bad.correct} of ${m.bad.images}</td>` +
        `<td>${esc(rate(m.good))}</td><td>${esc(rate(m.bad))}</td><td><strong>${esc(pct(m.flippedShare))}</strong></td><td>${m.meanShift.toFixed(3)}</td></tr>`,
    )
    .join('');
  const missing = Object.entries(q.missing ?? {})
    .map(([role, reason]) => `<p class="hint">${esc(role)}: not attacked, ${esc(reason)}.</p>`)
    .join('');
  return `${rows ? `<table class="quality"><thead><tr><th>encoder</th><th>quality model</th><th>threshold</th><th>good graded ok</th><th>bad graded low</th><th>good pushed low</th><th>bad pushed ok</th><th>decisions flipped</th><th>mean score shift</th></tr></thead><tbody>${rows}</tbody></table>` : ''}${missing}`;
}

function examples(q: QualityAudit): string {
  if (!q.examples.length) return '<p class="hint">No right decision was flipped, or no example was kept.</p>';
  return q.examples
    .map(
      (
        ex,
      ) => `<section class="example"><div class="enc"><h4><span class="dot ${ex.encoder}"></span>${ex.encoder} · photo ${ex.index} (${ex.kind === 'good' ? 'good, pushed low' : 'unusable, pushed ok'})</h4>
<div class="imgs"><figure><img src="${ex.clean}" alt="photo"><figcaption>photo · ${ex.cleanScore.toFixed(3)}</figcaption></figure><figure><img src="${ex.adversarial}" alt="attacked photo"><figcaption>attacked · ${ex.attackedScore.toFixed(3)}</figcaption></figure></div>
<p class="label">threshold ${ex.threshold.toFixed(4)}</p></div></section>`,
    )
    .join('');
}

/** The report's quality section (a note when the audit has none). */
export function qualitySection(result: AuditResult): string {
  const q = result.quality;
  if (!q) return '<p class="hint">This audit has no quality part (no quality model, or run with 0 quality images).</p>';
  const headline = qualityHeadline(q);
  return `${headline ? `<p class="headline">${esc(headline)}</p>` : ''}
<p class="hint">Photos rendered by the generator (seed ${q.images.seed}, ${q.images.size} px): half as rendered (good), half with one distortion — blur, motion, noise, JPEG, exposure or contrast — at severity ≥ 0.6 (unusable). Each tower's quality model grades a photo low under its threshold. The attack (${esc(result.attack.name.toUpperCase())}-${result.attack.steps}, ℓ∞ 4/255) lowers a good photo's score and raises an unusable one's; a decision flips when a photo the gate graded right crosses the threshold. Lower is better.</p>
${table(q)}
<h3>Flipped decisions</h3>
${examples(q)}
<p class="hint">${q.cost.seconds.toFixed(1)} s of attack time, ${q.cost.gradientEvaluations} gradient evaluations.</p>`;
}
