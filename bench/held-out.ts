/** The held-out rule of the quality benchmarks: a seed that trained no tower and calibrated no distance. */
import { ENCODER_ROLES, type EncoderRole } from '@lookalike/core';
import { CALIBRATION_FILE, loadCalibration, trainingSeeds, type CalibrationState } from '@lookalike/distance';
import type { ModelRegistry } from '@lookalike/encoder';

/**
 * Each tower's distance calibration, after checking that `seed` neither trained a tower (the manifests' training
 * data seeds) nor fitted or held out a calibration; throws when it did.
 */
export async function heldOutCalibrations(
  registry: ModelRegistry,
  modelIds: Record<EncoderRole, string>,
  seed: number,
): Promise<Record<EncoderRole, CalibrationState>> {
  const used = new Set(ENCODER_ROLES.flatMap((r) => trainingSeeds(registry.image(modelIds[r]).training as unknown)));
  if (used.has(seed)) throw new Error(`seed ${seed} trained a tower; pick a held-out seed`);
  const states = {} as Record<EncoderRole, CalibrationState>;
  for (const role of ENCODER_ROLES) {
    const m = registry.image(modelIds[role]);
    const state = await loadCalibration(
      registry.file(m.id, { path: CALIBRATION_FILE }),
      { id: m.id, sha256: m.files.model.sha256 },
      'fast',
    );
    if (state.status === 'calibrated' && [state.calibration.fit.seed, state.calibration.heldOut.seed].includes(seed))
      throw new Error(`seed ${seed} calibrated the distances; pick another`);
    states[role] = state;
  }
  return states;
}
