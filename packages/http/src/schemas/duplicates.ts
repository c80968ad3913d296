/** Near-duplicate groups and their review. */
import { z } from 'zod';
import { encoderSchema, imageIdSchema, intString } from './common.js';
import { payloadSchema } from './images.js';

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
