/** The request and response schemas of the caption screening routes (`/v1/screening`). */
import { CAPTION_REVIEWS, CAPTION_VERDICTS } from '@lookalike/core';
import { z } from 'zod';
import { encoderSchema, imageIdSchema, intString } from './common.js';
import { captionScreeningSchema, payloadSchema } from './images.js';

export const screeningListQuerySchema = z.object({
  verdict: z
    .enum(CAPTION_VERDICTS)
    .optional()
    .meta({ description: 'Which images to list (default `suspicious`), the lowest similarity first.' }),
  limit: intString(z.number().int().min(1).max(200)).optional().meta({ description: 'Page size, 1–200 (20).' }),
  offset: intString(z.number().int().min(0).max(1_000_000)).optional().meta({ description: 'Images to skip.' }),
});

export const screeningReviewSchema = z
  .strictObject({
    review: z.enum(CAPTION_REVIEWS).meta({
      description: '`accepted`: the caption is trusted (a withdrawn one is restored); `rejected`: it is withdrawn.',
    }),
  })
  .meta({ id: 'ScreeningReviewRequest' });

const component = z.object({ weight: z.number(), mean: z.number(), sd: z.number() });

export const screeningModelResponseSchema = z
  .object({
    tower: encoderSchema,
    textModel: z.string(),
    imageModel: z.string(),
    threshold: z.number(),
    fittedAt: z.string(),
    count: z.number().int(),
    low: component,
    high: component,
    separation: z.number().meta({ description: "Ashman's D between the two components." }),
    bicGain: z.number().meta({ description: 'How much better two components explain the similarities than one.' }),
    lowFrom: z.enum(['unrelated', 'free']).meta({
      description:
        '`unrelated`: the low component was measured on pairs of an image and another caption; `free`: fitted.',
    }),
    unrelatedPairs: z.number().int(),
    unrelatedMeasuredAt: z.number().int().meta({ description: 'Captioned images when the pairs were measured.' }),
    separates: z
      .boolean()
      .meta({ description: 'Whether the tower separates matching from unrelated captions; if not, all are trusted.' }),
    boundary: z.number().nullable(),
  })
  .meta({ id: 'ScreeningModel', description: "The collection's two-component mixture over caption similarities." });

export const screenedImageSchema = z
  .object({
    id: imageIdSchema,
    payload: payloadSchema.extend({ screening: captionScreeningSchema }),
    thumbnailUrl: z.string(),
    url: z.string(),
  })
  .meta({ id: 'ScreenedImage' });

export const screeningListSchema = z
  .object({
    policy: z.object({ tower: encoderSchema, threshold: z.number(), minCount: z.number().int() }),
    model: screeningModelResponseSchema.nullable().meta({ description: 'None before the first fit.' }),
    counts: z.record(z.enum(CAPTION_VERDICTS), z.number().int()),
    verdict: z.enum(CAPTION_VERDICTS),
    total: z.number().int(),
    images: z.array(screenedImageSchema),
  })
  .meta({ id: 'ScreeningList' });
