#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { CatalogOptionsError } from '@lookalike/synth';
import { runSynth } from './synth.js';

function integer(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}.`);
    return n;
  };
}

const program = new Command()
  .name('lookalike')
  .description('Lookalike: robust lookalike-image search over product and defect archives.')
  .showHelpAfterError();

program
  .command('synth')
  .description('Generate a seeded synthetic product/defect catalog (images, manifest.jsonl, catalog.json).')
  .requiredOption('--out <dir>', 'folder to write the catalog to (must be empty unless --overwrite)')
  .option('--count <n>', 'number of catalog images', integer('--count', 1, 10_000_000), 1000)
  .option('--seed <n>', 'random seed; the same seed gives byte-identical files', integer('--seed', 0, 2 ** 32 - 1), 1)
  .option('--twins', 'also render an edited twin of each image (one attribute changed)', false)
  .addOption(new Option('--format <format>', 'image format').choices(['png', 'jpeg']).default('png'))
  .option('--size <px>', 'side of the square images in pixels', integer('--size', 32, 2048), 256)
  .option('--overwrite', 'replace an existing catalog in --out', false)
  .action(
    async (flags: {
      out: string;
      count: number;
      seed: number;
      twins: boolean;
      format: 'png' | 'jpeg';
      size: number;
      overwrite: boolean;
    }) => {
      await runSynth({ ...flags, out: resolve(flags.out) });
    },
  );

program
  .command('demo')
  .description('Run the demo: generate the sample catalog if it is missing and show what it holds.')
  .option('--data <dir>', 'where the demo keeps its data', 'data/demo')
  .option('--count <n>', 'images in the sample catalog', integer('--count', 1, 1_000_000), 400)
  .action(async (flags: { data: string; count: number }) => {
    const catalog = join(resolve(flags.data), 'catalog');
    if (existsSync(join(catalog, 'catalog.json'))) {
      console.log(`The sample catalog is already at ${catalog}; delete it to make a new one.`);
    } else {
      await runSynth({
        out: catalog,
        count: flags.count,
        seed: 1,
        twins: true,
        format: 'png',
        size: 256,
        overwrite: true,
      });
    }
  });

try {
  await program.parseAsync();
} catch (error) {
  if (error instanceof CatalogOptionsError) {
    console.error(`lookalike: ${error.message}`);
    process.exitCode = 2;
  } else {
    throw error;
  }
}
