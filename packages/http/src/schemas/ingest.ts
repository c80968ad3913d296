/** Uploads, bulk ingest requests and the status of their jobs. */
import { ingestItemSchema, ingestSourceSchema } from '@lookalike/queue';
import { z } from 'zod';
import { imageIdSchema, jsonString } from './common.js';
import { payloadSchema } from './images.js';

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
      quality: z
        .object({ scored: z.number().int(), low: z.number().int() })
        .meta({ description: 'Images the quality head scored, and how many it graded `low`.' }),
      lowQuality: z
        .array(z.object({ id: imageIdSchema, location: z.string(), score: z.number() }))
        .meta({ description: 'Images of the run graded `low` quality (the first 100).' }),
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
