import type { AuditResult, EncoderRole, QueryOutcome } from '@lookalike/core';
import { describe, expect, it } from 'vitest';
import { summarize } from './metrics.js';
import { labelHeadline, renderReport } from './report.js';

const EPS = 4 / 255;

/** One query's outcome with its label precisions given as hit counts out of k = 10. */
function outcome(
  encoder: EncoderRole,
  epsilon: number,
  queryId: string,
  labels: { part: string; defect: string } | undefined,
  clean: [defect: number, partDefect: number],
  attacked: [defect: number, partDefect: number],
): QueryOutcome {
  return {
    queryId,
    encoder,
    epsilon,
    loss: 0,
    cosineDrift: 0,
    cleanTopK: [],
    attackedTopK: [],
    overlapAtK: 1,
    top1Retained: true,
    rankOfCleanTop1: 1,
    ...(labels
      ? {
          labels,
          defectPrecisionClean: clean[0] / 10,
          precisionClean: clean[1] / 10,
          defectPrecisionAttacked: attacked[0] / 10,
          precisionAttacked: attacked[1] / 10,
          unlabelledHits: { clean: 0, attacked: 0 },
        }
      : {}),
  };
}

/**
 * Two labelled queries (one cracked, one flawless) and one without labels, at ε = 0 and 4/255. By hand, robust at
 * 4/255: same defect (4 + 8) / 20 = 60 %, part + defect (2 + 4) / 20 = 30 %, defective only 4 / 10 = 40 %; clean at
 * 4/255: 10 %, 5 %, 0 %.
 */
function auditOf(epsilons: number[]): AuditResult {
  const gear = { part: 'gear', defect: 'crack' };
  const nut = { part: 'nut', defect: 'none' };
  const outcomes = epsilons.flatMap((e) => [
    outcome('robust', e, 'q1', gear, [6, 3], e ? [4, 2] : [6, 3]),
    outcome('robust', e, 'q2', nut, [9, 5], e ? [8, 4] : [9, 5]),
    outcome('robust', e, 'q3', undefined, [0, 0], [0, 0]),
    outcome('clean', e, 'q1', gear, [5, 3], e ? [0, 0] : [5, 3]),
    outcome('clean', e, 'q2', nut, [7, 4], e ? [2, 1] : [7, 4]),
    outcome('clean', e, 'q3', undefined, [0, 0], [0, 0]),
  ]);
  return {
    schemaVersion: 1,
    id: 'audit-report-test',
    startedAt: '2025-01-01T03:00:00.000Z',
    finishedAt: '2025-01-01T03:05:00.000Z',
    attack: { name: 'apgd', norm: 'linf', steps: 10, restarts: 1, seed: 0 },
    models: {
      robust: { modelId: 'defect-cnn-fare4', preprocessHash: 'p' },
      clean: { modelId: 'defect-cnn-clean', preprocessHash: 'p' },
    },
    queries: 3,
    epsilons,
    k: 10,
    depth: 50,
    catalogSize: 30,
    cost: { seconds: 1, secondsPerQueryPerEncoder: 0.2, gradientEvaluations: 10 },
    metrics: summarize(outcomes, 10),
    perQuery: outcomes,
    examples: [],
  };
}

/** The text of each row of the label-precision table, cells joined by `|`. */
function labelRows(html: string): string[] {
  const table = /<table class="labels">([\s\S]*?)<\/table>/.exec(html)?.[1] ?? '';
  return [...table.matchAll(/<tr[^>]*>([\s\S]*?)<\/tr>/g)].map((r) =>
    [...r[1]!.matchAll(/<t[hd][^>]*>([\s\S]*?)<\/t[hd]>/g)].map((c) => c[1]!.replace(/<[^>]+>/g, '')).join('|'),
  );
}

describe(renderReport.name, () => {
  it('tabulates same-defect and same part + defect precision per tower and ε, and says what it averaged over', async () => {
    const html = await renderReport(auditOf([0, EPS]));
    expect(labelRows(html)).toEqual([
      "neighbours with the query's|encoder|ε = 0|ε = 4/255",
      'same part + defect|robust|40.0 %|30.0 %',
      'clean|35.0 %|5.0 %',
      'same defect|robust|75.0 %|60.0 %',
      'clean|60.0 %|10.0 %',
      'same defect, defective queries only|robust|60.0 %|40.0 %',
      'clean|50.0 %|0.0 %',
    ]);
    expect(html).toContain('averaged over 2 labelled queries (1 with a defect); 1 query without part and defect');
    expect(html).toContain('Precision@10 (same defect) vs ε, attacked');
    expect(html).toContain('defective only');
  });

  it('gives the clean query its own column when no unattacked budget was audited', async () => {
    const rows = labelRows(await renderReport(auditOf([EPS])));
    expect(rows[0]).toBe("neighbours with the query's|encoder|clean query|ε = 4/255");
    expect(rows[3]).toBe('same defect|robust|75.0 %|60.0 %');
  });

  it('says so instead of a table when no query has labels, or the audit predates label precision', async () => {
    const unlabelled = auditOf([0, EPS]);
    unlabelled.metrics = summarize(
      unlabelled.perQuery.filter((o) => o.queryId === 'q3'),
      10,
    );
    expect(await renderReport(unlabelled)).toContain('None of the 1 queries has part and defect labels');
    const old = auditOf([0, EPS]);
    for (const m of old.metrics) delete m.labelCounts;
    expect(await renderReport(old)).toContain('This audit predates label precision.');
  });
});

describe(labelHeadline.name, () => {
  it('puts both towers’ attacked and unattacked label precision in one sentence', () => {
    expect(labelHeadline(auditOf([0, EPS]))).toBe(
      "At ε = 4/255, 60.0 % of the robust tower's top-10 neighbours share the query's defect and 30.0 % its part " +
        "and defect (75.0 % and 40.0 % unattacked); of the clean tower's, 10.0 % and 5.0 % (60.0 % and 35.0 %).",
    );
    expect(labelHeadline(auditOf([0]))).toBeUndefined();
  });
});
