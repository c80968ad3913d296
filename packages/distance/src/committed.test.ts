import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENCODER_ROLES, parseConfig } from '@lookalike/core';
import { describe, expect, it } from 'vitest';
import { trainingSeeds } from './calibrate.js';
import { CALIBRATION_FILE, loadCalibration } from './calibration.js';

const MODELS = fileURLToPath(new URL('../../../models/', import.meta.url));

describe('the committed towers', () => {
  it('each have a distance calibration of their own model file, fitted and reported on seeds of their own', async () => {
    const config = parseConfig({});
    for (const role of ENCODER_ROLES) {
      const id = config.models[role];
      const manifest = JSON.parse(await readFile(join(MODELS, id, 'manifest.json'), 'utf8')) as {
        files: { model: { sha256: string } };
        training?: unknown;
      };
      const state = await loadCalibration(
        join(MODELS, id, CALIBRATION_FILE),
        { id, sha256: manifest.files.model.sha256 },
        config.images.preprocess,
      );
      // A tower retrained without `lookalike calibrate-distance` fails here, with the reason.
      expect(state.status === 'calibrated' ? 'calibrated' : state.reason).toBe('calibrated');
      if (state.status !== 'calibrated') continue;
      const { calibration } = state;
      expect(calibration.fit.seed).not.toBe(calibration.heldOut.seed);
      const trained = trainingSeeds(manifest.training);
      expect(trained.length).toBeGreaterThan(0);
      expect(trained).not.toContain(calibration.fit.seed);
      expect(trained).not.toContain(calibration.heldOut.seed);
      expect(calibration.thresholds.sameItem).toBeLessThanOrEqual(calibration.thresholds.sameKind);
      // The held-out catalog's every kind of pair was measured.
      expect(Object.keys(calibration.heldOut.kinds)).toHaveLength(8);
    }
  });
});
