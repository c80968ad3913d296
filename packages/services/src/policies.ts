/**
 * What the configuration decides beyond building things: how ingest groups near-duplicates, the caption screen, the
 * quality head, and the audit's defaults. Each returns the policy, or why it is off.
 */
import {
  ENCODER_ROLES,
  type Config,
  type EncoderRole,
  type ImageEncoder,
  type TextEncoder,
  type VectorStore,
} from '@lookalike/core';
import type { CalibrationState } from '@lookalike/distance';
import { OnnxQualityModel, type EncoderRuntimeOptions, type ModelRegistry } from '@lookalike/encoder';
import type { DuplicatePolicy } from '@lookalike/ingest';
import { auditOptionsSchema, type AuditOptions } from '@lookalike/queue';
import { CaptionScreen, type ScreeningModel } from '@lookalike/screening';

/**
 * How ingest groups near-duplicates: DUPLICATES' tower at DUPLICATE_THRESHOLD, or else at the tower's calibrated
 * same-item threshold. Undefined when DUPLICATES is `off`; a sentence saying why grouping is off when the tower has
 * no calibration and no threshold is set.
 */
export function duplicatePolicy(
  config: Config,
  calibrations: Record<EncoderRole, CalibrationState>,
): DuplicatePolicy | string | undefined {
  const { tower, threshold } = config.ingest.duplicates;
  if (tower === 'off') return undefined;
  if (threshold !== undefined) return { tower, threshold };
  const state = calibrations[tower];
  if (state.status === 'calibrated') return { tower, threshold: state.calibration.thresholds.sameItem };
  return `Near-duplicate grouping is off: the ${tower} tower has no distance calibration (${state.reason}); set DUPLICATE_THRESHOLD or run npx lookalike calibrate-distance.`;
}

/**
 * The quality model of the configuration: the one made from QUALITY's tower, graded at QUALITY_THRESHOLD or else at
 * the threshold its manifest was fitted with. Undefined when QUALITY is `off`; a sentence saying why scoring is off
 * when the models folder has none, or several, for that tower (a real checkpoint the project did not train one for).
 */
export async function qualityHead(
  config: Config,
  registry: ModelRegistry,
  modelIds: Record<EncoderRole, string>,
  runtime: EncoderRuntimeOptions,
): Promise<OnnxQualityModel | string | undefined> {
  const { tower, threshold } = config.ingest.quality;
  if (tower === 'off') return undefined;
  const found = registry.findQuality(modelIds[tower]);
  if (typeof found === 'string') return `Quality scoring is off (QUALITY=${tower}): ${found}`;
  return OnnxQualityModel.load(registry, tower, modelIds[tower], {
    ...runtime,
    ...(threshold === undefined ? {} : { threshold }),
  });
}

/**
 * The caption screen of the configuration (SCREENING's tower, SCREENING_MIN_COUNT, SCREENING_THRESHOLD) over the
 * store, its model kept in the collection's metadata. Undefined when SCREENING is `off`; a sentence saying why
 * screening is off when the text tower does not embed into the tower's space.
 */
export function captionScreen(
  config: Config,
  store: VectorStore,
  encoders: Record<EncoderRole, ImageEncoder>,
  text: TextEncoder,
  write: (model: ScreeningModel) => Promise<void>,
  read: () => Promise<unknown>,
): CaptionScreen | string | undefined {
  const { tower, minCount, threshold } = config.ingest.screening;
  if (tower === 'off') return undefined;
  const dims = ENCODER_ROLES.map((r) => encoders[r].info.dim);
  if (dims.some((d) => d !== text.info.dim))
    return `Caption screening is off: the text model ${text.info.id} embeds to ${text.info.dim} dimensions and the image towers to ${dims.join(' and ')}; screening needs a text tower trained with the image towers.`;
  return new CaptionScreen(
    store,
    text,
    { read, write },
    { tower, threshold, minCount, textModel: text.info.id, imageModel: encoders[tower].info.id },
  );
}

/** The audit defaults from the configuration. */
export function auditDefaults(config: Config): AuditOptions {
  return auditOptionsSchema.parse({
    queries: config.audit.queries,
    epsilons: config.audit.epsilons,
    steps: config.audit.steps,
    attack: config.audit.attack,
    perceptual: { triplets: config.audit.triplets },
    quality: { images: config.audit.qualityImages },
  });
}
