#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { AppError, loadConfig, parseConfig } from '@lookalike/core';
import { createServices } from '@lookalike/services';
import { CatalogOptionsError } from '@lookalike/synth';
import { printSummary, runIngest, sourceOf } from './ingest.js';
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
  .command('ingest')
  .description('Ingest a folder of images, or a JSONL/CSV manifest (path or URL), into the configured store.')
  .argument('<source>', 'folder, manifest file (.jsonl or .csv) or manifest URL')
  .option('--batch-size <n>', 'images per batch job', integer('--batch-size', 1, 1024))
  .action(async (arg: string, flags: { batchSize?: number }) => {
    const config = loadConfig(process.env);
    const services = await createServices(config);
    try {
      printSummary(await runIngest(services, await sourceOf(arg), flags.batchSize ?? config.ingest.batchSize));
    } finally {
      await services.close();
    }
  });

program
  .command('jobs')
  .description('Show job counts per queue.')
  .action(async () => {
    const services = await createServices(loadConfig(process.env));
    try {
      console.log(JSON.stringify(await services.runner.counts(), null, 2));
    } finally {
      await services.close();
    }
  });

program
  .command('demo')
  .description('Run the demo on the embedded default: make the sample catalog if missing, ingest it, show lookalikes.')
  .option('--data <dir>', 'where the demo keeps its data', 'data/demo')
  .option('--count <n>', 'images in the sample catalog', integer('--count', 1, 1_000_000), 400)
  .action(async (flags: { data: string; count: number }) => {
    const data = resolve(flags.data);
    const catalog = join(data, 'catalog');
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
    // The demo always runs on the embedded default, whatever the environment says about Redis or Qdrant.
    const config = parseConfig({
      ...process.env,
      DATA_DIR: data,
      INGEST_ROOTS: data,
      REDIS_URL: undefined,
      QDRANT_URL: undefined,
    });
    const services = await createServices(config);
    try {
      printSummary(await runIngest(services, { kind: 'manifest', location: join(catalog, 'manifest.jsonl') }, 32));
      await showLookalikes(services);
    } finally {
      await services.close();
    }
  });

/** Prints the nearest neighbours of one catalog image with each tower, so the demo shows what search returns. */
async function showLookalikes(services: Awaited<ReturnType<typeof createServices>>): Promise<void> {
  const { points } = await services.store.scroll({
    limit: 1,
    withVectors: true,
    filter: { mustNot: [{ field: 'labels.defect', match: 'none' }] },
  });
  const query = points[0];
  if (!query) return;
  console.log(`\nLookalikes of ${query.payload.source} ("${query.payload.caption ?? ''}"):`);
  for (const using of ['robust', 'clean'] as const) {
    const hits = await services.store.search({ vector: query.vectors![using], using, k: 6 });
    console.log(`  ${using} tower:`);
    for (const h of hits.slice(1)) console.log(`    ${h.score.toFixed(3)}  ${h.payload.caption ?? h.payload.source}`);
  }
}

try {
  await program.parseAsync();
} catch (error) {
  if (error instanceof CatalogOptionsError || error instanceof AppError) {
    console.error(`lookalike: ${error.message}`);
    process.exitCode = 2;
  } else {
    throw error;
  }
}
