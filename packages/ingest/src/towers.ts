/**
 * Which towers made a set of vectors: per role the model id, the preprocessing hash (spec and mode) and the
 * dimension. A collection of the vector store holds vectors of one set only (see `generations.ts`); its fingerprint
 * names it.
 */
import { createHash } from 'node:crypto';
import {
  ENCODER_ROLES,
  type EncoderRole,
  type ImageEncoder,
  type PointPayload,
  type PreprocessMode,
} from '@lookalike/core';
import { preprocessHash } from '@lookalike/imaging';

/** One tower as the vectors it made record it. */
export interface TowerSpec {
  modelId: string;
  /** `preprocessHash(spec, mode)` of `@lookalike/imaging`: a change of resize mode is a change of tower. */
  preprocessHash: string;
  dim: number;
}

/** The two image towers of a collection. */
export type Towers = Record<EncoderRole, TowerSpec>;

/** The towers `encoders` embed with when images are resized in `mode` (PREPROCESS). */
export function towersOf(encoders: Record<EncoderRole, ImageEncoder>, mode: PreprocessMode): Towers {
  return Object.fromEntries(
    ENCODER_ROLES.map((r) => {
      const { id, preprocess, dim } = encoders[r].info;
      return [r, { modelId: id, preprocessHash: preprocessHash(preprocess, mode), dim }];
    }),
  ) as Towers;
}

/** The provenance each point embedded by `towers` carries. */
export function provenanceOf(towers: Towers): PointPayload['embeddings'] {
  return Object.fromEntries(
    ENCODER_ROLES.map((r) => [r, { modelId: towers[r].modelId, preprocessHash: towers[r].preprocessHash }]),
  ) as PointPayload['embeddings'];
}

/** 12 hex digits naming a set of towers (ids, preprocessing and dimensions of both roles). */
export function towersFingerprint(towers: Towers): string {
  const canonical = JSON.stringify(
    ENCODER_ROLES.map((r) => [r, towers[r].modelId, towers[r].preprocessHash, towers[r].dim]),
  );
  return createHash('sha256').update(canonical).digest('hex').slice(0, 12);
}

/** True when both vectors of a point with provenance `embeddings` were made by `towers`. */
export function embeddedBy(embeddings: PointPayload['embeddings'] | undefined, towers: Towers): boolean {
  return (
    !!embeddings &&
    ENCODER_ROLES.every(
      (r) => embeddings[r]?.modelId === towers[r].modelId && embeddings[r]?.preprocessHash === towers[r].preprocessHash,
    )
  );
}

/** True when both sets name the same towers. */
export function sameTowers(a: Towers | undefined, b: Towers | undefined): boolean {
  return !!a && !!b && towersFingerprint(a) === towersFingerprint(b);
}

/** `defect-cnn-fare4 and defect-cnn-clean (128 dimensions, fast preprocessing 184d2907)`, for messages. */
export function describeTowers(towers: Towers): string {
  const { robust, clean } = towers;
  const dims = robust.dim === clean.dim ? `${robust.dim} dimensions` : `${robust.dim} and ${clean.dim} dimensions`;
  const hashes =
    robust.preprocessHash === clean.preprocessHash
      ? `preprocessing ${robust.preprocessHash.slice(0, 8)}`
      : `preprocessing ${robust.preprocessHash.slice(0, 8)} and ${clean.preprocessHash.slice(0, 8)}`;
  return `${robust.modelId} and ${clean.modelId} (${dims}, ${hashes})`;
}

/** Parses towers from recorded JSON; undefined when it is not a full set. */
export function parseTowers(value: unknown): Towers | undefined {
  if (!value || typeof value !== 'object') return undefined;
  const out: Partial<Towers> = {};
  for (const r of ENCODER_ROLES) {
    const t = (value as Record<string, unknown>)[r] as Partial<TowerSpec> | undefined;
    if (
      !t ||
      typeof t.modelId !== 'string' ||
      typeof t.preprocessHash !== 'string' ||
      typeof t.dim !== 'number' ||
      !Number.isInteger(t.dim) ||
      t.dim < 1
    )
      return undefined;
    out[r] = { modelId: t.modelId, preprocessHash: t.preprocessHash, dim: t.dim };
  }
  return out as Towers;
}
