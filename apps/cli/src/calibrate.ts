import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { ENCODER_ROLES, ValidationError, loadConfig, parseConfig, type EncoderRole } from '@lookalike/core';
import {
  CALIBRATION_FILE,
  calibrateDistances,
  saveCalibration,
  trainingSeeds,
  type Calibration,
  type Evaluation,
} from '@lookalike/distance';
import { createServices, type Services } from '@lookalike/services';

type Integer = (name: string, min: number, max: number) => (value: string) => number;

/** Options of `lookalike calibrate-distance`. */
export interface CalibrateFlags {
  seed: number;
  heldOutSeed: number;
  count: number;
  rerenders: number;
  write: boolean;
}

const pct = (x: number): string => `${(100 * x).toFixed(1)} %`;

function describe(role: EncoderRole, c: Calibration): string {
  const row = (name: string, e: Evaluation): string =>
    `    ${name.padEnd(9)} seed ${String(e.seed).padEnd(6)} same item: recall ${pct(e.sameItem.recall)}, ` +
    `specificity ${pct(e.sameItem.specificity)} · same kind or closer: recall ${pct(e.sameKind.recall)}, ` +
    `specificity ${pct(e.sameKind.specificity)} · three-way accuracy ${pct(e.accuracy)}`;
  const kinds = Object.entries(c.heldOut.kinds).map(
    ([kind, k]) =>
      `      ${kind.padEnd(24)} ${String(k.pairs).padStart(5)} pairs  median ${k.medianDistance.toFixed(4)}  ` +
      `same item ${pct(k.verdicts['same item']).padStart(7)}  same kind ${pct(k.verdicts['same kind']).padStart(7)}  ` +
      `different ${pct(k.verdicts.different).padStart(7)}`,
  );
  return [
    `  ${role} (${c.model.id}): same item ≤ ${c.thresholds.sameItem.toFixed(4)}, same kind ≤ ${c.thresholds.sameKind.toFixed(4)}` +
      (c.sameKindSeparable
        ? ''
        : ' (the tower cannot separate "same kind" from "same item": no pair is called same kind)'),
    row('fit', c.fit),
    row('held out', c.heldOut),
    '    held out, by kind of pair:',
    ...kinds,
  ].join('\n');
}

/**
 * `lookalike calibrate-distance`: fits both towers' distance thresholds on a synthetic catalog of one seed, reports
 * them on another, and writes each to its model's folder (unless `--no-write`). The seeds must not be ones the
 * towers were trained on.
 */
export async function runCalibrate(flags: CalibrateFlags): Promise<Record<EncoderRole, Calibration>> {
  const work = await mkdtemp(join(tmpdir(), 'lookalike-calibrate-'));
  // Only the towers are needed: the services run on a store of their own in the temporary folder.
  const env = loadConfig(process.env);
  const config = parseConfig({
    ...process.env,
    DATA_DIR: work,
    INGEST_ROOTS: work,
    REDIS_URL: undefined,
    QDRANT_URL: undefined,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
  });
  let services: Services | undefined;
  try {
    services = await createServices(config);
    const { registry, encoders, preparer } = services;
    const models = {} as Record<EncoderRole, { id: string; sha256: string }>;
    for (const role of ENCODER_ROLES) {
      const id = encoders[role].info.id;
      const raw = JSON.parse(await readFile(registry.file(id, { path: 'manifest.json' }), 'utf8')) as {
        training?: unknown;
      };
      const used = trainingSeeds(raw.training);
      for (const seed of [flags.seed, flags.heldOutSeed])
        if (used.includes(seed))
          throw new ValidationError(
            `seed ${seed} made the training data of ${id} (training seeds: ${used.join(', ')}); calibrate on seeds ` +
              'no tower was trained on',
          );
      models[role] = { id, sha256: registry.image(id).files.model.sha256 };
    }
    const calibrations = await calibrateDistances({
      deps: {
        encoders,
        preparer,
        decode: { maxBytes: config.images.maxBytes, maxPixels: config.images.maxPixels, allowSvg: false },
        preprocess: env.images.preprocess,
      },
      models,
      fitSeed: flags.seed,
      heldOutSeed: flags.heldOutSeed,
      count: flags.count,
      rerenders: flags.rerenders,
      workDir: work,
      onPhase: (message) => console.error(`calibrate-distance: ${message}`),
    });
    console.log(`Distance thresholds (1 − cos), fitted on seed ${flags.seed}, reported on seed ${flags.heldOutSeed}:`);
    for (const role of ENCODER_ROLES) {
      console.log(describe(role, calibrations[role]));
      if (flags.write) {
        const file = registry.file(models[role].id, { path: CALIBRATION_FILE });
        await saveCalibration(file, calibrations[role]);
        console.log(`    written to ${file}`);
      }
    }
    return calibrations;
  } finally {
    await services?.close();
    await rm(work, { recursive: true, force: true });
  }
}

/** Adds `lookalike calibrate-distance` to the program. */
export function registerCalibrate(program: Command, integer: Integer): void {
  program
    .command('calibrate-distance')
    .description(
      'Fit the distance thresholds of both towers (same item / same kind / different) on a synthetic catalog, ' +
        "report them on a held-out one, and write them to each model's folder.",
    )
    .option('--seed <n>', 'seed of the catalog the thresholds are fitted on', integer('--seed', 0, 2 ** 32 - 1), 31)
    .option(
      '--held-out-seed <n>',
      'seed of the catalog they are reported on',
      integer('--held-out-seed', 0, 2 ** 32 - 1),
      32,
    )
    .option(
      '--count <n>',
      'items per catalog (each with its twin and re-renders)',
      integer('--count', 20, 100_000),
      600,
    )
    .option('--rerenders <n>', 're-renders per item', integer('--rerenders', 1, 4), 2)
    .option('--no-write', 'print the calibration without writing it')
    .action(async (flags: CalibrateFlags) => {
      if (flags.seed === flags.heldOutSeed) throw new ValidationError('--held-out-seed must differ from --seed');
      await runCalibrate(flags);
    });
}
