/**
 * Image-embedding throughput of packages/encoder (our decode + PIL-exact preprocessing + onnxruntime-node) against
 * PyTorch on the same random-weight towers and the same PNG files, measured side by side in one run, with the
 * machine's float32 matmul rate as the limit: the faster of a large MatMul in onnxruntime-node itself (measured
 * before and after the towers, the better kept) and PyTorch's own matmul, printed beside the theoretical peak
 * (bench/peak.ts). A tower can never beat that limit for long; if one does in a run (the shared machine slowed the
 * MatMul runs), the limit is raised to the tower's own FLOP rate and the report says so, so "of limit" stays at or
 * under 100 %. Writes bench/results/encoder.json and prints a markdown table.
 *
 *   npx tsx --conditions=source bench/encoder.ts [--models tiny,vitb32] [--batches 1,16] [--seconds 8]
 *
 * The first run exports random-weight ViT-B/32 (about 350 MB, cached in bench/.cache, never committed).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { decodeImage, preprocessBatch } from '@lookalike/imaging';
import { ModelRegistry, OnnxImageEncoder } from '@lookalike/encoder';
import { generateCatalog } from '@lookalike/synth';
import { ortMatmulGflops, theoreticalPeak } from './peak.js';

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: 'tiny,vitb32' },
    batches: { type: 'string', default: '1,16' },
    seconds: { type: 'string', default: '8' },
    threads: { type: 'string', default: String(availableParallelism()) },
  },
});
const CACHE = 'bench/.cache/encoder';
const IMAGES = 'bench/.cache/images';
const seconds = Number(values.seconds);
const threads = Number(values.threads);
const batches = values.batches.split(',').map(Number);

interface TorchResult {
  torch: string;
  matmulGflops: number;
  models: Record<
    string,
    { id: string; macsPerImage: number; params: number; torch: { batch: number; imagesPerSecond: number }[] }
  >;
}

async function main(): Promise<void> {
  await mkdir(CACHE, { recursive: true });
  if (!existsSync(join(IMAGES, 'catalog.json'))) {
    await generateCatalog({ count: 64, seed: 99, outDir: IMAGES, overwrite: true });
  }
  const imageDir = join(IMAGES, 'images');
  const python = process.env.PYTHON ?? '/usr/bin/python3';
  console.error('Measuring PyTorch (and exporting the random-weight towers on the first run)...');
  const torch = JSON.parse(
    execFileSync(
      python,
      [
        'bench/encoder_torch.py',
        '--out',
        CACHE,
        '--images',
        imageDir,
        '--models',
        values.models,
        '--batches',
        values.batches,
        '--seconds',
        String(seconds),
        '--threads',
        String(threads),
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 },
    ),
  ) as TorchResult;

  console.error(`Measuring onnxruntime's float32 MatMul with ${threads} threads...`);
  const ortBefore = await ortMatmulGflops(threads);
  const files = (await readdir(imageDir)).filter((f) => f.endsWith('.png')).sort();
  const bytes = await Promise.all(files.map((f) => readFile(join(imageDir, f))));
  const registry = await ModelRegistry.open(CACHE);
  const measured: { name: string; model: (typeof torch.models)[string]; batch: number; ips: number; pt: number }[] = [];
  for (const [name, model] of Object.entries(torch.models)) {
    const encoder = await OnnxImageEncoder.load(registry, model.id, { threads, maxBatch: 64, maxWaitMs: 0 });
    for (const batch of batches) {
      const step = async (i: number): Promise<void> => {
        const chunk = Array.from({ length: batch }, (_, k) => bytes[(i * batch + k) % bytes.length]!);
        const images = await Promise.all(chunk.map((b) => decodeImage(b)));
        await encoder.embed(preprocessBatch(images, encoder.info.preprocess));
      };
      await step(0);
      let n = 0;
      const t0 = performance.now();
      while (performance.now() - t0 < seconds * 1000) await step(n++);
      const ips = (n * batch) / ((performance.now() - t0) / 1000);
      const pt = model.torch.find((r) => r.batch === batch)!.imagesPerSecond;
      measured.push({ name, model, batch, ips, pt });
    }
    await encoder.close();
  }
  const ortMatmul = Math.max(ortBefore, await ortMatmulGflops(threads));
  const peak = theoreticalPeak();
  // The best float32 rate seen in this run: the MatMul runs, or a tower itself if it outran them.
  const towerGflops = Math.max(...measured.map((m) => (m.ips * 2 * m.model.macsPerImage) / 1e9), 0);
  const matmulGflops = Math.max(ortMatmul, torch.matmulGflops, towerGflops);
  const limitNote =
    matmulGflops > Math.max(ortMatmul, torch.matmulGflops)
      ? `a tower ran at ${towerGflops.toFixed(1)} GFLOP/s, above the MatMul runs (${ortMatmul.toFixed(1)}): the ` +
        'shared machine slowed them, so the limit is the tower’s own rate'
      : undefined;
  const blasNote =
    torch.matmulGflops < ortMatmul
      ? `PyTorch ${torch.torch}'s BLAS multiplies at ${torch.matmulGflops.toFixed(1)} GFLOP/s, ` +
        `${(ortMatmul / torch.matmulGflops).toFixed(1)}× slower than onnxruntime's MatMul: TS ÷ PyTorch compares ` +
        'the builds as much as the code'
      : undefined;
  const out: Record<string, unknown> = {
    matmulGflops,
    ortMatmulGflops: ortMatmul,
    torchMatmulGflops: torch.matmulGflops,
    theoreticalPeak: peak,
    ...(limitNote ? { limitNote } : {}),
    ...(blasNote ? { blasNote } : {}),
    torch: torch.torch,
    threads,
    models: {},
  };
  const rows: string[] = [];
  for (const { name, model, batch, ips, pt } of measured) {
    const limit = (matmulGflops * 1e9) / (2 * model.macsPerImage);
    const entry = ((out.models as Record<string, Record<string, unknown>>)[name] ??= {
      ...model,
      limitImagesPerSecond: limit,
      results: [],
    });
    (entry.results as unknown[]).push({ batch, typescript: ips, pytorch: pt, ratio: ips / pt, ofLimit: ips / limit });
    rows.push(
      `| ${name} | ${batch} | ${ips.toFixed(1)} | ${pt.toFixed(1)} | ${(ips / pt).toFixed(2)}×${blasNote ? ' †' : ''} | ` +
        `${limit.toFixed(1)} | ${((100 * ips) / limit).toFixed(0)} % |`,
    );
  }
  await mkdir('bench/results', { recursive: true });
  await writeFile('bench/results/encoder.json', JSON.stringify(out, null, 2) + '\n');
  console.log(
    `float32 matmul, ${threads} threads: onnxruntime ${ortMatmul.toFixed(1)} GFLOP/s, PyTorch ` +
      `${torch.matmulGflops.toFixed(1)} GFLOP/s; theoretical peak ${peak.gflops.toFixed(0)} GFLOP/s ` +
      `(${peak.cores} cores × ${peak.ghz.toFixed(2)} GHz × ${peak.flopsPerCycle} FLOPs/cycle, ${peak.basis}). ` +
      `Limit = ${matmulGflops.toFixed(1)} GFLOP/s ÷ (2 × MACs per image).${limitNote ? ` Note: ${limitNote}.` : ''}\n`,
  );
  console.log('| tower | batch | TypeScript img/s | PyTorch img/s | TS ÷ PyTorch | limit img/s | of limit |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rows) console.log(r);
  if (blasNote) console.log(`\n† ${blasNote}.`);
}

await main();
