/** The distance of two images: the request and each tower's answer. */
import { z } from 'zod';
import { imageIdSchema } from './common.js';

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
