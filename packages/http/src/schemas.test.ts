import type { AuditMetrics, AuditResult, QueryOutcome } from '@lookalike/core';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { auditSchema, type auditMetricsSchema, type auditQueryOutcomeSchema } from './schemas.js';

const metrics: AuditMetrics = {
  encoder: 'robust',
  epsilon: 4 / 255,
  k: 10,
  overlapAtK: 0.6,
  top1Retention: 0.5,
  meanRankOfCleanTop1: 2,
  cosineDrift: 0.1,
  precisionAtK: { clean: 0.3, attacked: 0.2 },
  defectPrecisionAtK: { clean: 0.6, attacked: 0.4 },
  defectivePrecisionAtK: { clean: 0.5, attacked: 0.3 },
  labelCounts: { labelled: 2, defective: 1, unlabelled: 1, unlabelledHits: { clean: 0, attacked: 1 } },
};

const outcome: QueryOutcome = {
  queryId: 'q1',
  encoder: 'robust',
  epsilon: 4 / 255,
  loss: 0.1,
  cosineDrift: 0.1,
  cleanTopK: ['a'],
  attackedTopK: ['b'],
  overlapAtK: 0,
  top1Retained: false,
  rankOfCleanTop1: 11,
  labels: { part: 'gear', defect: 'crack' },
  precisionClean: 0.3,
  precisionAttacked: 0.2,
  defectPrecisionClean: 0.6,
  defectPrecisionAttacked: 0.4,
  unlabelledHits: { clean: 0, attacked: 1 },
};

const result: AuditResult = {
  schemaVersion: 1,
  id: 'a1',
  startedAt: '2025-01-01T03:00:00.000Z',
  finishedAt: '2025-01-01T03:05:00.000Z',
  attack: { name: 'apgd', norm: 'linf', steps: 10, restarts: 1, seed: 0 },
  models: { robust: { modelId: 'r', preprocessHash: 'p' }, clean: { modelId: 'c', preprocessHash: 'p' } },
  queries: 1,
  epsilons: [4 / 255],
  k: 10,
  depth: 50,
  catalogSize: 3,
  cost: { seconds: 1, secondsPerQueryPerEncoder: 0.5, gradientEvaluations: 10 },
  metrics: [metrics],
  perQuery: [outcome],
  examples: [],
};

describe('auditSchema', () => {
  it('describes the stored audit, label precisions and their counts included', () => {
    // The TypeScript types and the documented schemas agree: what the audit stores is a valid input as it stands.
    const typed: [z.input<typeof auditMetricsSchema>, z.input<typeof auditQueryOutcomeSchema>] = [metrics, outcome];
    expect(typed).toHaveLength(2);
    expect(auditSchema.parse(result)).toEqual(result);
    const old = { ...result, metrics: [{ ...metrics, defectPrecisionAtK: undefined, labelCounts: undefined }] };
    expect(auditSchema.safeParse(old).success).toBe(true);
  });

  it('rejects label precision of the wrong shape', () => {
    const bad = { ...result, metrics: [{ ...metrics, defectPrecisionAtK: 0.4 }] };
    expect(auditSchema.safeParse(bad).error?.issues[0]?.path).toEqual(['metrics', 0, 'defectPrecisionAtK']);
    const badLabels = { ...result, perQuery: [{ ...outcome, labels: { part: 'gear' } }] };
    expect(auditSchema.safeParse(badLabels).error?.issues[0]?.path).toEqual(['perQuery', 0, 'labels', 'defect']);
  });
});
