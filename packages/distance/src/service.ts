/**
 * The distance of two images under both towers, with each tower's calibrated verdict: the robust tower's is the
 * answer, the clean tower's is shown beside it (Croce et al.: the robust tower's `1 − cos` is the metric that keeps
 * its answers when one of the images is attacked).
 */
import { ENCODER_ROLES, NotFoundError, ValidationError, type EncoderRole, type VectorStore } from '@lookalike/core';
import { verdictOf, type Calibration, type CalibrationState, type Relation } from './calibration.js';
import { cosineDistance } from './calibrate.js';

/** One side of a comparison: an uploaded image or one already in the store. */
export type ImageRef = { upload: Uint8Array } | { id: string };

/** What {@link DistanceService} is built from. */
export interface DistanceDeps {
  store: VectorStore;
  /** Both towers' embeddings of an uploaded image, decoded and preprocessed as ingest does. */
  embedUpload(bytes: Uint8Array, roles: readonly EncoderRole[]): Promise<Partial<Record<EncoderRole, Float32Array>>>;
  /** Each tower's model id. */
  models: Record<EncoderRole, string>;
  calibrations: Record<EncoderRole, CalibrationState>;
}

/** The calibration a verdict was made with, as responses show it. */
export interface CalibrationSummary {
  thresholds: Calibration['thresholds'];
  sameKindSeparable: boolean;
  fitSeed: number;
  /** How the thresholds did on a catalog of a seed they were not fitted on. */
  heldOut: {
    seed: number;
    sameItem: { recall: number; specificity: number };
    sameKind: { recall: number; specificity: number };
    accuracy: number;
  };
  createdAt: string;
}

/** One tower's answer. */
export interface TowerDistance {
  model: string;
  /** `1 − cos` of the two embeddings, in [0, 2]. */
  distance: number;
  /** Null when the tower has no valid calibration (`uncalibrated` says why). */
  verdict: Relation | null;
  calibration: CalibrationSummary | null;
  uncalibrated?: string;
}

export interface DistanceResult {
  /** The robust tower's verdict (null when it is uncalibrated). */
  verdict: Relation | null;
  towers: Record<EncoderRole, TowerDistance>;
  timings: { embedMs: number };
}

/** The part of a calibration a response shows. */
export function summarize(c: Calibration): CalibrationSummary {
  const rates = (r: { recall: number; specificity: number }) => ({ recall: r.recall, specificity: r.specificity });
  return {
    thresholds: c.thresholds,
    sameKindSeparable: c.sameKindSeparable,
    fitSeed: c.fit.seed,
    heldOut: {
      seed: c.heldOut.seed,
      sameItem: rates(c.heldOut.sameItem),
      sameKind: rates(c.heldOut.sameKind),
      accuracy: c.heldOut.accuracy,
    },
    createdAt: c.createdAt,
  };
}

/** Compares two images with both towers. Holds logic only; the store and the embedding are handed in. */
export class DistanceService {
  constructor(private readonly deps: DistanceDeps) {}

  /** Each tower's calibration state (for the UI and the CLI). */
  calibrations(): Record<EncoderRole, CalibrationState> {
    return this.deps.calibrations;
  }

  /**
   * The distance of `a` and `b` under both towers, and their verdicts. Uploaded bytes may be handed to another
   * thread: do not use them afterwards.
   *
   * @throws NotFoundError when an id is not in the store
   * @throws ImageRejectedError when an upload is not an acceptable image
   */
  async compare(a: ImageRef, b: ImageRef): Promise<DistanceResult> {
    const started = performance.now();
    const ids = [a, b].flatMap((r) => ('id' in r ? [r.id] : []));
    const stored = new Map<string, Partial<Record<EncoderRole, Float32Array>>>();
    if (ids.length > 0) {
      const points = await this.deps.store.get([...new Set(ids)], { withVectors: true });
      for (const p of points) if (p.vectors) stored.set(p.id, p.vectors);
      for (const id of ids) if (!stored.has(id)) throw new NotFoundError('image', id);
    }
    const vectorsOf = async (r: ImageRef): Promise<Partial<Record<EncoderRole, Float32Array>>> =>
      'id' in r ? stored.get(r.id)! : this.deps.embedUpload(r.upload, ENCODER_ROLES);
    const [va, vb] = await Promise.all([vectorsOf(a), vectorsOf(b)]);
    const embedMs = 'upload' in a || 'upload' in b ? performance.now() - started : 0;
    const towers = {} as Record<EncoderRole, TowerDistance>;
    for (const role of ENCODER_ROLES) {
      const [x, y] = [va[role], vb[role]];
      if (!x || !y)
        throw new ValidationError(`an image of the comparison has no ${role} vector in the store; re-index it`);
      const distance = cosineDistance(x, y);
      const state = this.deps.calibrations[role];
      towers[role] =
        state.status === 'calibrated'
          ? {
              model: this.deps.models[role],
              distance,
              verdict: verdictOf(distance, state.calibration.thresholds),
              calibration: summarize(state.calibration),
            }
          : { model: this.deps.models[role], distance, verdict: null, calibration: null, uncalibrated: state.reason };
    }
    return { verdict: towers.robust.verdict, towers, timings: { embedMs } };
  }
}
