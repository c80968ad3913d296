import { z } from 'zod';

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'must be a lowercase hex sha256');
const relativeFile = z
  .string()
  .min(1)
  .refine((p) => !p.startsWith('/') && !p.split(/[\\/]/).includes('..'), 'must be a path inside the model folder');
const fileRef = z.object({ path: relativeFile, sha256 });
const rgb = z.tuple([z.number(), z.number(), z.number()]);

const imageInput = z.object({
  name: z.string().min(1).default('pixel_values'),
  size: z.number().int().min(1).max(1024),
  mean: rgb,
  std: rgb.refine((s) => s.every((v) => v > 0), 'std must be positive'),
  interpolation: z.enum(['bicubic', 'bilinear']),
  resize: z.literal('shortest'),
});

const output = z.object({
  name: z.string().min(1).default('embedding'),
  dim: z.number().int().min(1).max(65536),
  /** Whether the graph already L2-normalises its output. */
  normalized: z.boolean(),
});

const common = {
  schemaVersion: z.literal(1),
  id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'must be a simple id such as defect-cnn-fare4'),
  description: z.string().optional(),
  output,
  /** How the weights were made: free-form, shown in model cards and audit reports. */
  training: z.record(z.string(), z.unknown()).optional(),
};

/** Manifest of an image tower (robust or clean). */
export const imageManifestSchema = z.object({
  ...common,
  role: z.enum(['robust', 'clean']),
  files: z.object({ model: fileRef }),
  input: imageInput,
});

/** Manifest of a text tower and its tokenizer. */
export const textManifestSchema = z.object({
  ...common,
  role: z.literal('text'),
  /** `tokenizerConfig` is Hugging Face's `tokenizer_config.json` (special tokens), when the model ships one. */
  files: z.object({ model: fileRef, tokenizer: fileRef, tokenizerConfig: fileRef.optional() }),
  text: z.object({
    name: z.string().min(1).default('input_ids'),
    contextLength: z.number().int().min(2).max(4096),
    /** Token ids the runtime adds itself: start/end of text and padding. */
    sotId: z.number().int().min(0),
    eotId: z.number().int().min(0),
    padId: z.number().int().min(0),
    /** Id unknown words map to, when the vocabulary has one. */
    unkId: z.number().int().min(0).optional(),
    /** Whether the model's graph expects int64 (`int64`) or int32 ids. */
    dtype: z.enum(['int64', 'int32']).default('int64'),
  }),
});

/**
 * Manifest of a perceptual quality model (PerceptCLIP-style) made from one image tower: the tower's graph with LoRA
 * adapters merged into its weights, feeding an MLP head; pixels (prepared as the tower's are) to one score in [0, 1].
 */
export const qualityManifestSchema = z.object({
  ...common,
  role: z.literal('quality'),
  /** The id of the image tower it was made from (its input contract is that tower's). */
  backbone: z.string().min(1),
  files: z.object({ model: fileRef }),
  input: imageInput,
  /** The score under which an image is `low` quality, fitted on a tuning set (see `calibration`). */
  threshold: z.number().gt(0).lt(1),
  /** How the threshold was fitted: free-form, shown in reports. */
  calibration: z.record(z.string(), z.unknown()).optional(),
});

/** Any model manifest (`models/<id>/manifest.json`). */
export const modelManifestSchema = z.discriminatedUnion('role', [
  imageManifestSchema,
  textManifestSchema,
  qualityManifestSchema,
]);

export type ImageModelManifest = z.infer<typeof imageManifestSchema>;
export type TextModelManifest = z.infer<typeof textManifestSchema>;
export type QualityModelManifest = z.infer<typeof qualityManifestSchema>;
export type ModelManifest = z.infer<typeof modelManifestSchema>;
