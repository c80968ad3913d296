/**
 * Fits and checks a tower's distance thresholds: two synthetic catalogs with edited twins and re-renders (one seed
 * to fit on, another to report), their labelled pairs embedded exactly as ingest embeds images, and a
 * {@link Calibration} per tower.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AppError,
  ENCODER_ROLES,
  cosine,
  type EncoderRole,
  type ImageEncoder,
  type PreprocessMode,
} from '@lookalike/core';
import { isPrepareFailure, type DecodeLimits, type ImagePreparer } from '@lookalike/imaging';
import { GENERATOR, generateCatalog, type ManifestRecord } from '@lookalike/synth';
import { evaluate, fitThresholds, type Calibration, type LabelledDistance } from './calibration.js';
import { catalogPairs, type CatalogPair } from './pairs.js';

/** What embedding image files takes: the towers and the process's preprocessing, as ingest uses them. */
export interface EmbedDeps {
  encoders: Record<EncoderRole, ImageEncoder>;
  preparer: ImagePreparer;
  decode?: DecodeLimits;
  preprocess: PreprocessMode;
}

/** Images decoded and embedded at once. */
const CHUNK = 16;

/** Both towers' embeddings of image files, decoded and preprocessed as ingest does. */
export async function embedFiles(
  deps: EmbedDeps,
  files: readonly string[],
): Promise<Record<EncoderRole, Float32Array[]>> {
  const specs = ENCODER_ROLES.map((r) => deps.encoders[r].info.preprocess);
  const out: Record<EncoderRole, Float32Array[]> = { robust: [], clean: [] };
  for (let i = 0; i < files.length; i += CHUNK) {
    const bytes = await Promise.all(files.slice(i, i + CHUNK).map((f) => readFile(f)));
    const outcomes = await deps.preparer.prepare(bytes, specs, deps.decode, deps.preprocess);
    const prepared = outcomes.map((o, j) => {
      if (isPrepareFailure(o)) throw new AppError(o.code, `${files[i + j]}: ${o.reason}`);
      return o;
    });
    for (const [s, role] of ENCODER_ROLES.entries()) {
      const size = specs[s]!.size;
      const per = 3 * size * size;
      const data = new Float32Array(prepared.length * per);
      prepared.forEach((p, j) => data.set(p.pixels[s]!, j * per));
      out[role].push(...(await deps.encoders[role].embed({ data, n: prepared.length, height: size, width: size })));
    }
  }
  return out;
}

/** Reads a catalog's manifest. */
export async function readCatalog(dir: string): Promise<ManifestRecord[]> {
  return (await readFile(join(dir, 'manifest.jsonl'), 'utf8'))
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as ManifestRecord);
}

/**
 * Every `dataSeed` a model manifest's `training` record names, at any depth: the seeds of the catalogs the tower
 * learnt from, which no calibration or held-out measurement may use.
 */
export function trainingSeeds(training: unknown): number[] {
  if (training === null || typeof training !== 'object') return [];
  return Object.entries(training).flatMap(([key, value]) =>
    key === 'dataSeed' && typeof value === 'number' ? [value] : trainingSeeds(value),
  );
}

/** `1 − cos` of two embeddings. */
export function cosineDistance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  return 1 - cosine(a, b);
}

/** Every labelled pair of the catalog in `dir`, measured by both towers. */
export async function measureCatalog(
  deps: EmbedDeps,
  dir: string,
  seed: number,
): Promise<{ pairs: CatalogPair[]; distances: Record<EncoderRole, LabelledDistance[]>; items: number }> {
  const records = await readCatalog(dir);
  const pairs = catalogPairs(records, seed);
  const files = [...new Set(pairs.flatMap((p) => [p.a.file, p.b.file]))];
  const row = new Map(files.map((f, i) => [f, i]));
  const embedded = await embedFiles(
    deps,
    files.map((f) => join(dir, f)),
  );
  const distances = Object.fromEntries(
    ENCODER_ROLES.map((role) => [
      role,
      pairs.map((p) => ({
        kind: p.kind,
        distance: cosineDistance(embedded[role][row.get(p.a.file)!]!, embedded[role][row.get(p.b.file)!]!),
      })),
    ]),
  ) as Record<EncoderRole, LabelledDistance[]>;
  return { pairs, distances, items: records.length };
}

/** One catalog as measured by {@link measureCatalog}, with its seed. */
export interface MeasuredCatalog {
  seed: number;
  items: number;
  distances: Record<EncoderRole, LabelledDistance[]>;
}

/** The calibration of one tower: thresholds fitted on `fit`, evaluated there and on `heldOut`. */
export function calibrateTower(
  role: EncoderRole,
  model: { id: string; sha256: string },
  preprocess: PreprocessMode,
  fit: MeasuredCatalog,
  heldOut: MeasuredCatalog,
  now: Date = new Date(),
): Calibration {
  if (fit.seed === heldOut.seed) throw new RangeError('the held-out catalog must have a seed of its own');
  const { thresholds, sameKindSeparable } = fitThresholds(fit.distances[role]);
  return {
    schemaVersion: 1,
    metric: '1 - cos',
    model,
    preprocess,
    thresholds,
    sameKindSeparable,
    generator: GENERATOR,
    fit: evaluate(fit.distances[role], thresholds, { seed: fit.seed, items: fit.items }),
    heldOut: evaluate(heldOut.distances[role], thresholds, { seed: heldOut.seed, items: heldOut.items }),
    createdAt: now.toISOString(),
  };
}

/** What {@link calibrateDistances} measures and how. */
export interface CalibrationRun {
  deps: EmbedDeps;
  /** Each tower's model (id and the sha256 of its model file). */
  models: Record<EncoderRole, { id: string; sha256: string }>;
  /** Seed of the catalog the thresholds are fitted on. */
  fitSeed: number;
  /** Seed of the catalog they are reported on; never the fit seed. */
  heldOutSeed: number;
  /** Items per catalog (each with its twin and its re-renders). */
  count: number;
  rerenders: number;
  /** Pixel side of the catalog images (the catalog's default, 256). */
  size?: number;
  /** Where the two catalogs are written (each in a folder of its own). */
  workDir: string;
  onPhase?: (message: string) => void;
}

/** Both towers' calibrations: two catalogs generated, measured, fitted on one and reported on the other. */
export async function calibrateDistances(run: CalibrationRun): Promise<Record<EncoderRole, Calibration>> {
  if (run.fitSeed === run.heldOutSeed) throw new RangeError('the held-out seed must differ from the fit seed');
  const measure = async (seed: number): Promise<MeasuredCatalog> => {
    const dir = join(run.workDir, `catalog-${seed}`);
    run.onPhase?.(`rendering ${run.count} items of seed ${seed} with twins and ${run.rerenders} re-renders each`);
    await generateCatalog({
      count: run.count,
      seed,
      outDir: dir,
      twins: true,
      rerenders: run.rerenders,
      size: run.size ?? 256,
      overwrite: true,
    });
    run.onPhase?.(`embedding the labelled pairs of seed ${seed} with both towers`);
    const { distances, items } = await measureCatalog(run.deps, dir, seed);
    return { seed, items, distances };
  };
  const fit = await measure(run.fitSeed);
  const heldOut = await measure(run.heldOutSeed);
  const now = new Date();
  return Object.fromEntries(
    ENCODER_ROLES.map((role) => [role, calibrateTower(role, run.models[role], run.deps.preprocess, fit, heldOut, now)]),
  ) as Record<EncoderRole, Calibration>;
}
