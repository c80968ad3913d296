/**
 * End-to-end ingest throughput against the encoders alone, side by side in one run, for three kinds of file:
 * 1024 × 768 JPEG (synthetic catalog renders at 1024 px, cropped to 4:3), 4000 × 3000 JPEG (the same renders
 * enlarged, with sensor-like grain, as a 12 MP camera photo) and 1024 × 768 PNG. Each goes through the real batch
 * handlers (read, sha256, provenance check, decode + resize on the preprocessing pool, both towers, upsert into an
 * embedded store in a temp folder) on the in-process runner; the baseline is both towers' `embed()` on the same
 * images already preprocessed, at the batch size the handlers embed at (their chunk size). Ingest runs on the
 * fast preprocessing path (the default) and, as the path before it, on the exact one. Per phase it reports img/s,
 * CPU time per image (every thread of the process), peak RSS and the event loop's delay (p50, p99, max). The
 * phases alternate over `--rounds` rounds and the medians are reported (a ratio is the median of the rounds'
 * ratios), so that a change in the machine's load does not favour one phase. Writes bench/results/ingest.json and
 * bench/results/ingest.md.
 *
 *   npm run bench:ingest [-- --models tiny,vitb32 --kinds jpeg,camera,png --images 128 --camera-images 32
 *                            --rounds 3 --batch-size 32 --chunk 16 --threads N --concurrency 2 --encoder-threads 0
 *                            --skip-exact]
 *
 * `tiny` is the committed tiny towers (a few ms of model per image: decode and resize weigh as much);
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
import {
  ENCODER_ROLES,
  parseConfig,
  type EncoderRole,
  type ImageEncoder,
  type PixelBatch,
  type PreprocessMode,
} from '@lookalike/core';
import { ModelRegistry, OnnxImageEncoder } from '@lookalike/encoder';
import { PreprocessPool, defaultPreprocessThreads, fromBytes, type ImagePreparer } from '@lookalike/imaging';
import { createIngestHandlers, type BatchResult } from '@lookalike/ingest';
import { InProcessJobRunner } from '@lookalike/queue';
import { INDEXED_FIELDS } from '@lookalike/services';
import { EmbeddedVectorStore } from '@lookalike/store-embedded';
import { generateCatalog } from '@lookalike/synth';

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: 'tiny,vitb32' },
    kinds: { type: 'string', default: 'jpeg,camera,png' },
    images: { type: 'string', default: '128' },
    'camera-images': { type: 'string', default: '32' },
    'batch-size': { type: 'string', default: '32' },
    chunk: { type: 'string', default: '16' },
    threads: { type: 'string', default: String(defaultPreprocessThreads()) },
    concurrency: { type: 'string', default: String(parseConfig({}).ingest.concurrency) },
    'encoder-threads': { type: 'string', default: '0' },
    rounds: { type: 'string', default: '3' },
    'skip-exact': { type: 'boolean', default: false },
  },
});
const COUNT = Number(values.images);
const CAMERA_COUNT = Number(values['camera-images']);
const BATCH_SIZE = Number(values['batch-size']);
const CHUNK = Number(values.chunk);
const THREADS = Number(values.threads);
const ROUNDS = Number(values.rounds);
const CONCURRENCY = Number(values.concurrency);
/** onnxruntime intra-op threads per tower; 0 lets onnxruntime choose (ENCODER_THREADS' default). */
const RUNTIME = { threads: Number(values['encoder-threads']) };
const CACHE = 'bench/.cache/ingest';
const ENCODERS = 'bench/.cache/encoder';
/** Crops per rendered 1024 × 1024 image: different bytes (so different ids) of similar content. */
const CROPS = 8;

/** The kinds of file measured, each a folder of distinct files made once from catalog renders (cached). */
const KINDS = {
  jpeg: { label: '1024×768 JPEG', ext: 'jpg', count: COUNT },
  camera: { label: '4000×3000 JPEG', ext: 'jpg', count: CAMERA_COUNT },
  png: { label: '1024×768 PNG', ext: 'png', count: COUNT },
} as const;
type Kind = keyof typeof KINDS;

/** A 4000 × 3000 camera-like JPEG of a render: enlarged, with ±6 levels of seeded grain so it compresses as photos do. */
async function cameraPhoto(source: string, seed: number): Promise<Buffer> {
  const { data } = await sharp(source).resize(4000, 3000, { fit: 'fill' }).raw().toBuffer({ resolveWithObject: true });
  let s = seed >>> 0;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = Math.min(255, Math.max(0, data[i]! + ((s >>> 24) % 13) - 6));
  }
  return sharp(data, { raw: { width: 4000, height: 3000, channels: 3 } })
    .jpeg({ quality: 90 })
    .toBuffer();
}

/** Writes the files of `kind` (cached); returns their paths. */
async function files(kind: Kind): Promise<string[]> {
  const { ext, count } = KINDS[kind];
  const dir = join(CACHE, kind);
  const list = Array.from({ length: count }, (_, i) => join(dir, `${kind}-${String(i).padStart(5, '0')}.${ext}`));
  if (list.every((f) => existsSync(f))) return list;
  await mkdir(dir, { recursive: true });
  const renders = join(CACHE, 'renders');
  const sources = Math.ceil(Math.max(COUNT, CAMERA_COUNT) / CROPS);
  if (!existsSync(join(renders, 'catalog.json')) || !existsSync(join(renders, 'images', rendered(sources - 1)))) {
    console.error(`Rendering ${sources} catalog images at 1024 px (once)...`);
    await generateCatalog({ count: sources, seed: 11, outDir: renders, size: 1024, overwrite: true });
  }
  console.error(`Writing ${count} ${KINDS[kind].label} files...`);
  for (let i = 0; i < count; i++) {
    const source = join(renders, 'images', rendered(Math.floor(i / CROPS)));
    const top = (i % CROPS) * Math.floor(256 / CROPS);
    if (kind === 'camera') await writeFile(list[i]!, await cameraPhoto(source, i + 1));
    else {
      const crop = sharp(source).extract({ left: 0, top, width: 1024, height: 768 });
      await (kind === 'jpeg' ? crop.jpeg({ quality: 90 }) : crop.png()).toFile(list[i]!);
    }
  }
  return list;
}
const rendered = (i: number) => `s11-${String(i).padStart(6, '0')}.png`;

/** Loads both towers of a regime: the committed tiny pair, or random ViT-B/32 twice (exported on first use). */
async function loadTowers(model: string): Promise<Record<EncoderRole, ImageEncoder>> {
  if (model === 'tiny') {
    const registry = await ModelRegistry.open('models');
    return {
      robust: await OnnxImageEncoder.load(registry, 'defect-cnn-fare4', RUNTIME),
      clean: await OnnxImageEncoder.load(registry, 'defect-cnn-clean', RUNTIME),
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
  /** CPU time of every thread of the process (user + system) per image, in ms. */
  cpuMsPerImage: number;
  peakRssMiB: number;
  eventLoopDelayMs: { p50: number; p99: number; max: number };
}

/** Times `fn` over `images` images with the event-loop delay histogram, a CPU clock and an RSS sampler running. */
async function measure(images: number, fn: () => Promise<void>): Promise<Phase> {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 25);
  delay.enable();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  delay.disable();
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage().rss);
  const ms = (ns: number) => Math.round(ns / 1e4) / 100;
  return {
    imagesPerSecond: images / seconds,
    seconds,
    cpuMsPerImage: (cpu.user + cpu.system) / 1000 / images,
    peakRssMiB: Math.round(peak / 2 ** 20),
    eventLoopDelayMs: { p50: ms(delay.percentile(50)), p99: ms(delay.percentile(99)), max: ms(delay.max) },
  };
}

/** The encoders-only baseline's input: the images preprocessed into `[CHUNK, 3, S, S]` batches per tower. */
async function pixelBatches(
  encoders: Record<EncoderRole, ImageEncoder>,
  list: string[],
): Promise<Record<EncoderRole, PixelBatch>[]> {
  const bytes = await Promise.all(list.map((f) => readFile(f)));
  const batch = async (chunk: Buffer[], r: EncoderRole): Promise<PixelBatch> => {
    const { size } = encoders[r].info.preprocess;
    const stride = 3 * size * size;
    const data = new Float32Array(chunk.length * stride);
    for (const [i, b] of chunk.entries()) data.set(await fromBytes(b, encoders[r].info.preprocess), i * stride);
    return { data, n: chunk.length, height: size, width: size };
  };
  const batches: Record<EncoderRole, PixelBatch>[] = [];
  for (let i = 0; i < bytes.length; i += CHUNK) {
    const chunk = bytes.slice(i, i + CHUNK);
    const robust = await batch(chunk, 'robust');
    const same = encoders.clean.info.preprocessHash === encoders.robust.info.preprocessHash;
    batches.push({ robust, clean: same ? robust : await batch(chunk, 'clean') });
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
  list: string[],
  preparer: ImagePreparer,
  preprocess: PreprocessMode,
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
    await preparer.prepare([await readFile(list[0]!)], [encoders.robust.info.preprocess], undefined, preprocess);
    const handlers = createIngestHandlers({
      store,
      encoders,
      roots: [process.cwd()],
      fetch: { maxBytes: 1 << 20, timeoutMs: 1000 },
      chunkSize: CHUNK,
      preparer,
      preprocess,
    });
    const runner = new InProcessJobRunner(handlers, { ingest: CONCURRENCY });
    const results: BatchResult[] = [];
    runner.events.on('completed', (_id, name, r) => name === 'ingest-batch' && results.push(r as BatchResult));
    const phase = await measure(list.length, async () => {
      await runner.enqueue('ingest-run', {
        runId: 'bench',
        source: { kind: 'items', items: list.map((f) => ({ location: join(process.cwd(), f) })) },
        batchSize: BATCH_SIZE,
      });
      await runner.idle();
    });
    await runner.close();
    await handlers.close();
    const done = results.reduce((n, r) => n + r.done, 0);
    const failed = results.reduce((n, r) => n + r.failed.length, 0);
    if (done !== list.length || (await store.count()) !== list.length)
      throw new Error(`the ingest stored ${done} of ${list.length} images (${failed} failed)`);
    return { ...phase, done, failed };
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
/** Medians over the rounds, the worst event-loop delays and the highest RSS. */
const summary = (phases: Phase[]) => ({
  imagesPerSecond: median(phases.map((p) => p.imagesPerSecond)),
  cpuMsPerImage: median(phases.map((p) => p.cpuMsPerImage)),
  peakRssMiB: Math.max(...phases.map((p) => p.peakRssMiB)),
  eventLoopDelayMs: {
    p50: median(phases.map((p) => p.eventLoopDelayMs.p50)),
    p99: median(phases.map((p) => p.eventLoopDelayMs.p99)),
    max: Math.max(...phases.map((p) => p.eventLoopDelayMs.max)),
  },
  rounds: phases,
});
type Summary = ReturnType<typeof summary>;

async function main(): Promise<void> {
  const kinds = values.kinds.split(',') as Kind[];
  const unknown = kinds.filter((k) => !(k in KINDS));
  if (unknown.length)
    throw new Error(`unknown --kinds ${unknown.join(', ')}; choose from ${Object.keys(KINDS).join(', ')}`);
  // One kind after another: they share the renders.
  const lists = {} as Record<Kind, string[]>;
  for (const k of kinds) lists[k] = await files(k);
  const cores = availableParallelism();
  const out: Record<string, unknown> = {
    cpu: cpus()[0]?.model,
    cores,
    rounds: ROUNDS,
    kinds: Object.fromEntries(kinds.map((k) => [k, { label: KINDS[k].label, images: lists[k].length }])),
    batchSize: BATCH_SIZE,
    embedBatch: CHUNK,
    preprocessThreads: THREADS,
    encoderThreads: RUNTIME.threads,
    concurrency: CONCURRENCY,
    models: {},
  };
  const rows: string[] = [];
  const date = new Date().toISOString().slice(0, 10);
  for (const model of values.models.split(',')) {
    const encoders = await loadTowers(model);
    const batches = await pixelBatches(encoders, lists[kinds[0]!].slice(0, COUNT));
    const pool = new PreprocessPool({ threads: THREADS });
    const encoderPhases: Phase[] = [];
    const phases = Object.fromEntries(kinds.map((k) => [k, { fast: [] as Phase[], exact: [] as Phase[] }])) as Record<
      Kind,
      Record<PreprocessMode, Phase[]>
    >;
    // Rounds alternate the phases, so that a change in the machine's load hits all of them alike. The encoders'
    // cost per image does not depend on the kind of file, so one baseline per round serves every kind.
    for (let round = 1; round <= ROUNDS; round++) {
      console.error(`${model}, round ${round}/${ROUNDS}: encoders alone, then ingest of ${kinds.join(', ')}`);
      encoderPhases.push(await encoderOnly(encoders, batches));
      for (const k of kinds) {
        phases[k].fast.push(await ingest(encoders, lists[k], pool, 'fast'));
        if (!values['skip-exact']) phases[k].exact.push(await ingest(encoders, lists[k], pool, 'exact'));
      }
    }
    await pool.close();
    await Promise.all(Object.values(encoders).map((e) => e.close()));
    const encoder = summary(encoderPhases);
    const ratioOf = (list: Phase[]) =>
      median(list.map((p, i) => p.imagesPerSecond / encoderPhases[i]!.imagesPerSecond));
    const byKind: Record<string, unknown> = {};
    for (const k of kinds) {
      const fast = summary(phases[k].fast);
      const exact = phases[k].exact.length ? summary(phases[k].exact) : undefined;
      const ratio = ratioOf(phases[k].fast);
      const exactRatio = exact ? ratioOf(phases[k].exact) : undefined;
      byKind[k] = { ingest: fast, ratio, ingestExact: exact, exactRatio };
      const lag = (p: Summary | undefined) => (p ? `${p.eventLoopDelayMs.p99} / ${p.eventLoopDelayMs.max}` : '–');
      const pct = (r: number | undefined) => (r === undefined ? '–' : `${(100 * r).toFixed(0)} %`);
      rows.push(
        `| ${date} | ${model} (${encoders.robust.info.preprocess.size} px) | ${KINDS[k].label} | ${cores} | ` +
          `${THREADS} / ${RUNTIME.threads || 'auto'} / ${CONCURRENCY} | ${encoder.imagesPerSecond.toFixed(1)} | ` +
          `${fast.imagesPerSecond.toFixed(1)} | **${pct(ratio)}** | ${exact ? exact.imagesPerSecond.toFixed(1) : '–'} | ` +
          `${pct(exactRatio)} | ${encoder.cpuMsPerImage.toFixed(1)} / ${fast.cpuMsPerImage.toFixed(1)} | ` +
          `${pct(encoder.cpuMsPerImage / fast.cpuMsPerImage)} | ${fast.peakRssMiB} | ${exact?.peakRssMiB ?? '–'} | ` +
          `${lag(encoder)} | ${lag(fast)} | ${lag(exact)} |`,
      );
    }
    (out.models as Record<string, unknown>)[model] = {
      input: encoders.robust.info.preprocess.size,
      encoderOnly: encoder,
      kinds: byKind,
    };
  }
  const header =
    '| date | towers | files | cores | pool threads / encoder threads / concurrency | encoders only img/s | ' +
    'ingest img/s | ingest ÷ encoders | ingest, exact path img/s | exact ÷ encoders | CPU ms/img: encoders / ingest | ' +
    'encoders ÷ ingest CPU | peak RSS MiB: ingest | exact | loop delay p99 / max ms: encoders | ingest | exact |\n' +
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |';
  await mkdir('bench/results', { recursive: true });
  await writeFile('bench/results/ingest.json', JSON.stringify(out, null, 2) + '\n');
  await writeFile('bench/results/ingest.md', `${header}\n${rows.join('\n')}\n`);
  console.log(
    `Job batches of ${BATCH_SIZE}, embedded ${CHUNK} at a time, ${cores} cores, ${THREADS} preprocessing ` +
      `thread(s), encoder threads ${RUNTIME.threads || 'auto'}, concurrency ${CONCURRENCY}; medians of ${ROUNDS} ` +
      'rounds (loop delay: median p99 / worst max). "encoders ÷ ingest CPU" is what the ratio would be if both ' +
      'phases kept every core busy.\n',
  );
  console.log(header);
  for (const r of rows) console.log(r);
}

await main();
