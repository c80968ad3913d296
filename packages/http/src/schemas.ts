/**
 * The one schema module of the API: every zod schema that validates a request, and the schemas of the responses.
 * Routes parse with these, and `/openapi.json` is generated from the same objects, so the document cannot drift
 * from what the server accepts.
 */
import {
  CAPTION_REVIEWS,
  CAPTION_VERDICTS,
  DUPLICATE_REVIEWS,
  ENCODER_ROLES,
  ERROR_CODES,
  ValidationError,
  filterSchema,
  formatIssues,
  toValidationIssues,
} from '@lookalike/core';
import { auditOptionsSchema, ingestItemSchema, ingestSourceSchema } from '@lookalike/queue';
import { K_RANGE } from '@lookalike/search';
import { z } from 'zod';

/** Longest search text accepted (the text encoder's own bound). */
export const MAX_TEXT_LENGTH = 2000;

/** Parses `value` with `schema`, or throws one {@link ValidationError} listing every problem. */
export function parse<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = toValidationIssues(result.error.issues);
  throw new ValidationError(`The ${what} is invalid: ${formatIssues(issues)}.`, issues);
}

/** A whole number sent as text (query strings and multipart fields), checked against `schema`. */
export const intString = (schema: z.ZodNumber) =>
  z
    .string()
    .regex(/^\d{1,6}$/, 'must be a whole number')
    .transform(Number)
    .pipe(schema);

/** A JSON document sent as text (query strings and multipart fields), checked against `schema`. */
const jsonString = <S extends z.ZodType>(schema: S, description: string) =>
  z
    .string()
    .max(65_536)
    .transform((text, ctx): unknown => {
      try {
        return JSON.parse(text);
      } catch {
        ctx.addIssue({ code: 'custom', message: 'must be a JSON document' });
        return z.NEVER;
      }
    })
    .pipe(schema)
    .meta({ description });

// ---- shared pieces ----------------------------------------------------------------------------------------------

export const imageIdSchema = z
  .string()
  .regex(/^[0-9a-f]{64}$/, 'must be an image id: the 64-character lowercase hex sha256 of the image')
  .meta({ description: 'Image id: the lowercase hex sha256 of the original bytes.', example: 'ab'.repeat(32) });

export const encoderSchema = z
  .enum(ENCODER_ROLES)
  .meta({ description: 'Which tower to search with: `robust` (FARE) or `clean` (the baseline). Default `robust`.' });

export const kSchema = z
  .number()
  .int()
  .min(K_RANGE.min)
  .max(K_RANGE.max)
  .meta({ description: `Number of hits, ${K_RANGE.min}–${K_RANGE.max}; default ${K_RANGE.default}.` });

export const searchFilterSchema = filterSchema.meta({
  id: 'Filter',
  description:
    'Payload filter: all of `must`, at least one of `should`, none of `mustNot`; conditions match a value, any ' +
    'of several values, or a numeric range of a field such as `labels.part`.',
});

const fieldValue = z.union([z.string(), z.number(), z.boolean(), z.null()]);

export const idParamsSchema = z.object({ id: imageIdSchema });

// ---- search -----------------------------------------------------------------------------------------------------

/** `POST /v1/search` with `application/json`: search by a stored image or by text. */
export const searchJsonSchema = z
  .strictObject({
    imageId: imageIdSchema.optional(),
    text: z.string().min(1).max(MAX_TEXT_LENGTH).optional().meta({ description: 'Text to search for.' }),
    k: kSchema.optional(),
    encoder: encoderSchema.optional(),
    filter: searchFilterSchema.optional(),
    includeSuspicious: z
      .boolean()
      .optional()
      .meta({
        description:
          'Text search only: also return images whose caption screening flagged as suspicious (and nobody ' +
          'accepted); they are left out by default.',
      }),
  })
  .refine((b) => (b.imageId === undefined) !== (b.text === undefined), {
    message: 'give exactly one of imageId and text',
  })
  .refine((b) => b.includeSuspicious === undefined || b.text !== undefined, {
    message: 'includeSuspicious applies to text search only',
    path: ['includeSuspicious'],
  })
  .meta({ id: 'SearchRequest', description: 'Search by a stored image (`imageId`) or by `text`; exactly one.' });

/** Search options sent as text: the query string of `/similar` and the fields of a multipart search. */
export const searchFieldsSchema = z.object({
  k: intString(kSchema).optional().meta({ description: kSchema.description }),
  encoder: encoderSchema.optional(),
  filter: jsonString(searchFilterSchema, 'A Filter as a JSON string.').optional(),
});

/** `POST /v1/search` with `multipart/form-data`: the documented form (the file is read by multer). */
export const searchFormSchema = searchFieldsSchema
  .extend({ image: z.string().meta({ format: 'binary', description: 'The query image.' }) })
  .meta({ id: 'SearchForm' });

// ---- responses --------------------------------------------------------------------------------------------------

export const duplicateRecordSchema = z
  .object({
    group: imageIdSchema.meta({ description: "The group's id: the id of its first image." }),
    distance: z.number().meta({ description: '`1 − cos` to `nearest` when it joined; 0 for the first image.' }),
    nearest: imageIdSchema.optional().meta({ description: 'The image it was found closest to when it joined.' }),
    tower: encoderSchema,
    threshold: z.number().meta({ description: 'The same-item threshold it was grouped under.' }),
    review: z.enum(DUPLICATE_REVIEWS).optional(),
    reviewedAt: z.string().optional(),
  })
  .meta({ id: 'DuplicateRecord', description: 'Where an image stands among its near-duplicates.' });

export const captionScreeningSchema = z
  .object({
    similarity: z
      .object({ robust: z.number(), clean: z.number() })
      .meta({ description: "cos(image, caption) in each image tower's space." }),
    tower: encoderSchema.meta({ description: 'The tower whose similarity the verdict is about.' }),
    textModel: z.string(),
    verdict: z.enum(CAPTION_VERDICTS),
    probability: z.number().optional().meta({ description: "The clean component's probability." }),
    boundary: z.number().optional().meta({ description: 'The similarity below which a pair is suspicious.' }),
    reason: z.string().optional(),
    fittedAt: z.string().optional(),
    review: z.enum(CAPTION_REVIEWS).optional(),
    reviewedAt: z.string().optional(),
    withdrawnCaption: z.string().optional().meta({ description: 'The caption a rejection withdrew.' }),
  })
  .meta({ id: 'CaptionScreening', description: "What caption screening (SafeCLIP) made of the image's caption." });

export const payloadSchema = z
  .object({
    id: imageIdSchema,
    source: z.string().meta({
      description:
        'Where the bytes came from: a path relative to its ingest root, `upload:<file>` for an upload, or a URL ' +
        '(never a server path).',
    }),
    format: z.string(),
    width: z.number().int(),
    height: z.number().int(),
    bytes: z.number().int(),
    caption: z.string().optional(),
    labels: z.record(z.string(), fieldValue).optional(),
    metadata: z.record(z.string(), fieldValue).optional(),
    ingestedAt: z.string(),
    duplicates: duplicateRecordSchema.optional(),
    screening: captionScreeningSchema.optional(),
    embeddings: z.record(z.string(), z.object({ modelId: z.string(), preprocessHash: z.string() })),
  })
  .meta({ id: 'ImagePayload' });

export const imageSchema = z
  .object({
    id: imageIdSchema,
    payload: payloadSchema,
    group: z
      .object({ id: imageIdSchema, size: z.number().int(), url: z.string() })
      .optional()
      .meta({ description: 'Its near-duplicate group, when it is in one: the group id, how many images, where.' }),
  })
  .meta({ id: 'Image' });

export const searchHitSchema = z
  .object({
    id: imageIdSchema,
    score: z.number().meta({ description: 'Cosine similarity; higher is closer.' }),
    payload: payloadSchema,
    thumbnailUrl: z.string().meta({ example: `/v1/images/${'ab'.repeat(32)}/thumbnail` }),
  })
  .meta({ id: 'SearchHit' });

export const searchResponseSchema = z
  .object({
    encoder: encoderSchema,
    k: z.number().int(),
    tookMs: z.number().meta({ description: 'Server time spent on the search, in milliseconds.' }),
    hits: z.array(searchHitSchema),
  })
  .meta({ id: 'SearchResponse' });

export const facetsResponseSchema = z
  .object({ fields: z.record(z.string(), z.array(z.string())) })
  .meta({ id: 'Facets', description: 'Distinct values of each label field, sorted.' });

export const errorSchema = z
  .object({
    error: z.object({
      code: z.enum(Object.keys(ERROR_CODES) as [keyof typeof ERROR_CODES, ...(keyof typeof ERROR_CODES)[]]),
      message: z.string(),
      details: z.record(z.string(), z.unknown()).optional(),
    }),
  })
  .meta({ id: 'Error' });

// ---- distance ---------------------------------------------------------------------------------------------------

/** `POST /v1/distance` with `application/json`: two stored images. */
export const distanceJsonSchema = z
  .strictObject({ aId: imageIdSchema, bId: imageIdSchema })
  .meta({ id: 'DistanceRequest', description: 'Two stored images, by id.' });

/** The text fields of a multipart `POST /v1/distance`: the id of a side that is not uploaded. */
export const distanceFieldsSchema = z.strictObject({ aId: imageIdSchema.optional(), bId: imageIdSchema.optional() });

/** `POST /v1/distance` with `multipart/form-data`: for each side, a file or an id. */
export const distanceFormSchema = distanceFieldsSchema
  .extend({
    a: z.string().optional().meta({ format: 'binary', description: 'The first image (or send `aId`).' }),
    b: z.string().optional().meta({ format: 'binary', description: 'The second image (or send `bId`).' }),
  })
  .meta({ id: 'DistanceForm' });

const verdictSchema = z
  .enum(['same item', 'same kind', 'different'])
  .meta({ description: "What the two images are to each other under the tower's calibrated thresholds." });

const rateSchema = z.object({ recall: z.number(), specificity: z.number() });

const towerDistanceSchema = z
  .object({
    model: z.string(),
    distance: z.number().meta({ description: '`1 − cos` of the two embeddings, in [0, 2].' }),
    verdict: verdictSchema.nullable(),
    calibration: z
      .object({
        thresholds: z.object({ sameItem: z.number(), sameKind: z.number() }),
        sameKindSeparable: z.boolean(),
        fitSeed: z.number().int(),
        heldOut: z.object({
          seed: z.number().int(),
          sameItem: rateSchema,
          sameKind: rateSchema,
          accuracy: z.number(),
        }),
        createdAt: z.string(),
      })
      .nullable()
      .meta({
        description:
          "The thresholds the verdict used (`distance-calibration.json` in the model's folder), the seed of the " +
          'synthetic catalog they were fitted on, and how they did on a catalog of another seed.',
      }),
    uncalibrated: z.string().optional().meta({ description: 'Why there is no verdict, when there is none.' }),
  })
  .meta({ id: 'TowerDistance' });

export const distanceResponseSchema = z
  .object({
    verdict: verdictSchema.nullable().meta({ description: "The robust tower's verdict: the answer." }),
    towers: z.object({ robust: towerDistanceSchema, clean: towerDistanceSchema }),
    tookMs: z.number(),
  })
  .meta({ id: 'DistanceResponse' });

// ---- uploads and ingest -----------------------------------------------------------------------------------------

const labelsSchema = ingestItemSchema.shape.labels.unwrap();

/** The text fields of `POST /v1/images`. */
export const uploadFieldsSchema = z.object({
  caption: z.string().max(2000).optional(),
  labels: jsonString(labelsSchema, 'Labels as a JSON object, e.g. {"part":"gear","defect":"crack"}.').optional(),
});

export const uploadFormSchema = uploadFieldsSchema
  .extend({ image: z.string().meta({ format: 'binary', description: 'The image to add.' }) })
  .meta({ id: 'UploadForm' });

export const uploadQuerySchema = z.object({
  wait: z
    .enum(['true', 'false'])
    .optional()
    .meta({ description: '`true`: wait until the image is stored and answer 201 with it.' }),
});

export const uploadAcceptedSchema = z.object({ id: imageIdSchema, jobId: z.string() }).meta({ id: 'UploadAccepted' });

export const uploadCreatedSchema = z
  .object({ id: imageIdSchema, jobId: z.string(), payload: payloadSchema })
  .meta({ id: 'UploadCreated' });

export const ingestRequestSchema = z
  .strictObject({
    source: ingestSourceSchema,
    batchSize: z.number().int().min(1).max(1024).optional(),
  })
  .refine((b) => b.source.kind !== 'items', {
    message: 'an items source is not accepted over HTTP; write a manifest under INGEST_ROOTS and send its location',
    path: ['source', 'kind'],
  })
  .meta({
    id: 'IngestRequest',
    description: 'A folder or a JSONL/CSV manifest under INGEST_ROOTS (relative paths are taken from the first root).',
  });

export const ingestAcceptedSchema = z.object({ runId: z.string(), jobId: z.string() }).meta({ id: 'IngestAccepted' });

export const jobIdParamsSchema = z.object({
  id: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$/, 'must be a job id')
    .meta({ description: 'A job id.' }),
});

const failureSchema = z.object({ location: z.string(), code: z.string(), reason: z.string() });

export const jobStatusSchema = z
  .union([
    z.object({
      id: z.string(),
      name: z.literal('ingest-run'),
      state: z.string(),
      items: z.number().int(),
      batches: z.number().int(),
      batchesDone: z.number().int(),
      batchesFailed: z.number().int(),
      batchesUnknown: z.number().int(),
      done: z.number().int(),
      skipped: z.number().int(),
      failed: z.array(failureSchema),
      failedTotal: z.number().int(),
      duplicates: z
        .array(
          z.object({
            id: imageIdSchema,
            location: z.string(),
            group: imageIdSchema,
            nearest: imageIdSchema,
            distance: z.number(),
          }),
        )
        .meta({ description: 'New images of the run that joined a near-duplicate group (the first 100).' }),
      duplicatesTotal: z.number().int(),
      duplicatesUnchecked: z.number().int(),
      captions: z
        .object({ screened: z.number().int(), suspicious: z.number().int(), pending: z.number().int() })
        .meta({ description: 'Captions screened, by the verdict each got when it was stored.' }),
      suspicious: z
        .array(
          z.object({
            id: imageIdSchema,
            location: z.string(),
            caption: z.string(),
            similarity: z.number(),
            reason: z.string(),
          }),
        )
        .meta({ description: 'Captions of the run flagged as suspicious when stored (the first 100).' }),
      batchFailures: z.array(z.object({ id: z.string(), reason: z.string() })),
      manifestProblems: z.array(z.object({ line: z.number().int(), reason: z.string() })),
      failedReason: z.string().optional(),
    }),
    z.object({
      id: z.string(),
      name: z.string(),
      state: z.string(),
      progress: z.unknown(),
      result: z.unknown().optional(),
      failedReason: z.string().optional(),
    }),
  ])
  .meta({ id: 'JobStatus', description: 'An ingest run summed over its batches, or any other job as it stands.' });

// ---- duplicates -------------------------------------------------------------------------------------------------

export const duplicateListQuerySchema = z.object({
  limit: intString(z.number().int().min(1).max(200)).optional().meta({ description: 'Groups per page (20).' }),
  offset: intString(z.number().int().min(0).max(1_000_000)).optional(),
  unreviewed: z
    .enum(['true', 'false'])
    .optional()
    .meta({ description: '`true`: only groups with members nobody reviewed yet.' }),
});

export const groupParamsSchema = z.object({ group: imageIdSchema.meta({ description: 'A group id.' }) });

export const duplicateReviewSchema = z
  .strictObject({ keep: imageIdSchema.meta({ description: 'The member to keep; the others are marked.' }) })
  .meta({ id: 'DuplicateReviewRequest' });

export const duplicateGroupSchema = z
  .object({
    id: imageIdSchema,
    size: z.number().int(),
    kept: imageIdSchema.optional().meta({ description: 'The member the last review kept.' }),
    unreviewed: z.number().int(),
    latest: z.string().meta({ description: "The newest member's ingest time." }),
    members: z.array(
      z.object({ id: imageIdSchema, payload: payloadSchema, thumbnailUrl: z.string(), url: z.string() }),
    ),
  })
  .meta({ id: 'DuplicateGroup', description: 'A near-duplicate group: its first image first.' });

export const duplicateListSchema = z
  .object({
    groups: z.array(duplicateGroupSchema),
    total: z.number().int().meta({ description: 'Groups in all (of more than one image).' }),
    images: z.number().int().meta({ description: 'Images in all those groups.' }),
    grouping: z
      .object({ tower: encoderSchema, threshold: z.number() })
      .nullable()
      .meta({ description: 'How ingest groups new images now (DUPLICATES); null when it does not.' }),
  })
  .meta({ id: 'DuplicateList' });

// ---- audits -----------------------------------------------------------------------------------------------------

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

// ---- operations -------------------------------------------------------------------------------------------------

export const healthSchema = z.object({ status: z.literal('ok') });

export const readinessSchema = z
  .object({
    status: z.enum(['ready', 'not ready']),
    checks: z.array(z.object({ name: z.string(), ok: z.boolean(), reason: z.string().optional() })),
  })
  .meta({ id: 'Readiness' });
