/**
 * What responses show of stored images: the payload (with its near-duplicate group and caption screening), search
 * hits, and the error body every route answers with.
 */
import { CAPTION_REVIEWS, CAPTION_VERDICTS, DUPLICATE_REVIEWS, ERROR_CODES, QUALITY_GRADES } from '@lookalike/core';
import { z } from 'zod';
import { encoderSchema, fieldValue, imageIdSchema } from './common.js';

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

export const qualityScoreSchema = z
  .object({
    score: z
      .number()
      .min(0)
      .max(1)
      .meta({ description: "The quality head's score: 1 a sharp, clean photo, 0 unusable." }),
    grade: z.enum(QUALITY_GRADES).meta({ description: '`low` when the score is under `threshold`.' }),
    threshold: z.number().meta({ description: 'The threshold it was graded under.' }),
    model: z.string().meta({ description: 'The quality head that scored it.' }),
    tower: encoderSchema.meta({ description: 'The image tower whose embedding the head read.' }),
  })
  .meta({ id: 'QualityScore', description: "The image's perceptual quality, scored at ingest." });

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
    quality: qualityScoreSchema.optional(),
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
