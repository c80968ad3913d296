/**
 * End-to-end ingest throughput against the encoders alone, side by side in one run: 1024 × 768 JPEG files (synthetic
 * catalog renders at 1024 px, cropped to 4:3) go through the real batch handlers (read, sha256, provenance check,
 * decode + resize on the preprocessing pool, both towers, upsert into an embedded store in a temp folder) on the
 * in-process runner; the baseline is both towers' `embed()` on the same images already preprocessed, at the batch
 * size the handlers embed at (their chunk size). Also runs the handlers with preprocessing on the main thread (the
 * path before the pool) and reports, per phase, peak RSS and the event loop's delay (p50, p99, max). The phases
 * alternate over `--rounds` rounds and the medians are reported (the ratio is the median of the rounds' ratios), so
 * that a change in the machine's load does not favour one phase. Writes bench/results/ingest.json and
 * bench/results/ingest.md.
 *
 *   npm run bench:ingest [-- --models tiny,vitb32 --images 128 --rounds 3 --batch-size 32 --chunk 16 --threads N
 *                            --concurrency 1 --encoder-threads 0 --skip-main-thread]
 *
 * `tiny` is the committed tiny towers (about a millisecond of model per image: decode and resize dominate);
 * `vitb32` is random-weight ViT-B/32 for both towers (the production-size model; exported to bench/.cache on the
 * first run, as bench/encoder.ts does).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { ENCODER_ROLES, type EncoderRole, type ImageEncoder, type PixelBatch } from '@lookalike/core';
import { ModelRegistry, OnnxImageEncoder } from '@lookalike/encoder';
import {
  MainThreadPreparer,
  PreprocessPool,
  decodeImage,
  defaultPreprocessThreads,
  preprocessBatch,
  type ImagePreparer,
} from '@lookalike/imaging';
import { createIngestHandlers, type BatchResult } from '@lookalike/ingest';
import { InProcessJobRunner } from '@lookalike/queue';
import { INDEXED_FIELDS } from '@lookalike/services';
import { EmbeddedVectorStore } from '@lookalike/store-embedded';
import { generateCatalog } from '@lookalike/synth';

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: 'tiny,vitb32' },
    images: { type: 'string', default: '128' },
    'batch-size': { type: 'string', default: '32' },
    chunk: { type: 'string', default: '16' },
    threads: { type: 'string', default: String(defaultPreprocessThreads()) },
    concurrency: { type: 'string', default: '1' },
    'encoder-threads': { type: 'string', default: '0' },
    rounds: { type: 'string', default: '3' },
    'skip-main-thread': { type: 'boolean', default: false },
  },
});
const COUNT = Number(values.images);
const BATCH_SIZE = Number(values['batch-size']);
const CHUNK = Number(values.chunk);
const THREADS = Number(values.threads);
const ROUNDS = Number(values.rounds);
const CONCURRENCY = Number(values.concurrency);
/** onnxruntime intra-op threads per tower; 0 lets onnxruntime choose (ENCODER_THREADS' default). */
const RUNTIME = { threads: Number(values['encoder-threads']) };
const PHOTOS = 'bench/.cache/ingest-1024x768';
const ENCODERS = 'bench/.cache/encoder';
/** Crops per rendered 1024 × 1024 image: different bytes (so different ids) of similar content. */
const CROPS = 8;

/** Writes `COUNT` distinct 1024 × 768 JPEG files (cached); returns their paths. */
async function photos(): Promise<string[]> {
  const sources = Math.ceil(COUNT / CROPS);
  const files = Array.from({ length: COUNT }, (_, i) => join(PHOTOS, `photo-${String(i).padStart(5, '0')}.jpg`));
  if (files.every((f) => existsSync(f))) return files;
  console.error(`Rendering ${sources} catalog images at 1024 px and cropping ${COUNT} 1024 × 768 JPEG files...`);
  const renders = join(PHOTOS, 'renders');
  await generateCatalog({ count: sources, seed: 11, outDir: renders, size: 1024, overwrite: true });
  for (let i = 0; i < COUNT; i++) {
    const source = join(renders, 'images', `s11-${String(Math.floor(i / CROPS)).padStart(6, '0')}.png`);
    const top = (i % CROPS) * Math.floor(256 / CROPS);
    await sharp(source).extract({ left: 0, top, width: 1024, height: 768 }).jpeg({ quality: 90 }).toFile(files[i]!);
  }
  return files;
}

/** Loads both towers of a regime: the committed tiny pair, or random ViT-B/32 twice (exported on first use). */
async function loadTowers(model: string): Promise<Record<EncoderRole, ImageEncoder>> {
  if (model === 'tiny') {
    const registry = await ModelRegistry.open('models');
    return {
      robust: await OnnxImageEncoder.load(registry, 'tiny-clip-fare4', RUNTIME),
      clean: await OnnxImageEncoder.load(registry, 'tiny-clip-clean', RUNTIME),
    };
  }
  if (!existsSync(join(ENCODERS, `bench-${model}`, 'manifest.json'))) {
    console.error(`Exporting random-weight ${model} to ${ENCODERS} (once)...`);
    execFileSync(
      process.env.PYTHON ?? '/usr/bin/python3',
      [
        'bench/encoder_torch.py',
        '--out',
        ENCODERS,
        '--images',
        'bench/.cache/none',
        '--models',
        model,
        '--seconds',
        '0',
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
  }
  const registry = await ModelRegistry.open(ENCODERS);
  return {
    robust: await OnnxImageEncoder.load(registry, `bench-${model}`, RUNTIME),
    clean: await OnnxImageEncoder.load(registry, `bench-${model}`, RUNTIME),
  };
}

interface Phase {
  imagesPerSecond: number;
  seconds: number;
  peakRssMiB: number;
  eventLoopDelayMs: { p50: number; p99: number; max: number };
}

/** Times `fn` over `images` images with the event-loop delay histogram and an RSS sampler running. */
async function measure(images: number, fn: () => Promise<void>): Promise<Phase> {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 25);
  delay.enable();
  const t0 = performance.now();
  await fn();
  const seconds = (performance.now() - t0) / 1000;
  delay.disable();
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage().rss);
  const ms = (ns: number) => Math.round(ns / 1e4) / 100;
  return {
    imagesPerSecond: images / seconds,
    seconds,
    peakRssMiB: Math.round(peak / 2 ** 20),
    eventLoopDelayMs: { p50: ms(delay.percentile(50)), p99: ms(delay.percentile(99)), max: ms(delay.max) },
  };
}

/** The encoders-only baseline's input: the images preprocessed into `[CHUNK, 3, S, S]` batches per tower. */
async function pixelBatches(
  encoders: Record<EncoderRole, ImageEncoder>,
  files: string[],
): Promise<Record<EncoderRole, PixelBatch>[]> {
  const images = await Promise.all(files.map(async (f) => decodeImage(await readFile(f))));
  const batches: Record<EncoderRole, PixelBatch>[] = [];
  for (let i = 0; i < images.length; i += CHUNK) {
    const chunk = images.slice(i, i + CHUNK);
    const shared = preprocessBatch(chunk, encoders.robust.info.preprocess);
    batches.push({
      robust: shared,
      clean:
        encoders.clean.info.preprocessHash === encoders.robust.info.preprocessHash
          ? shared
          : preprocessBatch(chunk, encoders.clean.info.preprocess),
    });
  }
  return batches;
}

/** Both towers on already-preprocessed batches, one batch after another. */
async function encoderOnly(
  encoders: Record<EncoderRole, ImageEncoder>,
  batches: Record<EncoderRole, PixelBatch>[],
): Promise<Phase> {
  const embedAll = async (list: Record<EncoderRole, PixelBatch>[]) => {
    for (const b of list) await Promise.all(ENCODER_ROLES.map((r) => encoders[r].embed(b[r])));
  };
  await embedAll(batches.slice(0, 1));
  return measure(
    batches.reduce((n, b) => n + b.robust.n, 0),
    () => embedAll(batches),
  );
}

/** The real handlers into a fresh embedded store, on the in-process runner (`--concurrency`: INGEST_CONCURRENCY). */
async function ingest(
  encoders: Record<EncoderRole, ImageEncoder>,
  files: string[],
  preparer: ImagePreparer,
): Promise<Phase & { done: number; failed: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-ingest-'));
  const store = await EmbeddedVectorStore.open(dir);
  try {
    await store.ensureCollection({
      name: 'lookalike',
      dims: { robust: encoders.robust.info.dim, clean: encoders.clean.info.dim },
      indexedFields: INDEXED_FIELDS,
    });
    // Warm the preparer's threads (module loading), as a long-running worker has them warm.
    await preparer.prepare([await readFile(files[0]!)], [encoders.robust.info.preprocess]);
    const handlers = createIngestHandlers({
      store,
      encoders,
      roots: [process.cwd()],
      fetch: { maxBytes: 1 << 20, timeoutMs: 1000 },
      chunkSize: CHUNK,
      preparer,
    });
    const runner = new InProcessJobRunner(handlers, { ingest: CONCURRENCY });
    const results: BatchResult[] = [];
    runner.events.on('completed', (_id, name, r) => name === 'ingest-batch' && results.push(r as BatchResult));
    const phase = await measure(files.length, async () => {
      await runner.enqueue('ingest-run', {
        runId: 'bench',
        source: { kind: 'items', items: files.map((f) => ({ location: join(process.cwd(), f) })) },
        batchSize: BATCH_SIZE,
      });
      await runner.idle();
    });
    await runner.close();
    await handlers.close();
    const done = results.reduce((n, r) => n + r.done, 0);
    const failed = results.reduce((n, r) => n + r.failed.length, 0);
    if (done !== files.length || (await store.count()) !== files.length)
      throw new Error(`the ingest stored ${done} of ${files.length} images (${failed} failed)`);
    return { ...phase, done, failed };
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  await mkdir(PHOTOS, { recursive: true });
  const files = await photos();
  const cores = availableParallelism();
  const out: Record<string, unknown> = {
    cpu: cpus()[0]?.model,
    cores,
    images: COUNT,
    rounds: ROUNDS,
    imageSize: '1024x768 JPEG (q90)',
    batchSize: BATCH_SIZE,
    embedBatch: CHUNK,
    preprocessThreads: THREADS,
    encoderThreads: RUNTIME.threads,
    concurrency: CONCURRENCY,
    models: {},
  };
  const rows: string[] = [];
  const date = new Date().toISOString().slice(0, 10);
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  /** Medians over the rounds, the worst event-loop delays and the highest RSS. */
  const summary = (phases: Phase[]) => ({
    imagesPerSecond: median(phases.map((p) => p.imagesPerSecond)),
    peakRssMiB: Math.max(...phases.map((p) => p.peakRssMiB)),
    eventLoopDelayMs: {
      p50: median(phases.map((p) => p.eventLoopDelayMs.p50)),
      p99: median(phases.map((p) => p.eventLoopDelayMs.p99)),
      max: Math.max(...phases.map((p) => p.eventLoopDelayMs.max)),
    },
    rounds: phases,
  });
  for (const model of values.models.split(',')) {
    const encoders = await loadTowers(model);
    const batches = await pixelBatches(encoders, files);
    const pool = new PreprocessPool({ threads: THREADS });
    const phases: Record<'encoder' | 'pooled' | 'mainThread', Phase[]> = { encoder: [], pooled: [], mainThread: [] };
    // Rounds alternate the phases, so that a change in the machine's load hits all of them alike.
    for (let round = 1; round <= ROUNDS; round++) {
      console.error(
        `${model}, round ${round}/${ROUNDS}: encoders alone, ingest on the pool, ingest on the main thread`,
      );
      phases.encoder.push(await encoderOnly(encoders, batches));
      phases.pooled.push(await ingest(encoders, files, pool));
      if (!values['skip-main-thread']) phases.mainThread.push(await ingest(encoders, files, new MainThreadPreparer()));
    }
    await pool.close();
    await Promise.all(Object.values(encoders).map((e) => e.close()));
    const encoder = summary(phases.encoder);
    const pooled = summary(phases.pooled);
    const mainThread = phases.mainThread.length ? summary(phases.mainThread) : undefined;
    const ratio = median(phases.pooled.map((p, i) => p.imagesPerSecond / phases.encoder[i]!.imagesPerSecond));
    (out.models as Record<string, unknown>)[model] = {
      input: encoders.robust.info.preprocess.size,
      encoderOnly: encoder,
      ingest: pooled,
      ingestMainThread: mainThread,
      ratio,
    };
    const lag = (p: ReturnType<typeof summary> | undefined) =>
      p ? `${p.eventLoopDelayMs.p99} / ${p.eventLoopDelayMs.max}` : 'not measured';
    rows.push(
      `| ${date} | ${model} (${encoders.robust.info.preprocess.size} px) | ${cores} | ${THREADS} | ` +
        `${encoder.imagesPerSecond.toFixed(1)} | ${pooled.imagesPerSecond.toFixed(1)} | ${(100 * ratio).toFixed(0)} % | ` +
        `${mainThread ? mainThread.imagesPerSecond.toFixed(1) : '–'} | ${pooled.peakRssMiB} | ` +
        `${lag(encoder)} | ${lag(pooled)} | ${lag(mainThread)} |`,
    );
  }
  const header =
    '| date | towers | cores | pool threads | encoders only img/s | ingest img/s | ingest ÷ encoders | ' +
    'ingest, main-thread preprocessing img/s | ingest peak RSS MiB | loop delay p99 / max ms: encoders only | ' +
    'ingest | ingest, main thread |\n' +
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |';
  await mkdir('bench/results', { recursive: true });
  await writeFile('bench/results/ingest.json', JSON.stringify(out, null, 2) + '\n');
  await writeFile('bench/results/ingest.md', `${header}\n${rows.join('\n')}\n`);
  console.log(
    `${COUNT} distinct 1024 × 768 JPEG files, job batches of ${BATCH_SIZE}, embedded ${CHUNK} at a time, ` +
      `${cores} cores, ${THREADS} preprocessing thread(s); medians of ${ROUNDS} rounds (loop delay: median p99 / ` +
      'worst max).\n',
  );
  console.log(header);
  for (const r of rows) console.log(r);
}

await main();
