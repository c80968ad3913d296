import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { ENCODER_ROLES, ValidationError, loadConfig } from '@lookalike/core';
import type { DistanceResult, ImageRef } from '@lookalike/distance';
import { createServices, queryServices, type Services } from '@lookalike/services';

const IMAGE_ID = /^[0-9a-f]{64}$/;

/** A command-line side of a comparison: a stored image's id (64 hex digits) or an image file. */
async function sideOf(arg: string): Promise<ImageRef> {
  if (IMAGE_ID.test(arg)) return { id: arg };
  try {
    return { upload: await readFile(arg) };
  } catch (error) {
    throw new ValidationError(`${arg} is neither a readable image file nor an image id (64 hex digits)`, [
      { path: arg, message: (error as NodeJS.ErrnoException).code ?? 'unreadable' },
    ]);
  }
}

/** Both towers' distances of two images, each a file or a stored image's id. */
export async function compareImages(services: Services, a: string, b: string): Promise<DistanceResult> {
  const { distance } = queryServices(services);
  return distance.compare(await sideOf(a), await sideOf(b));
}

/** The comparison as a few lines: the verdict, then each tower's distance, verdict and thresholds. */
export function formatDistance(result: DistanceResult): string {
  const lines = [`Verdict (robust tower): ${result.verdict ?? 'none (the robust tower is not calibrated)'}`];
  for (const role of ENCODER_ROLES) {
    const t = result.towers[role];
    const head = `  ${role.padEnd(6)} ${t.model.padEnd(20)} distance ${t.distance.toFixed(4)}`;
    lines.push(
      t.calibration
        ? `${head}  ${t.verdict!.padEnd(9)}  (same item ≤ ${t.calibration.thresholds.sameItem.toFixed(4)}, ` +
            `same kind ≤ ${t.calibration.thresholds.sameKind.toFixed(4)}; held out on seed ` +
            `${t.calibration.heldOut.seed}: same-item recall ${(100 * t.calibration.heldOut.sameItem.recall).toFixed(1)} %, ` +
            `specificity ${(100 * t.calibration.heldOut.sameItem.specificity).toFixed(1)} %)`
        : `${head}  no verdict: ${t.uncalibrated}`,
    );
  }
  return lines.join('\n');
}

/** Adds `lookalike distance` to the program. */
export function registerDistance(program: Command): void {
  program
    .command('distance')
    .description(
      'The distance of two images under both towers (1 − cos) and the calibrated verdict: same item, same kind or ' +
        'different. Each image is a file or the id of a stored image.',
    )
    .argument('<a>', 'image file or stored image id')
    .argument('<b>', 'image file or stored image id')
    .option('--json', 'print the result as JSON', false)
    .action(async (a: string, b: string, flags: { json: boolean }) => {
      const services = await createServices(loadConfig(process.env), { searchIndex: 'lazy' });
      try {
        const result = await compareImages(services, a, b);
        console.log(flags.json ? JSON.stringify(result, null, 2) : formatDistance(result));
      } finally {
        await services.close();
      }
    });
}
