#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { AppError, loadConfig, parseConfig } from '@lookalike/core';
import { createServices } from '@lookalike/services';
import { CatalogOptionsError, MAX_RERENDERS, RERENDERS_MANIFEST } from '@lookalike/synth';
import { printAudit, runAudit } from './audit.js';
import { registerCalibrate } from './calibrate.js';
import { registerDistance } from './distance.js';
import { registerScreening } from './screening.js';
import { printRerenderGrouping, printSummary, runIngest, sourceOf } from './ingest.js';
import { showLookalikes } from './lookalikes.js';
import { registerReindex, reindexIfPending } from './reindex.js';
import { serve } from './serve.js';
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
  .option(
    '--rerenders <n>',
    'also render n re-renders of each image: the same item photographed again (near-duplicates)',
    integer('--rerenders', 0, MAX_RERENDERS),
    0,
  )
  .option(
    '--distort',
    'also render a distorted copy of each image (blur, motion, noise, JPEG, exposure, contrast at known severities, ' +
      'with its quality target; distorted.jsonl lists them)',
    false,
  )
  .addOption(new Option('--format <format>', 'image format').choices(['png', 'jpeg']).default('png'))
  .option('--size <px>', 'side of the square images in pixels', integer('--size', 32, 2048), 256)
  .option('--overwrite', 'replace an existing catalog in --out', false)
  .action(
    async (flags: {
      out: string;
      count: number;
      seed: number;
      twins: boolean;
      rerenders: number;
      distort: boolean;
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

registerReindex(program, integer);
registerCalibrate(program, integer);
registerDistance(program);
registerScreening(program, integer);

program
  .command('jobs')
  .description('Show job counts per queue (BullMQ, with REDIS_URL).')
  .action(async () => {
    const config = loadConfig(process.env);
    if (!config.redis) {
      // Without Redis every job runs in the process that queued it, which has exited: there is nothing to count.
      console.log(
        'No REDIS_URL: jobs run inside the process that starts them (lookalike ingest, reindex, audit, or the API), ' +
          'so there is no shared queue to count. Set REDIS_URL to count the BullMQ queues; `GET /v1/jobs/:id` on a ' +
          'running API shows its own jobs.',
      );
      return;
    }
    // Counting takes no jobs: no workers in this process, and no event listeners.
    const services = await createServices(config, { stale: 'serve', workers: [], jobEvents: false });
    try {
      console.log(JSON.stringify(await services.runner.counts(), null, 2));
    } finally {
      await services.close();
    }
  });

/** `0,1/255,4/255` or `0.0157` → budgets in [0,1]. */
function epsilons(value: string): number[] {
  const out = value.split(',').map((part) => {
    const m = /^\s*(\d+(?:\.\d+)?)(?:\/(\d+(?:\.\d+)?))?\s*$/.exec(part);
    const v = m ? Number(m[1]) / (m[2] === undefined ? 1 : Number(m[2])) : NaN;
    if (!Number.isFinite(v) || v < 0 || v > 1)
      throw new InvalidArgumentError(`--eps takes budgets such as 0,1/255,4/255 in [0,1]; "${part}" is not one.`);
    return v;
  });
  if (!out.length || out.length > 16) throw new InvalidArgumentError('--eps takes 1 to 16 budgets.');
  return out;
}

program
  .command('audit')
  .description(
    'Attack catalog images with PGD/APGD against the robust and the clean tower, and report how retrieval holds up.',
  )
  .option('--data <dir>', 'data folder of the catalog to audit (sets DATA_DIR and INGEST_ROOTS), e.g. data/demo')
  .option('--queries <n>', 'query images drawn from the catalog', integer('--queries', 1, 100_000))
  .option('--eps <list>', 'budgets in [0,1] pixel units, e.g. 0,1/255,2/255,4/255,8/255', epsilons)
  .option('--steps <n>', 'attack steps', integer('--steps', 1, 10_000))
  .addOption(new Option('--attack <name>', 'attack').choices(['pgd', 'apgd']))
  .addOption(new Option('--norm <norm>', 'threat model').choices(['linf', 'l2']))
  .option('--restarts <n>', 'random restarts', integer('--restarts', 1, 16))
  .option('--k <n>', 'neighbours compared', integer('--k', 1, 100))
  .option('--targeted <n>', 'queries also attacked toward another image', integer('--targeted', 0, 100_000))
  .option('--seed <n>', 'random seed', integer('--seed', 0, 2 ** 32 - 1))
  .option('--batch-size <n>', 'queries per batch job', integer('--batch-size', 1, 256))
  .option('--triplets <n>', '2AFC triplets of the perceptual part (0 leaves it out)', integer('--triplets', 0, 10_000))
  .option(
    '--quality-images <n>',
    'photos of the quality part, half good and half unusable (0 leaves it out)',
    integer('--quality-images', 0, 10_000),
  )
  .action(
    async (flags: {
      data?: string;
      queries?: number;
      eps?: number[];
      steps?: number;
      attack?: 'pgd' | 'apgd';
      norm?: 'linf' | 'l2';
      restarts?: number;
      k?: number;
      targeted?: number;
      seed?: number;
      batchSize?: number;
      triplets?: number;
      qualityImages?: number;
    }) => {
      const env = flags.data
        ? { ...process.env, DATA_DIR: resolve(flags.data), INGEST_ROOTS: resolve(flags.data) }
        : process.env;
      const services = await createServices(parseConfig(env));
      try {
        const d = services.auditDefaults;
        const options = {
          ...d,
          ...(flags.queries === undefined ? {} : { queries: flags.queries }),
          ...(flags.eps === undefined ? {} : { epsilons: flags.eps }),
          ...(flags.steps === undefined ? {} : { steps: flags.steps }),
          ...(flags.attack === undefined ? {} : { attack: flags.attack }),
          ...(flags.norm === undefined ? {} : { norm: flags.norm }),
          ...(flags.restarts === undefined ? {} : { restarts: flags.restarts }),
          ...(flags.k === undefined ? {} : { k: flags.k }),
          ...(flags.targeted === undefined ? {} : { targetedQueries: flags.targeted }),
          ...(flags.seed === undefined ? {} : { seed: flags.seed }),
          ...(flags.batchSize === undefined ? {} : { batchSize: flags.batchSize }),
          ...(flags.triplets === undefined ? {} : { perceptual: { ...d.perceptual, triplets: flags.triplets } }),
          ...(flags.qualityImages === undefined ? {} : { quality: { ...d.quality, images: flags.qualityImages } }),
        };
        printAudit(services, await runAudit(services, options));
      } finally {
        await services.close();
      }
    },
  );

program
  .command('serve')
  .description('Serve the HTTP API and the web UI (with REDIS_URL, also run a BullMQ worker in this process).')
  .option('--host <host>', 'address to listen on (default HOST, 127.0.0.1)')
  .option('--port <n>', 'port to listen on, 0 for any free one (default PORT, 8080)', integer('--port', 0, 65_535))
  .action(async (flags: { host?: string; port?: number }) => {
    const services = await createServices(loadConfig(process.env), { stale: 'reindex' });
    await serve(services, flags);
  });

program
  .command('demo')
  .description(
    'Run the demo on the embedded default: make the sample catalog if missing, ingest it, show lookalikes, and ' +
      'serve the web UI until Ctrl-C.',
  )
  .option('--data <dir>', 'where the demo keeps its data', 'data/demo')
  .option('--count <n>', 'images in the sample catalog', integer('--count', 1, 1_000_000), 400)
  .option('--host <host>', 'address to serve on (default HOST, 127.0.0.1)')
  .option('--port <n>', 'port to serve on, 0 for any free one (default PORT, 8080)', integer('--port', 0, 65_535))
  .option('--no-serve', 'only ingest and print lookalikes, then exit')
  .option('--no-audit', 'skip the quick robustness audit the demo runs when it has none yet')
  .action(
    async (flags: { data: string; count: number; host?: string; port?: number; serve: boolean; audit: boolean }) => {
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
          rerenders: 1,
          distort: false,
          format: 'png',
          size: 256,
          overwrite: true,
        });
      }
      // The demo always runs on the embedded default, whatever the environment says about Redis or Qdrant; it logs
      // only warnings unless LOG_LEVEL asks for more, so the terminal shows the demo, not every request.
      const config = parseConfig({
        ...process.env,
        DATA_DIR: data,
        INGEST_ROOTS: data,
        REDIS_URL: undefined,
        QDRANT_URL: undefined,
        LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
      });
      const services = await createServices(config, { stale: 'serve' });
      try {
        // A data folder from before a model change: re-embed it first, so the demo keeps working.
        await reindexIfPending(services);
        printSummary(await runIngest(services, { kind: 'manifest', location: join(catalog, 'manifest.jsonl') }, 32));
        const again = join(catalog, RERENDERS_MANIFEST);
        if (existsSync(again)) {
          console.log('\nThe same parts photographed again (new light, pose, background or JPEG quality):');
          const summary = await runIngest(services, { kind: 'manifest', location: again }, 32);
          printSummary(summary);
          await printRerenderGrouping(services, summary);
        }
        await showLookalikes(services, services.auditDefaults.k);
        if (flags.audit && (await services.audits.list({ limit: 1 })).length === 0) {
          // A quick audit, so the audits page has one: the nightly flow with a demo-sized budget (the nightly default
          // is 200 queries and APGD-100; `lookalike audit --data data/demo` runs that).
          console.log(
            '\nA quick robustness audit of both towers (20 queries, 20 2AFC triplets and 10 quality-gate photos, APGD-20):',
          );
          const d = services.auditDefaults;
          const options = {
            ...d,
            queries: 20,
            steps: 20,
            targetedQueries: 5,
            batchSize: 5,
            perceptual: { ...d.perceptual, triplets: 20 },
            quality: { ...d.quality, images: 10 },
          };
          printAudit(services, await runAudit(services, options));
        }
      } catch (error) {
        await services.close();
        throw error;
      }
      if (!flags.serve) {
        await services.close();
        return;
      }
      console.log('');
      await serve(services, { host: flags.host, port: flags.port });
    },
  );

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
