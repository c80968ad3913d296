/**
 * Issue #19: the perceptual quality models (PerceptCLIP-style, one made from each image tower) on held-out photos.
 *
 * A catalog of `--items` items of a seed that trained and tuned nothing (no tower, no quality model, no threshold) is
 * rendered with a distorted copy of each item (`lookalike synth --distort`: blur, motion, noise, JPEG, over- and
 * underexposure, contrast at known severities; quality target Π (1 − severity), 1 for the originals). Each quality
 * model scores every image from the pixels ingest prepares (the `fast` resize):
 *
 * - **agreement**: SRCC (Spearman, ties ranked by their mean) and PLCC (Pearson) of score against target, over all
 *   images, over the distorted copies only, and per distortion kind (copies with that one distortion);
 * - **the gate**: an image is unusable when its target is below 0.5; the model's manifest threshold (fitted on the
 *   tuning seed) flags it: precision, recall and balanced accuracy;
 * - **under attack**: the audit's own quality part (`qualityBatch`) on `--attack-images` photos of the seed, APGD
 *   `--steps` at ℓ∞ 4/255: the share of right decisions flipped, robust against clean;
 * - **cost**: the catalog's first `--ingest` images ingested by the real `ingest-batch` handlers into a fresh
 *   embedded store with the robust quality model on and off, alternating over `--rounds` rounds; img/s and the ratio.
 *
 *   npm run bench:quality-score [-- --items 1000 --seed 41 --attack-images 40 --steps 100 --ingest 1000]
 *
 * Writes bench/results/quality-score.json and .md.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PixelSpaceModel } from '@lookalike/attacks';
import { qualityBatch, summarizeQuality, type QualityGate } from '@lookalike/audit';
import { ENCODER_ROLES, type EncoderRole } from '@lookalike/core';
import { ModelRegistry, OnnxImageEncoder, OnnxQualityModel, type QualityModelManifest } from '@lookalike/encoder';
import { fromBytes, PreprocessPool } from '@lookalike/imaging';
import { auditOptionsSchema, type IngestItem } from '@lookalike/queue';
import { DISTORTED_MANIFEST, DISTORTION_KINDS, generateCatalog, type DistortionKind } from '@lookalike/synth';
import { heldOutCalibrations } from './held-out.js';
import { ingestCost, type IngestCost } from './ingest-cost.js';

const { values } = parseArgs({
  options: {
    items: { type: 'string', default: '1000' },
    seed: { type: 'string', default: '41' },
    'attack-images': { type: 'string', default: '40' },
    steps: { type: 'string', default: '100' },
    ingest: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '3' },
    models: { type: 'string', default: 'models' },
  },
});
const ITEMS = Number(values.items);
const SEED = Number(values.seed);
const ATTACK_IMAGES = Number(values['attack-images']);
const STEPS = Number(values.steps);
const INGEST = Number(values.ingest);
const ROUNDS = Number(values.rounds);
const LOW_BELOW = 0.5;
const MODEL_IDS: Record<EncoderRole, string> = { robust: 'defect-cnn-fare4', clean: 'defect-cnn-clean' };

/** Ranks 0 … n−1, ties sharing the mean of their ranks. */
function ranks(x: readonly number[]): number[] {
  const order = x.map((_, i) => i).sort((a, b) => x[a]! - x[b]!);
  const out = new Array<number>(x.length);
  for (let start = 0; start < order.length;) {
    let end = start;
    while (end + 1 < order.length && x[order[end + 1]!] === x[order[start]!]) end++;
    for (let i = start; i <= end; i++) out[order[i]!] = (start + end) / 2;
    start = end + 1;
  }
  return out;
}

function pearson(a: readonly number[], b: readonly number[]): number {
  const n = a.length;
  const ma = a.reduce((s, v) => s + v, 0) / n;
  const mb = b.reduce((s, v) => s + v, 0) / n;
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < n; i++) {
    ab += (a[i]! - ma) * (b[i]! - mb);
    aa += (a[i]! - ma) ** 2;
    bb += (b[i]! - mb) ** 2;
  }
  return ab / Math.sqrt(aa * bb);
}

const spearman = (a: readonly number[], b: readonly number[]) => pearson(ranks(a), ranks(b));

interface Image {
  file: string;
  target: number;
  kinds: DistortionKind[];
}

async function main(): Promise<void> {
  const registry = await ModelRegistry.open(values.models);
  await heldOutCalibrations(registry, MODEL_IDS, SEED);
  const manifests = {} as Record<EncoderRole, QualityModelManifest>;
  for (const role of ENCODER_ROLES) {
    const m = registry.qualityFor(MODEL_IDS[role]);
    const training = m.training as { seeds?: number[] } | undefined;
    const tuning = (m.calibration as { tuning?: { seed?: number } } | undefined)?.tuning?.seed;
    if ((training?.seeds ?? []).includes(SEED) || tuning === SEED)
      throw new Error(`seed ${SEED} trained or tuned ${m.id}; pick a held-out seed`);
    manifests[role] = m;
  }
  const dir = await mkdtemp(join(tmpdir(), 'bench-quality-score-'));
  const scorers = {} as Record<EncoderRole, OnnxQualityModel>;
  const gates = {} as Record<EncoderRole, QualityGate>;
  try {
    console.log(`generating ${ITEMS} items with a distorted copy each (seed ${SEED})`);
    await generateCatalog({ count: ITEMS, seed: SEED, outDir: join(dir, 'catalog'), distort: true });
    const lines = (await readFile(join(dir, 'catalog', DISTORTED_MANIFEST), 'utf8')).trim().split('\n');
    const copies = lines.map(
      (l) => JSON.parse(l) as { file: string; item: string; quality: number; distortions: { kind: DistortionKind }[] },
    );
    const images: Image[] = [
      ...copies.map((c) => ({ file: `images/${c.item}.png`, target: 1, kinds: [] })),
      ...copies.map((c) => ({ file: c.file, target: c.quality, kinds: c.distortions.map((d) => d.kind) })),
    ];
    const bytes = await Promise.all(images.map((im) => readFile(join(dir, 'catalog', im.file))));

    const rows: Record<string, unknown>[] = [];
    const scores = {} as Record<EncoderRole, number[]>;
    for (const role of ENCODER_ROLES) {
      scorers[role] = await OnnxQualityModel.load(registry, role, MODEL_IDS[role]);
      const scorer = scorers[role];
      const spec = scorer.info.preprocess;
      const per = 3 * spec.size * spec.size;
      const out: number[] = [];
      for (let i = 0; i < bytes.length; i += 64) {
        const chunk = await Promise.all(bytes.slice(i, i + 64).map((b) => fromBytes(b, spec, undefined, 'fast')));
        const data = new Float32Array(chunk.length * per);
        chunk.forEach((p, k) => data.set(p, k * per));
        out.push(...(await scorer.score({ data, n: chunk.length, height: spec.size, width: spec.size })));
      }
      scores[role] = out;
      const targets = images.map((im) => im.target);
      const distorted = images.flatMap((im, i) => (im.target < 1 || im.kinds.length ? [i] : []));
      const pick = (idx: number[], xs: number[]) => idx.map((i) => xs[i]!);
      const perKind = Object.fromEntries(
        DISTORTION_KINDS.map((kind) => {
          const idx = images.flatMap((im, i) => (im.kinds.length === 1 && im.kinds[0] === kind ? [i] : []));
          return [kind, { images: idx.length, srcc: spearman(pick(idx, out), pick(idx, targets)) }];
        }),
      );
      const threshold = scorer.info.threshold;
      const low = images.map((im) => im.target < LOW_BELOW);
      const flagged = out.map((s) => s < threshold);
      const tp = low.filter((l, i) => l && flagged[i]).length;
      const fp = low.filter((l, i) => !l && flagged[i]).length;
      const lows = low.filter(Boolean).length;
      const recall = tp / lows;
      const specificity = (low.length - lows - fp) / (low.length - lows);
      rows.push({
        tower: role,
        model: scorer.info.id,
        images: images.length,
        srcc: spearman(out, targets),
        plcc: pearson(out, targets),
        distortedSrcc: spearman(pick(distorted, out), pick(distorted, targets)),
        perKind,
        threshold,
        gate: {
          unusable: lows,
          flagged: tp + fp,
          precision: tp / (tp + fp),
          recall,
          balancedAccuracy: (recall + specificity) / 2,
        },
      });
      console.log(`${role}: SRCC ${spearman(out, targets).toFixed(4)}, PLCC ${pearson(out, targets).toFixed(4)}`);
    }

    // Under attack: the audit's quality part on photos of this seed.
    for (const role of ENCODER_ROLES) {
      const m = manifests[role];
      const model = await PixelSpaceModel.open(
        m.id,
        registry.file(m.id, m.files.model),
        scorers[role].info.preprocess,
        {
          cacheDir: join('bench', '.cache', 'vjp'),
          outputNormalized: false,
          output: 'score',
        },
      );
      gates[role] = { model, threshold: scorers[role].info.threshold };
    }
    const options = auditOptionsSchema.parse({
      attack: 'apgd',
      steps: STEPS,
      quality: { images: ATTACK_IMAGES, seed: SEED, examples: 0 },
    });
    console.log(`attacking ${ATTACK_IMAGES} photos across each gate (APGD-${STEPS}, ℓ∞ 4/255)`);
    const attacked = await qualityBatch({ gates, preprocess: 'fast' }, { first: 0, count: ATTACK_IMAGES }, options);
    const attack = summarizeQuality(attacked.outcomes, { robust: manifests.robust.id, clean: manifests.clean.id });

    // The cost of scoring at ingest (the robust quality model, as QUALITY=robust does).
    const encoders = {
      robust: await OnnxImageEncoder.load(registry, MODEL_IDS.robust),
      clean: await OnnxImageEncoder.load(registry, MODEL_IDS.clean),
    };
    const preparer = new PreprocessPool();
    const items: IngestItem[] = images.slice(0, INGEST).map((im) => ({ location: join(dir, 'catalog', im.file) }));
    let cost: IngestCost;
    try {
      cost = await ingestCost({
        dir,
        items,
        encoders,
        preparer,
        rounds: ROUNDS,
        field: 'quality.grade',
        feature: 'quality',
        featureDeps: () => ({ quality: scorers.robust }),
      });
    } finally {
      await preparer.close();
      await Promise.all(Object.values(encoders).map((e) => e.close()));
    }

    const f = (x: unknown) => (typeof x === 'number' ? x.toFixed(3) : '—');
    const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
    const md = [
      `Quality models, held-out seed ${SEED}: ${ITEMS} originals (target 1) and their distorted copies; unusable = ` +
        `target < ${LOW_BELOW}; each model's threshold from its manifest (fitted on the tuning seed).`,
      '',
      '| tower | model | SRCC | PLCC | SRCC, distorted only | threshold | unusable flagged: precision | recall | balanced accuracy |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
      ...rows.map((r) => {
        const g = r['gate'] as { precision: number; recall: number; balancedAccuracy: number };
        return `| ${String(r['tower'])} | ${String(r['model'])} | ${f(r['srcc'])} | ${f(r['plcc'])} | ${f(r['distortedSrcc'])} | ${f(r['threshold'])} | ${pct(g.precision)} | ${pct(g.recall)} | ${pct(g.balancedAccuracy)} |`;
      }),
      '',
      `SRCC per distortion kind (copies with that one distortion):`,
      '',
      `| tower | ${DISTORTION_KINDS.join(' | ')} |`,
      `| --- | ${DISTORTION_KINDS.map(() => '---').join(' | ')} |`,
      ...rows.map((r) => {
        const k = r['perKind'] as Record<string, { images: number; srcc: number }>;
        return `| ${String(r['tower'])} | ${DISTORTION_KINDS.map((kind) => `${f(k[kind]!.srcc)} (${k[kind]!.images})`).join(' | ')} |`;
      }),
      '',
      `Under attack (APGD-${STEPS}, ℓ∞ 4/255, ${ATTACK_IMAGES} photos: half good pushed down, half unusable pushed up):`,
      '',
      '| tower | good graded ok | bad graded low | good pushed low | bad pushed ok | decisions flipped | mean score shift |',
      '| --- | --- | --- | --- | --- | --- | --- |',
      ...attack.map(
        (m) =>
          `| ${m.encoder} | ${m.good.correct}/${m.good.images} | ${m.bad.correct}/${m.bad.images} | ${m.good.flipped}/${m.good.correct} | ${m.bad.flipped}/${m.bad.correct} | ${pct(m.flippedShare)} | ${m.meanShift.toFixed(3)} |`,
      ),
      '',
      `Ingest of ${cost.images} images (median of ${cost.rounds} rounds): quality off ${cost.offImagesPerSecond.toFixed(1)} img/s, ` +
        `on ${cost.onImagesPerSecond.toFixed(1)} img/s (${((cost.onImagesPerSecond / cost.offImagesPerSecond) * 100).toFixed(1)} % of the throughput).`,
    ].join('\n');
    console.log(`\n${md}`);
    await mkdir('bench/results', { recursive: true });
    await writeFile(
      'bench/results/quality-score.json',
      JSON.stringify({ seed: SEED, items: ITEMS, lowBelow: LOW_BELOW, rows, attack, cost }, null, 2),
    );
    await writeFile('bench/results/quality-score.md', md + '\n');
  } finally {
    await Promise.all(Object.values(gates).map((g) => g.model.release()));
    await Promise.all(Object.values(scorers).map((s) => s.close()));
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
