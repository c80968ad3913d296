/** Robustness audits: their options, results and listings. */
import { auditOptionsSchema } from '@lookalike/queue';
import { z } from 'zod';
import { encoderSchema, intString } from './common.js';

export const auditIdParamsSchema = z.object({
  id: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'must be an audit id')
    .meta({ description: 'An audit id.' }),
});

export const auditListQuerySchema = z.object({
  limit: intString(z.number().int().min(1).max(1000)).optional(),
});

const attackSchema = z.object({
  name: z.enum(['pgd', 'apgd']),
  norm: z.enum(['linf', 'l2']),
  steps: z.number().int(),
  restarts: z.number().int(),
  stepSize: z.number().optional(),
  seed: z.number().int(),
});

export const auditListSchema = z
  .object({
    audits: z.array(
      z.object({
        id: z.string(),
        startedAt: z.string(),
        finishedAt: z.string(),
        attack: attackSchema,
        queries: z.number().int(),
        headline: z.array(
          z.object({
            encoder: encoderSchema,
            epsilon: z.number(),
            overlapAtK: z.number(),
            top1Retention: z.number(),
            partDefectAtK: z.number().optional().meta({
              description: "Attacked queries' share of top-k hits with the query's part and defect (labelled queries).",
            }),
            defectiveDefectAtK: z.number().optional().meta({
              description: "Attacked defective queries' share of top-k hits with the query's defect.",
            }),
          }),
        ),
        twoAfc: z
          .array(
            z.object({
              encoder: encoderSchema,
              norm: z.enum(['linf', 'l2']),
              epsilon: z.number(),
              clean: z.number(),
              attacked: z.number(),
            }),
          )
          .optional()
          .meta({ description: '2AFC accuracy of the perceptual part, clean and with the reference attacked.' }),
      }),
    ),
  })
  .meta({ id: 'AuditList' });

const precisionPairSchema = z.object({
  clean: z.number().meta({ description: 'With the unattacked query.' }),
  attacked: z.number().meta({ description: 'With the query attacked at this ε (at ε = 0, the same).' }),
});

const partDefectSchema = z.object({ part: z.string(), defect: z.string() });

/** Means of one tower at one budget (AuditMetrics in @lookalike/core). */
export const auditMetricsSchema = z
  .object({
    encoder: encoderSchema,
    epsilon: z.number(),
    k: z.number().int(),
    overlapAtK: z.number(),
    top1Retention: z.number(),
    meanRankOfCleanTop1: z.number(),
    cosineDrift: z.number(),
    precisionAtK: precisionPairSchema.optional().meta({
      description:
        "Mean share of each labelled query's top-k (itself left out) with its part and defect labels; a hit " +
        'without labels counts as not sharing.',
    }),
    defectPrecisionAtK: precisionPairSchema.optional().meta({ description: 'The same with the defect label alone.' }),
    defectivePrecisionAtK: precisionPairSchema
      .optional()
      .meta({ description: 'Same-defect precision over the queries whose defect is not "none".' }),
    labelCounts: z
      .object({
        labelled: z.number().int(),
        defective: z.number().int(),
        unlabelled: z.number().int().meta({ description: 'Queries without part and defect labels, left out.' }),
        unlabelledHits: z.object({ clean: z.number().int(), attacked: z.number().int() }),
      })
      .optional()
      .meta({ description: 'What the label precisions average over; absent in audits made before them.' }),
    targetedSuccessAtK: z.number().optional(),
  })
  .meta({ id: 'AuditMetrics' });

/** What one attack did to one query with one tower at one budget (QueryOutcome in @lookalike/core). */
export const auditQueryOutcomeSchema = z
  .object({
    queryId: z.string(),
    encoder: encoderSchema,
    epsilon: z.number(),
    loss: z.number(),
    cosineDrift: z.number(),
    cleanTopK: z.array(z.string()),
    attackedTopK: z.array(z.string()),
    overlapAtK: z.number(),
    top1Retained: z.boolean(),
    rankOfCleanTop1: z.number().int(),
    labels: partDefectSchema.optional().meta({ description: "The query's part and defect, when it has both." }),
    precisionClean: z.number().optional(),
    precisionAttacked: z.number().optional(),
    defectPrecisionClean: z.number().optional(),
    defectPrecisionAttacked: z.number().optional(),
    unlabelledHits: z.object({ clean: z.number().int(), attacked: z.number().int() }).optional(),
    targeted: z
      .object({ targetId: z.string(), success: z.boolean(), rank: z.number().int(), cosine: z.number() })
      .optional(),
  })
  .meta({ id: 'AuditQueryOutcome' });

export const auditSchema = z
  .looseObject({
    schemaVersion: z.literal(1),
    id: z.string(),
    startedAt: z.string(),
    finishedAt: z.string(),
    attack: attackSchema,
    models: z.record(z.string(), z.object({ modelId: z.string(), preprocessHash: z.string() })),
    queries: z.number().int(),
    epsilons: z.array(z.number()),
    k: z.number().int(),
    depth: z.number().int(),
    catalogSize: z.number().int(),
    cost: z.object({ seconds: z.number(), secondsPerQueryPerEncoder: z.number(), gradientEvaluations: z.number() }),
    metrics: z.array(auditMetricsSchema),
    perQuery: z.array(auditQueryOutcomeSchema).meta({ description: 'Every query, encoder and ε.' }),
    examples: z.array(z.record(z.string(), z.unknown())).meta({ description: 'Images and neighbours for the report.' }),
    perceptual: z
      .looseObject({
        triplets: z.object({ seed: z.number().int(), count: z.number().int(), size: z.number().int() }).loose(),
        twoAfc: z.array(z.record(z.string(), z.unknown())),
        duplicates: z.array(z.record(z.string(), z.unknown())),
        uncalibrated: z.record(z.string(), z.string()).optional(),
      })
      .optional()
      .meta({
        description:
          'The towers as a perceptual metric: 2AFC accuracy on rendered triplets, clean and with the reference ' +
          'attacked (ℓ∞ 4/255, ℓ2 3·S/224), and the duplicate decision attacked; per-triplet outcomes and flipped ' +
          'examples. Absent in audits without it.',
      }),
  })
  .meta({
    id: 'Audit',
    description: 'An audit result (schemaVersion 1): settings, models, metrics per tower and ε, per-query outcomes.',
  });

/** The options of an audit to start; anything left out takes the server's AUDIT_* defaults. */
export const auditRequestSchema = auditOptionsSchema
  .partial()
  .meta({ id: 'AuditRequest', description: 'Audit options; every field defaults to the configured nightly audit.' });

export const auditAcceptedSchema = z
  .object({
    auditId: z.string(),
    jobId: z.string(),
    finalJobId: z.string().meta({ description: 'Completes when the audit is stored (GET /v1/jobs/{id}).' }),
  })
  .meta({ id: 'AuditAccepted' });
