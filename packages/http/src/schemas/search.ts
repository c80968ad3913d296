/** The search requests: JSON (by id or text) and multipart (by image). */
import { QUALITY_FILTERS } from '@lookalike/search';
import { z } from 'zod';
import {
  MAX_TEXT_LENGTH,
  encoderSchema,
  imageIdSchema,
  intString,
  jsonString,
  kSchema,
  searchFilterSchema,
} from './common.js';

/** `quality`: which images by the quality grade ingest gave them. */
export const qualitySchema = z.enum(QUALITY_FILTERS).meta({
  description:
    'Which images by the quality grade ingest gave them: `ok` leaves out the photos graded `low` (blurred, noisy, ' +
    'compressed hard, badly exposed or flat; images never scored stay in), `low` returns only those, `any` (the ' +
    'default) does not look.',
});

/** `POST /v1/search` with `application/json`: search by a stored image or by text. */
export const searchJsonSchema = z
  .strictObject({
    imageId: imageIdSchema.optional(),
    text: z.string().min(1).max(MAX_TEXT_LENGTH).optional().meta({ description: 'Text to search for.' }),
    k: kSchema.optional(),
    encoder: encoderSchema.optional(),
    filter: searchFilterSchema.optional(),
    quality: qualitySchema.optional(),
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
  quality: qualitySchema.optional(),
});

/** `POST /v1/search` with `multipart/form-data`: the documented form (the file is read by multer). */
export const searchFormSchema = searchFieldsSchema
  .extend({ image: z.string().meta({ format: 'binary', description: 'The query image.' }) })
  .meta({ id: 'SearchForm' });
