/**
 * Issue #18: caption screening (SafeCLIP) on a held-out synthetic catalog, and whether an adversary can push a
 * poisoned image through the screen.
 *
 * A catalog of `--items` images of a seed no tower was trained or calibrated on is embedded by each image tower (the
 * pixels ingest and the audit use) and its captions by the text tower. Scenarios, each screened by each tower with
 * the mixture ingest fits (`fitScreen`, `judge`: the functions `CaptionScreen` refits and judges with, threshold 0.9):
 *
 * - **clean**: every image with its own caption (false positives);
 * - **swaps**: `--swaps` of the captions (1 %) replaced by the caption of an item of another part with another
 *   defect (mislabels);
 * - **poison**: `--poison` images of one part (bottles) captioned as another part with a chosen defect ("… gear with
 *   a crack at …"), aimed at the text query "a gear with a crack" (the paper's targeted poison);
 * - **poison, adaptive**: the same poisoned images perturbed within ℓ∞ 4/255 by the project's APGD (`runAttack`,
 *   targeted, through the screening tower's VJP graph) toward their poison caption's text embedding, so that they
 *   pass the screen, and so that text search ranks them for the target query.
 *
 * Flags: precision and recall of `suspicious` against the swapped or poisoned pairs. Poison success: the share of the
 * target query's top 10 (text search in the screening tower's space, exact, the whole catalog) that are poisoned
 * images, without screening and with the suspicious images left out as text search does.
 *
 *   npm run bench:screening [-- --items 2000 --seed 35 --swaps 20 --poison 20 --steps 100]
 *
 * Cost: the catalog's first `--ingest` images (with their own captions) ingested by the real `ingest-batch` handlers
 * into a fresh embedded store with screening on (the text tower embeds each caption; the screen refits from 100
 * captions on, at every 10 % of growth) and off, alternating over `--rounds` rounds; img/s and the ratio.
 *
 * Writes bench/results/screening.json and .md.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PixelSpaceModel, runAttack } from '@lookalike/attacks';
import { ENCODER_ROLES, cosine, topK, type EncoderRole } from '@lookalike/core';
import { readCatalog } from '@lookalike/distance';
import { ModelRegistry, OnnxImageEncoder, OnnxTextEncoder } from '@lookalike/encoder';
import { fromBytes, PreprocessPool } from '@lookalike/imaging';
import { type IngestItem } from '@lookalike/queue';
import {
  CaptionScreen,
  UNRELATED_PAIRS,
  fitScreen,
  judge,
  unrelatedPairs,
  type ScreeningModel,
} from '@lookalike/screening';
import { heldOutCalibrations } from './held-out.js';
import { ingestCost, type IngestCost } from './ingest-cost.js';
import { PART_MATERIALS, captionOf, createRng, generateCatalog, positionsFor } from '@lookalike/synth';

const { values } = parseArgs({
  options: {
    items: { type: 'string', default: '2000' },
    seed: { type: 'string', default: '35' },
    swaps: { type: 'string', default: '20' },
    poison: { type: 'string', default: '20' },
    steps: { type: 'string', default: '100' },
    models: { type: 'string', default: 'models' },
    /** Fit both components freely (the mixture before the measured low component), for comparison. */
    free: { type: 'boolean', default: false },
    ingest: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '3' },
  },
});
const FREE = values.free;
const INGEST = Number(values.ingest);
const ROUNDS = Number(values.rounds);
const ITEMS = Number(values.items);
const SEED = Number(values.seed);
const SWAPS = Number(values.swaps);
const POISON = Number(values.poison);
const STEPS = Number(values.steps);
const EPSILON = 4 / 255;
const THRESHOLD = 0.9;
const K = 10;
const MODEL_IDS: Record<EncoderRole, string> = { robust: 'defect-cnn-fare4', clean: 'defect-cnn-clean' };
const TEXT_ID = 'defect-cnn-text';
/** The poison: images of SOURCE_PART captioned as TARGET_PART with TARGET_DEFECT, aimed at QUERY. */
const SOURCE_PART = 'bottle';
const TARGET_PART = 'gear';
const TARGET_DEFECT = 'crack';
const QUERY = `a ${TARGET_PART} with a ${TARGET_DEFECT}`;

interface Scenario {
  name: string;
  captions: string[];
  /** Indices of the swapped or poisoned pairs. */
  bad: Set<number>;
}

interface Row {
  scenario: string;
  tower: EncoderRole;
  bad: number;
  flagged: number;
  truePositives: number;
  precision: number | null;
  recall: number | null;
  falsePositiveRate: number;
  model: Pick<ScreeningModel, 'separates' | 'boundary' | 'separation' | 'bicGain' | 'low' | 'high' | 'unrelatedPairs'>;
  /** Share of the target query's top 10 that are poisoned images (poison scenarios only). */
  poisonTop10?: { unscreened: number; screened: number };
  /** Adaptive only: poisoned images flagged before and after the attack, and their mean similarity to the caption. */
  attack?: { flaggedBefore: number; flaggedAfter: number; similarityBefore: number; similarityAfter: number };
}

const pct = (x: number | null | undefined) => (x === null || x === undefined ? '—' : `${(100 * x).toFixed(1)} %`);

/** Unit rows of `[n, D]` as vectors. */
function rows(z: Float32Array, n: number): Float32Array[] {
  const d = z.length / n;
  return Array.from({ length: n }, (_, i) => z.slice(i * d, (i + 1) * d));
}

async function embedTexts(text: OnnxTextEncoder, texts: readonly string[]): Promise<Map<string, Float32Array>> {
  const unique = [...new Set(texts)];
  const out = new Map<string, Float32Array>();
  for (let i = 0; i < unique.length; i += 64) {
    const chunk = unique.slice(i, i + 64);
    (await text.embed(chunk)).forEach((v, k) => out.set(chunk[k]!, v));
  }
  return out;
}

/** The indices of the top `k` images for `query` by cosine, leaving out `excluded`. */
function nearest(images: readonly Float32Array[], query: Float32Array, k: number, excluded: Set<number>): number[] {
  return topK(
    images.map((v, i) => (excluded.has(i) ? Number.NaN : cosine(v, query))),
    k,
  );
}

function screen(
  scenario: Scenario,
  tower: EncoderRole,
  images: readonly Float32Array[],
  texts: Map<string, Float32Array>,
): { row: Row; flagged: Set<number>; sims: number[] } {
  const sims = images.map((v, i) => cosine(v, texts.get(scenario.captions[i]!)!));
  const policy = { tower, threshold: THRESHOLD, minCount: 100, textModel: TEXT_ID, imageModel: MODEL_IDS[tower] };
  // The low component as a refit measures it: images paired with other images' captions (other texts).
  const unrelated = unrelatedPairs(images.length, UNRELATED_PAIRS)
    .filter(([i, j]) => scenario.captions[i] !== scenario.captions[j])
    .map(([i, j]) => cosine(images[i]!, texts.get(scenario.captions[j]!)!));
  const model = fitScreen(sims, policy, new Date(), FREE ? [] : unrelated);
  const flagged = new Set(sims.flatMap((s, i) => (judge(model, s, 100).verdict === 'suspicious' ? [i] : [])));
  const tp = [...flagged].filter((i) => scenario.bad.has(i)).length;
  const { separates, boundary, separation, bicGain, low, high, unrelatedPairs: pairs } = model;
  return {
    row: {
      scenario: scenario.name,
      tower,
      bad: scenario.bad.size,
      flagged: flagged.size,
      truePositives: tp,
      precision: flagged.size ? tp / flagged.size : null,
      recall: scenario.bad.size ? tp / scenario.bad.size : null,
      falsePositiveRate: (flagged.size - tp) / (images.length - scenario.bad.size),
      model: { separates, boundary, separation, bicGain, low, high, unrelatedPairs: pairs },
    },
    flagged,
    sims,
  };
}

async function main(): Promise<void> {
  const registry = await ModelRegistry.open(values.models);
  await heldOutCalibrations(registry, MODEL_IDS, SEED);
  const text = await OnnxTextEncoder.load(registry, TEXT_ID);
  const dir = await mkdtemp(join(tmpdir(), 'bench-screening-'));
  const models = {} as Record<EncoderRole, PixelSpaceModel>;
  try {
    for (const role of ENCODER_ROLES) {
      const encoder = await OnnxImageEncoder.load(registry, MODEL_IDS[role]);
      const spec = encoder.info.preprocess;
      await encoder.close();
      const m = registry.image(MODEL_IDS[role]);
      models[role] = await PixelSpaceModel.open(m.id, registry.file(m.id, m.files.model), spec, {
        cacheDir: join('bench', '.cache', 'vjp'),
        outputNormalized: m.output.normalized,
      });
    }
    console.log(`generating ${ITEMS} items (seed ${SEED})`);
    await generateCatalog({ count: ITEMS, seed: SEED, outDir: join(dir, 'catalog'), size: 128 });
    const records = await readCatalog(join(dir, 'catalog'));
    const bytes = await Promise.all(records.map((r) => readFile(join(dir, 'catalog', r.file))));

    // Each tower's pixels (the resize ingest and the audit use) and embeddings of every image.
    const pixels = {} as Record<EncoderRole, Float32Array[]>;
    const images = {} as Record<EncoderRole, Float32Array[]>;
    for (const role of ENCODER_ROLES) {
      const model = models[role];
      console.log(`embedding ${records.length} images with the ${role} tower`);
      pixels[role] = await Promise.all(bytes.map((b) => fromBytes(b, model.spec, undefined, 'fast')));
      images[role] = [];
      for (let i = 0; i < records.length; i += 64) {
        const chunk = pixels[role].slice(i, i + 64);
        const x = new Float32Array(chunk.length * chunk[0]!.length);
        chunk.forEach((p, k) => x.set(p, k * p.length));
        images[role].push(...rows(await model.embed(x, chunk.length), chunk.length));
      }
    }

    const rng = createRng(SEED, 0, 'bench-screening');
    const own = records.map((r) => r.caption);
    const labels = records.map((r) => r.labels);
    const pick = (candidates: number[], n: number): number[] => {
      const pool = [...candidates];
      for (let i = pool.length - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        [pool[i], pool[j]] = [pool[j]!, pool[i]!];
      }
      return pool.slice(0, n);
    };
    const all = records.map((_, i) => i);

    // Swaps: the caption of an item of another part with another defect.
    const swapped = pick(all, SWAPS);
    const swapCaptions = [...own];
    for (const i of swapped) {
      const others = all.filter((j) => labels[j]!.part !== labels[i]!.part && labels[j]!.defect !== labels[i]!.defect);
      swapCaptions[i] = own[others[rng.int(others.length)]!]!;
    }
    // Poison: bottles captioned as gears with a crack (their colour kept, a gear's material, a crack's position).
    const poisoned = pick(
      all.filter((i) => labels[i]!.part === SOURCE_PART),
      POISON,
    );
    const poisonCaptions = [...own];
    const gearPositions = positionsFor(TARGET_PART, TARGET_DEFECT);
    for (const i of poisoned) {
      const l = labels[i]!;
      poisonCaptions[i] = captionOf({
        ...l,
        part: TARGET_PART,
        material: PART_MATERIALS[TARGET_PART][rng.int(PART_MATERIALS[TARGET_PART].length)]!,
        defect: TARGET_DEFECT,
        position: gearPositions[rng.int(gearPositions.length)]!,
      });
    }
    const scenarios: Scenario[] = [
      { name: 'clean', captions: own, bad: new Set() },
      { name: 'swaps', captions: swapCaptions, bad: new Set(swapped) },
      { name: 'poison', captions: poisonCaptions, bad: new Set(poisoned) },
    ];
    const texts = await embedTexts(text, [...own, ...swapCaptions, ...poisonCaptions, QUERY]);
    const query = texts.get(QUERY)!;

    const out: Row[] = [];
    for (const tower of ENCODER_ROLES) {
      for (const s of scenarios) {
        const { row, flagged } = screen(s, tower, images[tower], texts);
        if (s.name === 'poison') {
          const top = (excluded: Set<number>) =>
            nearest(images[tower], query, K, excluded).filter((i) => s.bad.has(i)).length / K;
          row.poisonTop10 = { unscreened: top(new Set()), screened: top(flagged) };
        }
        out.push(row);
        console.log(
          `${tower} ${s.name}: flagged ${row.flagged}, precision ${pct(row.precision)}, recall ${pct(row.recall)}, ` +
            `false positives ${pct(row.falsePositiveRate)}` +
            (row.poisonTop10
              ? `, poison in top 10 ${pct(row.poisonTop10.unscreened)} → ${pct(row.poisonTop10.screened)}`
              : ''),
        );
      }

      // The adaptive attack on the poisoned images, through this tower's gradients.
      const poison = scenarios[2]!;
      const model = models[tower];
      const n = poisoned.length;
      const per = pixels[tower][0]!.length;
      const x = new Float32Array(n * per);
      poisoned.forEach((i, k) => x.set(pixels[tower][i]!, k * per));
      const anchors = new Float32Array(n * model.dim);
      poisoned.forEach((i, k) => {
        const t = texts.get(poisonCaptions[i]!)!;
        let norm = 0;
        for (const v of t) norm += v * v;
        anchors.set(
          t.map((v) => v / Math.sqrt(norm)),
          k * model.dim,
        );
      });
      console.log(`attacking ${n} poisoned images through the ${tower} tower (APGD, ℓ∞ 4/255, ${STEPS} steps)`);
      const attacked = await runAttack(
        { model, x, n, anchors, goal: 'targeted' },
        { name: 'apgd', norm: 'linf', epsilon: EPSILON, steps: STEPS, seed: SEED },
      );
      const before = screen(poison, tower, images[tower], texts);
      const adversarial = [...images[tower]];
      rows(attacked.embedding, n).forEach((v, k) => (adversarial[poisoned[k]!] = v));
      const after = screen(poison, tower, adversarial, texts);
      const mean = (sims: number[]) => poisoned.reduce((t, i) => t + sims[i]!, 0) / n;
      const top = (excluded: Set<number>) =>
        nearest(adversarial, query, K, excluded).filter((i) => poison.bad.has(i)).length / K;
      const row: Row = {
        ...after.row,
        scenario: 'poison, adaptive (ℓ∞ 4/255)',
        poisonTop10: { unscreened: top(new Set()), screened: top(after.flagged) },
        attack: {
          flaggedBefore: poisoned.filter((i) => before.flagged.has(i)).length,
          flaggedAfter: poisoned.filter((i) => after.flagged.has(i)).length,
          similarityBefore: mean(before.sims),
          similarityAfter: mean(after.sims),
        },
      };
      out.push(row);
      console.log(
        `${tower} adaptive: poisoned flagged ${row.attack!.flaggedBefore} → ${row.attack!.flaggedAfter} of ${n}, ` +
          `similarity ${row.attack!.similarityBefore.toFixed(3)} → ${row.attack!.similarityAfter.toFixed(3)}, ` +
          `poison in top 10 ${pct(row.poisonTop10!.unscreened)} → ${pct(row.poisonTop10!.screened)} screened`,
      );
    }

    // The cost of screening at ingest.
    const imageEncoders = {
      robust: await OnnxImageEncoder.load(registry, MODEL_IDS.robust),
      clean: await OnnxImageEncoder.load(registry, MODEL_IDS.clean),
    };
    const preparer = new PreprocessPool();
    const items: IngestItem[] = records
      .slice(0, INGEST)
      .map((r) => ({ location: join(dir, 'catalog', r.file), caption: r.caption }));
    let cost: IngestCost;
    try {
      cost = await ingestCost({
        dir,
        items,
        encoders: imageEncoders,
        preparer,
        rounds: ROUNDS,
        field: 'screening.verdict',
        feature: 'screening',
        featureDeps: (store) => {
          let kept: unknown;
          const screen = new CaptionScreen(
            store,
            text,
            { read: () => Promise.resolve(kept), write: (m) => Promise.resolve(void (kept = m)) },
            { tower: 'robust', threshold: THRESHOLD, minCount: 100, textModel: TEXT_ID, imageModel: MODEL_IDS.robust },
          );
          return { screening: { screen, text } };
        },
      });
    } finally {
      await preparer.close();
      await Promise.all(Object.values(imageEncoders).map((e) => e.close()));
    }

    const md = [
      `Caption screening, held-out seed ${SEED}, ${ITEMS} images, threshold ${THRESHOLD}; swaps ${SWAPS}, poison ${POISON} ` +
        `${SOURCE_PART}s captioned as a ${TARGET_PART} with a ${TARGET_DEFECT}, target query "${QUERY}"; adaptive: ` +
        `APGD ℓ∞ 4/255, ${STEPS} steps, toward each poison caption's text embedding.`,
      '',
      '| tower | scenario | flagged | precision | recall | false positives | poison in top 10: unscreened → screened | poisoned flagged before → after the attack | mixture |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
      ...out.map(
        (r) =>
          `| ${r.tower} | ${r.scenario} | ${r.flagged} | ${pct(r.precision)} | ${pct(r.recall)} | ${pct(r.falsePositiveRate)} | ` +
          `${r.poisonTop10 ? `${pct(r.poisonTop10.unscreened)} → ${pct(r.poisonTop10.screened)}` : ''} | ` +
          `${r.attack ? `${r.attack.flaggedBefore} → ${r.attack.flaggedAfter} of ${POISON} (similarity ${r.attack.similarityBefore.toFixed(3)} → ${r.attack.similarityAfter.toFixed(3)})` : ''} | ` +
          `${r.model.separates ? `boundary ${r.model.boundary!.toFixed(3)}` : 'does not separate'}, D ${r.model.separation.toFixed(2)} |`,
      ),
      '',
      `Ingest of ${cost.images} captioned images (median of ${cost.rounds} rounds): screening off ` +
        `${cost.offImagesPerSecond.toFixed(1)} img/s, on ${cost.onImagesPerSecond.toFixed(1)} img/s ` +
        `(${((cost.onImagesPerSecond / cost.offImagesPerSecond) * 100).toFixed(1)} % of the throughput).`,
    ].join('\n');
    console.log(`\n${md}`);
    await mkdir('bench/results', { recursive: true });
    await writeFile(
      `bench/results/screening${FREE ? '-free' : ''}.json`,
      JSON.stringify(
        { seed: SEED, items: ITEMS, swaps: SWAPS, poison: POISON, steps: STEPS, query: QUERY, rows: out, cost },
        null,
        2,
      ),
    );
    await writeFile(`bench/results/screening${FREE ? '-free' : ''}.md`, md + '\n');
  } finally {
    await Promise.all(Object.values(models).map((m) => m.release()));
    await text.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
