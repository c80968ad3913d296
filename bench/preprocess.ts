/**
 * Speed and fidelity of the fast preprocessing path against the exact one, on catalog images: per image, the cosine
 * between the embedding of the fast path's pixels and of the exact (Pillow bit-for-bit) path's, with both committed
 * towers, and the pixel difference; and the time each path takes to decode and preprocess one image on one thread.
 * Also measures the alternative the fast path was chosen over: libvips shrink-on-load to at least 2 × the input
 * size, then the exact Pillow bicubic in JavaScript on the small image. Writes bench/results/preprocess.json and
 * bench/results/preprocess.md.
 *
 *   npm run bench:preprocess [-- --images 256 --camera-images 16 --rounds 3]
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { cosine, ENCODER_ROLES, type EncoderRole, type PreprocessSpec } from '@lookalike/core';
import { ModelRegistry, OnnxImageEncoder } from '@lookalike/encoder';
import { fromBytes, resizeAndCrop, resizeRgb, resizedSize, toPixels } from '@lookalike/imaging';
import { generateCatalog } from '@lookalike/synth';

const { values } = parseArgs({
  options: {
    images: { type: 'string', default: '256' },
    'camera-images': { type: 'string', default: '16' },
    rounds: { type: 'string', default: '3' },
  },
});
const COUNT = Number(values.images);
const CAMERA = Number(values['camera-images']);
const ROUNDS = Number(values.rounds);
const DIR = 'bench/.cache/preprocess';

/** `COUNT` distinct catalog renders at 1024 px as 1024 × 768 JPEG (q90) and PNG, and `CAMERA` 4000 × 3000 JPEGs. */
async function inputs(): Promise<Record<string, string[]>> {
  const name = (i: number) => `s13-${String(i).padStart(6, '0')}`;
  const sets = {
    '1024×768 JPEG': Array.from({ length: COUNT }, (_, i) => join(DIR, 'jpeg', `${name(i)}.jpg`)),
    '1024×768 PNG': Array.from({ length: COUNT }, (_, i) => join(DIR, 'png', `${name(i)}.png`)),
    '4000×3000 JPEG': Array.from({ length: CAMERA }, (_, i) => join(DIR, 'camera', `${name(i)}.jpg`)),
  };
  if (Object.values(sets).every((list) => list.every((f) => existsSync(f)))) return sets;
  console.error(`Rendering ${COUNT} catalog images at 1024 px (once; minutes on two cores)...`);
  await generateCatalog({ count: COUNT, seed: 13, outDir: join(DIR, 'renders'), size: 1024, overwrite: true });
  for (const sub of ['jpeg', 'png', 'camera']) await mkdir(join(DIR, sub), { recursive: true });
  for (let i = 0; i < COUNT; i++) {
    const crop = () =>
      sharp(join(DIR, 'renders', 'images', `${name(i)}.png`)).extract({ left: 0, top: 128, width: 1024, height: 768 });
    await crop().jpeg({ quality: 90 }).toFile(sets['1024×768 JPEG'][i]!);
    await crop().png().toFile(sets['1024×768 PNG'][i]!);
    if (i < CAMERA)
      await sharp(join(DIR, 'renders', 'images', `${name(i)}.png`))
        .resize(4000, 3000, { fit: 'fill' })
        .jpeg({ quality: 90 })
        .toFile(sets['4000×3000 JPEG'][i]!);
  }
  return sets;
}

type Spec = Pick<PreprocessSpec, 'size' | 'interpolation'>;

/** The rejected alternative: shrink-on-load to ≥ 2 × S in libvips, then the exact Pillow bicubic and crop. */
async function twoStage(bytes: Buffer, spec: Spec): Promise<Float32Array> {
  const meta = await sharp(bytes).metadata();
  const target = resizedSize(meta.width, meta.height, spec.size);
  const m = 2 * spec.size;
  const { data, info } = await sharp(bytes)
    .rotate()
    .resize({ width: m, height: m, fit: 'outside', withoutEnlargement: true })
    .toColourspace('srgb')
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const small = {
    data: new Uint8Array(data.buffer, data.byteOffset, data.length),
    width: info.width,
    height: info.height,
  };
  return toPixels(resizeAndCrop(resizeRgb(small, target.width, target.height, spec.interpolation), spec), spec);
}

const PATHS: Record<string, (bytes: Buffer, spec: Spec) => Promise<Float32Array>> = {
  exact: (b, spec) => fromBytes(b, spec, undefined, 'exact'),
  fast: (b, spec) => fromBytes(b, spec, undefined, 'fast'),
  'shrink-on-load + Pillow bicubic': twoStage,
};

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const quantiles = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { min: s[0]!, p01: s[Math.floor(0.01 * (s.length - 1))]!, median: median(s) };
};

async function main(): Promise<void> {
  const sets = await inputs();
  const registry = await ModelRegistry.open('models');
  const towers: Record<EncoderRole, OnnxImageEncoder> = {
    robust: await OnnxImageEncoder.load(registry, 'defect-cnn-fare4'),
    clean: await OnnxImageEncoder.load(registry, 'defect-cnn-clean'),
  };
  const spec = towers.robust.info.preprocess;
  const S = spec.size;
  const out: Record<string, unknown> = { towers: ENCODER_ROLES.map((r) => towers[r].info.id), size: S, sets: {} };
  const rows: string[] = [];
  for (const [set, files] of Object.entries(sets)) {
    const bytes = await Promise.all(files.map((f) => readFile(f)));
    const result: Record<string, unknown> = { images: files.length };
    const pixels: Record<string, Float32Array[]> = {};
    const ms: Record<string, number> = {};
    for (const [name, run] of Object.entries(PATHS)) {
      const times: number[] = [];
      // Rounds alternate nothing here (one path at a time, one thread): the median over rounds evens out load.
      for (let round = 0; round < ROUNDS; round++) {
        const t0 = performance.now();
        const got: Float32Array[] = [];
        for (const b of bytes) got.push(await run(b, spec));
        times.push((performance.now() - t0) / bytes.length);
        pixels[name] = got;
      }
      ms[name] = median(times);
    }
    const embeddings: Record<string, Record<EncoderRole, Float32Array[]>> = {};
    for (const [name, list] of Object.entries(pixels)) {
      const data = new Float32Array(list.length * 3 * S * S);
      list.forEach((p, i) => data.set(p, i * 3 * S * S));
      const batch = { data, n: list.length, height: S, width: S };
      const [robust, clean] = await Promise.all(ENCODER_ROLES.map((r) => towers[r].embed(batch)));
      embeddings[name] = { robust: robust!, clean: clean! };
    }
    for (const name of Object.keys(PATHS)) {
      let sum = 0;
      let max = 0;
      let n = 0;
      pixels[name]!.forEach((p, i) => {
        const e = pixels.exact![i]!;
        for (let k = 0; k < p.length; k++) {
          const d = Math.abs(p[k]! - e[k]!) * 255;
          sum += d;
          max = Math.max(max, d);
          n++;
        }
      });
      const cos = Object.fromEntries(
        ENCODER_ROLES.map((r) => [
          r,
          quantiles(embeddings[name]![r].map((v, i) => cosine(v, embeddings.exact![r][i]!))),
        ]),
      ) as Record<EncoderRole, ReturnType<typeof quantiles>>;
      result[name] = { msPerImage: ms[name], meanAbsDiff255: sum / n, maxAbsDiff255: max, cosineToExact: cos };
      const c = (r: EncoderRole) => `${cos[r].min.toFixed(5)} / ${cos[r].median.toFixed(5)}`;
      rows.push(
        `| ${set} (${files.length}) | ${name} | ${ms[name]!.toFixed(1)} | ${(ms.exact! / ms[name]!).toFixed(1)}× | ` +
          `${(sum / n).toFixed(3)} / ${max.toFixed(0)} | ${c('robust')} | ${c('clean')} |`,
      );
    }
    (out.sets as Record<string, unknown>)[set] = result;
  }
  await Promise.all(ENCODER_ROLES.map((r) => towers[r].close()));
  const header =
    `| files | path | ms/img (one thread) | speed-up over exact | pixel |Δ| mean / max (of 255) | ` +
    `cosine to exact, ${towers.robust.info.id}: min / median | ${towers.clean.info.id}: min / median |\n` +
    '| --- | --- | --- | --- | --- | --- | --- |';
  await mkdir('bench/results', { recursive: true });
  await writeFile('bench/results/preprocess.json', JSON.stringify(out, null, 2) + '\n');
  await writeFile('bench/results/preprocess.md', `${header}\n${rows.join('\n')}\n`);
  console.log(`${S} px inputs; decode + preprocess on one thread, medians of ${ROUNDS} rounds.\n`);
  console.log(header);
  for (const r of rows) console.log(r);
}

await main();
