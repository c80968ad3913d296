import { randomUUID } from 'node:crypto';
import { join, resolve } from 'node:path';
import { AppError, type AuditResult, type PerceptualAudit, type QualityAudit } from '@lookalike/core';
import { auditIdFor, formatEpsilon, headline, labelHeadline } from '@lookalike/audit';
import type { AuditOptions, JobName } from '@lookalike/queue';
import type { Services } from '@lookalike/services';
import { jobProgressBar } from './progress.js';

/**
 * Runs one audit through the configured job runner (the same flow the nightly scheduler starts) with a progress
 * bar over its batches, and returns the stored result.
 */
export async function runAudit(services: Services, options: AuditOptions): Promise<AuditResult> {
  const auditId = auditIdFor(randomUUID(), new Date());
  const { events } = services.runner;
  const bar = jobProgressBar('audit', '{value}/{total} queries | {rate} s/query', 10_000);
  const started = performance.now();
  let queriesDone = 0;
  const finalId = `${auditId}.final`;
  let onCompleted!: (id: string, name: JobName, result: unknown) => void;
  let onFailed!: (id: string, name: JobName, reason: string, final: boolean) => void;
  const done = new Promise<void>((resolveDone, reject) => {
    onCompleted = (id, name, result) => {
      if (name === 'audit-run' && (result as { auditId?: string }).auditId === auditId) {
        bar.start((result as { queries: number }).queries, 0, { rate: '—' });
      } else if (name === 'audit-batch' && id.startsWith(`${auditId}.b`)) {
        queriesDone += new Set((result as { outcomes: { queryId: string }[] }).outcomes.map((o) => o.queryId)).size;
        const secs = (performance.now() - started) / 1000;
        bar.update(queriesDone, { rate: (secs / Math.max(queriesDone, 1)).toFixed(2) });
      } else if (id === finalId) resolveDone();
    };
    onFailed = (id, name, reason, final) => {
      if (!final) return;
      if (id === finalId || (name === 'audit-run' && id === auditId))
        reject(new AppError('VALIDATION_FAILED', `the audit failed: ${reason}`));
    };
    events.on('completed', onCompleted);
    events.on('failed', onFailed);
  });
  try {
    await services.runner.enqueue('audit-run', { auditId, options }, { jobId: auditId });
    await done;
  } finally {
    bar.stop();
    events.off('completed', onCompleted);
    events.off('failed', onFailed);
  }
  const result = await services.audits.get(auditId);
  if (!result) throw new AppError('NOT_FOUND', `audit ${auditId} finished but was not stored`);
  return result;
}

/** Prints the headline, the metrics per tower and budget, and where the report is. */
export function printAudit(services: Services, result: AuditResult): void {
  const labels = labelHeadline(result);
  console.log(`\n${headline(result)}${labels ? `\n${labels}` : ''}\n`);
  const eps = result.epsilons;
  const pct = (x: number | undefined) => (x === undefined ? '—' : `${(100 * x).toFixed(1)}%`);
  const rows: [string, (m: AuditResult['metrics'][number]) => string][] = [
    [`overlap@${result.k}`, (m) => pct(m.overlapAtK)],
    ['top-1 retention', (m) => pct(m.top1Retention)],
    [`same part+defect @${result.k}`, (m) => pct(m.precisionAtK?.attacked)],
    [`same defect @${result.k}`, (m) => pct(m.defectPrecisionAtK?.attacked)],
    [`same defect @${result.k}, defective`, (m) => pct(m.defectivePrecisionAtK?.attacked)],
    ['cosine drift', (m) => m.cosineDrift.toFixed(3)],
    [`targeted success@${result.k}`, (m) => pct(m.targetedSuccessAtK)],
  ];
  const header = ['metric'.padEnd(26), 'encoder'.padEnd(8), ...eps.map((e) => `ε=${formatEpsilon(e)}`.padStart(10))];
  console.log(header.join(' '));
  for (const [label, value] of rows)
    for (const enc of ['robust', 'clean'] as const)
      console.log(
        [
          (enc === 'robust' ? label : '').padEnd(26),
          enc.padEnd(8),
          ...eps.map((e) => {
            const m = result.metrics.find((x) => x.encoder === enc && x.epsilon === e);
            return (m ? value(m) : '—').padStart(10);
          }),
        ].join(' '),
      );
  const counts = result.metrics[0]?.labelCounts;
  if (counts)
    console.log(
      `\nsame … @${result.k}: the share of each query's top-${result.k} (itself left out) with its labels, under ` +
        `attack (at ε=0, unattacked), over ${counts.labelled} labelled queries (${counts.defective} with a defect); ` +
        `${counts.unlabelled} without part and defect labels left out.`,
    );
  if (result.perceptual) printPerceptual(result.perceptual, pct);
  if (result.quality) printQuality(result.quality, pct);
  console.log(
    `\n${result.queries} queries, ${result.cost.secondsPerQueryPerEncoder.toFixed(2)} s per query per encoder (all ε), ` +
      `${result.cost.seconds.toFixed(0)} s of attack time.`,
  );
  console.log(`Report: ${join(resolve(services.audits.dir), result.id, 'report.html')}`);
}

/** The quality part: each tower's gate, its right decisions, and how many an attack flipped. */
function printQuality(q: QualityAudit, pct: (x: number | undefined) => string): void {
  console.log(
    `\nQuality gate on ${q.images.count} rendered photos (seed ${q.images.seed}; half good, half unusable), ` +
      "attacked at ℓ∞ 4/255 across each quality model's threshold:",
  );
  for (const m of q.metrics)
    console.log(
      `  ${m.encoder.padEnd(6)} ${m.model} (threshold ${m.threshold.toFixed(3)}): right ${m.good.correct + m.bad.correct} ` +
        `of ${m.good.images + m.bad.images}; flipped ${m.good.flipped + m.bad.flipped} (${pct(m.flippedShare)})`,
    );
  for (const [role, reason] of Object.entries(q.missing ?? {}))
    console.log(`  ${role.padEnd(6)} not attacked: ${reason}`);
}

/** The perceptual part: 2AFC accuracy clean and attacked, and the attacks on the duplicate decision. */
function printPerceptual(p: PerceptualAudit, pct: (x: number | undefined) => string): void {
  const kinds = Object.entries(p.triplets.kinds)
    .map(([kind, n]) => `${n} ${kind}`)
    .join(', ');
  console.log(
    `\n2AFC on ${p.triplets.count} rendered triplets (seed ${p.triplets.seed}; ${kinds}): is the reference closer to ` +
      'its re-render than to the other image? Clean, and with the reference attacked (binary margin loss):',
  );
  for (const m of p.twoAfc)
    console.log(
      `  ${m.encoder.padEnd(6)} ${m.norm === 'linf' ? 'ℓ∞' : 'ℓ2'} ε=${formatEpsilon(m.epsilon).padEnd(6)} ` +
        `clean ${pct(m.clean).padStart(6)}  attacked ${pct(m.attacked).padStart(6)}`,
    );
  for (const d of p.duplicates)
    console.log(
      `  ${d.encoder.padEnd(6)} duplicate decision (≤ ${d.threshold.toFixed(4)}) at ℓ∞ 4/255: hidden ` +
        `${d.hide.succeeded} of ${d.hide.eligible} duplicates, forged ${d.forge.succeeded} of ${d.forge.eligible} non-duplicates`,
    );
  for (const [role, reason] of Object.entries(p.uncalibrated ?? {}))
    console.log(`  ${role}: duplicate decision not attacked: ${reason}`);
}
