/**
 * Issue #17 item 2: near-duplicate grouping at ingest, how right it is and what it costs.
 *
 * Quality: a synthetic catalog of a seed no tower was trained or calibrated on (`--seed`, checked against the models'
 * training seeds) with `--rerenders` re-renders per item (the same part photographed again: new light, pose jitter,
 * background or JPEG quality) and an edited twin per item (the same part with one attribute changed: not a
 * duplicate). Every image — originals, re-renders and twins, in a seeded shuffled order — goes through the real
 * `ingest-batch` handlers into a fresh embedded store, once with each tower grouping at its calibrated same-item
 * threshold. Ground truth: an original and its re-renders are one item; a twin is an item of its own. Over all
 * pairs of images: precision = share of pairs put in one group that are one item; recall = share of one-item pairs
 * put in one group. Also the share of (original, twin) pairs put in one group, per kind of edit.
 *
 * Cost: the lookup one new image makes (`groupDuplicates`: one ANN search of k+1 and the threshold test) against a
 * store of `--points` points (default 100,000: the catalog's own embeddings plus perturbed copies, cosine 0.90–0.99
 * to one of them), per image, beside the cost per image of the whole ingest measured in the quality runs.
 *
 *   npm run bench:duplicates [-- --items 300 --seed 34 --rerenders 2 --points 100000 --lookups 300]
 *
 * Writes bench/results/duplicates.json and .md.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ENCODER_ROLES, type CollectionSpec, type EncoderRole, type ImageEncoder, type Point } from '@lookalike/core';
import { readCatalog } from '@lookalike/distance';
import { ModelRegistry, OnnxImageEncoder } from '@lookalike/encoder';
import { MainThreadPreparer } from '@lookalike/imaging';
import { createIngestHandlers, groupDuplicates, type BatchResult } from '@lookalike/ingest';
import { InProcessJobRunner, type IngestItem } from '@lookalike/queue';
import { EmbeddedVectorStore } from '@lookalike/store-embedded';
import { createRng, generateCatalog, type TwinEdit } from '@lookalike/synth';
import { heldOutCalibrations } from './held-out.js';
import { perturb } from './vectors.js';

const { values } = parseArgs({
  options: {
    items: { type: 'string', default: '300' },
    seed: { type: 'string', default: '34' },
    rerenders: { type: 'string', default: '2' },
    points: { type: 'string', default: '100000' },
    lookups: { type: 'string', default: '300' },
    models: { type: 'string', default: 'models' },
    scales: { type: 'string', default: '1,0.5' },
  },
});
const ITEMS = Number(values.items);
const SEED = Number(values.seed);
const RERENDERS = Number(values.rerenders);
const POINTS = Number(values.points);
const LOOKUPS = Number(values.lookups);
/** Multiples of the calibrated threshold to group at (1: the threshold ingest uses). */
const SCALES = values.scales.split(',').map(Number);
const MODEL_IDS: Record<EncoderRole, string> = { robust: 'defect-cnn-fare4', clean: 'defect-cnn-clean' };
const FIELDS: CollectionSpec['indexedFields'] = [
  { path: 'duplicates.group', type: 'keyword' },
  { path: 'duplicates.distance', type: 'float' },
];

/** One image of the shuffled catalog and what it is. */
interface Entry {
  file: string;
  /** The item it shows: the original's id for an original and its re-renders, the twin's own id for a twin. */
  item: string;
  kind: 'original' | 'rerender' | 'twin';
  edit?: TwinEdit['type'];
  /** For a twin, the item it was edited from. */
  of?: string;
}

interface TowerRow {
  tower: EncoderRole;
  threshold: number;
  scale: number;
  images: number;
  groups: number;
  grouped: number;
  precision: number;
  recall: number;
  pairs: { predicted: number; true: number; correct: number };
  twinsGrouped: Record<string, { pairs: number; grouped: number }>;
  ingestMsPerImage: number;
}

function pairCount(n: number): number {
  return (n * (n - 1)) / 2;
}

/** Pair precision and recall of `groupOf` (image index → group, or undefined) against `items`. */
function score(entries: readonly Entry[], groupOf: (i: number) => string | undefined) {
  const byGroup = new Map<string, number[]>();
  entries.forEach((_, i) => {
    const g = groupOf(i);
    if (g !== undefined) byGroup.set(g, [...(byGroup.get(g) ?? []), i]);
  });
  let predicted = 0;
  let correct = 0;
  for (const members of byGroup.values()) {
    predicted += pairCount(members.length);
    const perItem = new Map<string, number>();
    for (const i of members) perItem.set(entries[i]!.item, (perItem.get(entries[i]!.item) ?? 0) + 1);
    for (const n of perItem.values()) correct += pairCount(n);
  }
  const perItem = new Map<string, number>();
  for (const e of entries) perItem.set(e.item, (perItem.get(e.item) ?? 0) + 1);
  let truth = 0;
  for (const n of perItem.values()) truth += pairCount(n);
  return { predicted, truth, correct, groups: [...byGroup.values()].filter((m) => m.length > 1).length };
}

async function ingestAll(
  dir: string,
  entries: readonly Entry[],
  encoders: Record<EncoderRole, ImageEncoder>,
  name: string,
  tower: EncoderRole,
  threshold: number,
): Promise<{ store: EmbeddedVectorStore; ms: number; results: BatchResult[] }> {
  const store = await EmbeddedVectorStore.open(join(dir, `store-${name}`));
  await store.ensureCollection({ name: 'lookalike', dims: { robust: 128, clean: 128 }, indexedFields: FIELDS });
  const handlers = createIngestHandlers({
    store,
    encoders,
    roots: [dir],
    fetch: { maxBytes: 1 << 24, timeoutMs: 1000 },
    preparer: new MainThreadPreparer(),
    duplicates: { tower, threshold },
  });
  const runner = new InProcessJobRunner(handlers, { ingest: 2 });
  const results: BatchResult[] = [];
  runner.events.on('completed', (_id, name, r) => name === 'ingest-batch' && results.push(r as BatchResult));
  const items: IngestItem[] = entries.map((e) => ({ location: join(dir, 'catalog', e.file), id: e.file }));
  const started = performance.now();
  await runner.enqueue('ingest-run', { runId: `dup-${name}`, source: { kind: 'items', items }, batchSize: 32 });
  await runner.idle();
  const ms = performance.now() - started;
  await runner.close();
  await handlers.close();
  return { store, ms, results };
}

async function main(): Promise<void> {
  const registry = await ModelRegistry.open(values.models);
  const calibrations = await heldOutCalibrations(registry, MODEL_IDS, SEED);
  const encoders = {
    robust: await OnnxImageEncoder.load(registry, MODEL_IDS.robust),
    clean: await OnnxImageEncoder.load(registry, MODEL_IDS.clean),
  };
  const thresholds = {} as Record<EncoderRole, number>;
  for (const role of ENCODER_ROLES) {
    const state = calibrations[role];
    if (state.status !== 'calibrated')
      throw new Error(`${MODEL_IDS[role]} has no distance calibration: ${state.reason}`);
    thresholds[role] = state.calibration.thresholds.sameItem;
  }

  const dir = await mkdtemp(join(tmpdir(), 'bench-duplicates-'));
  try {
    console.log(`generating ${ITEMS} items (seed ${SEED}) with twins and ${RERENDERS} re-renders each`);
    await generateCatalog({
      count: ITEMS,
      seed: SEED,
      outDir: join(dir, 'catalog'),
      twins: true,
      rerenders: RERENDERS,
      size: 128,
    });
    const records = await readCatalog(join(dir, 'catalog'));
    const entries: Entry[] = records.flatMap((r) => [
      { file: r.file, item: r.id, kind: 'original' as const },
      ...(r.rerenders ?? []).map((again) => ({ file: again.file, item: r.id, kind: 'rerender' as const })),
      ...(r.twin
        ? [{ file: r.twin.file, item: r.twin.id, kind: 'twin' as const, edit: r.twin.edit.type, of: r.id }]
        : []),
    ]);
    const rng = createRng(SEED, 0, 'bench-duplicates-order');
    for (let i = entries.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [entries[i], entries[j]] = [entries[j]!, entries[i]!];
    }

    const rows: TowerRow[] = [];
    let vectors: Point[] = [];
    for (const scale of SCALES)
      for (const tower of ENCODER_ROLES) {
        const threshold = thresholds[tower] * scale;
        console.log(`ingesting ${entries.length} images, grouping by the ${tower} tower at ≤ ${threshold}`);
        const { store, ms } = await ingestAll(dir, entries, encoders, `${tower}-${scale}`, tower, threshold);
        const stored = (await store.scroll({ limit: entries.length + 10, withVectors: true })).points;
        const byFile = new Map(stored.map((p) => [p.payload.metadata?.externalId, p]));
        const groupOf = (i: number) => byFile.get(entries[i]!.file)?.payload.duplicates?.group;
        const s = score(entries, groupOf);
        const twinsGrouped: TowerRow['twinsGrouped'] = {};
        const original = new Map(entries.flatMap((e, i) => (e.kind === 'original' ? [[e.item, i] as const] : [])));
        entries.forEach((e, i) => {
          if (e.kind !== 'twin') return;
          const row = (twinsGrouped[e.edit!] ??= { pairs: 0, grouped: 0 });
          row.pairs++;
          const g = groupOf(i);
          if (g !== undefined && g === groupOf(original.get(e.of!)!)) row.grouped++;
        });
        rows.push({
          tower,
          threshold,
          scale,
          images: entries.length,
          groups: s.groups,
          grouped: entries.filter((_, i) => groupOf(i) !== undefined).length,
          precision: s.predicted ? s.correct / s.predicted : 1,
          recall: s.correct / s.truth,
          pairs: { predicted: s.predicted, true: s.truth, correct: s.correct },
          twinsGrouped,
          ingestMsPerImage: ms / entries.length,
        });
        if (tower === 'robust' && scale === SCALES[0])
          vectors = stored.map((p) => ({ id: p.id, vectors: p.vectors!, payload: p.payload }));
        await store.close();
      }

    // The lookup at scale: POINTS points around the catalog's embeddings, then LOOKUPS new images looked up.
    console.log(`building a ${POINTS}-point store for the lookup cost`);
    const big = await EmbeddedVectorStore.open(join(dir, 'store-big'));
    await big.ensureCollection({ name: 'lookalike', dims: { robust: 128, clean: 128 }, indexedFields: FIELDS });
    const next = () => rng.next();
    const template = vectors[0]!.payload;
    for (let start = 0; start < POINTS; start += 5000) {
      const page: Point[] = [];
      for (let i = start; i < Math.min(POINTS, start + 5000); i++) {
        const base = vectors[i % vectors.length]!;
        const near = (role: EncoderRole) =>
          i < vectors.length ? base.vectors[role] : perturb(base.vectors[role], 0.9 + 0.09 * next(), next);
        const id = i.toString(16).padStart(64, '0');
        page.push({
          id,
          vectors: { robust: near('robust'), clean: near('clean') },
          payload: { ...template, id, source: `p/${i}.png` },
        });
      }
      await big.upsert(page);
    }
    await big.optimize();
    const probes: Point[] = Array.from({ length: LOOKUPS }, (_, i) => {
      const base = vectors[(i * 7) % vectors.length]!;
      const id = `f${i.toString(16).padStart(63, '0')}`;
      return {
        id,
        vectors: {
          robust: perturb(base.vectors.robust, 0.97 + 0.03 * next(), next),
          clean: perturb(base.vectors.clean, 0.97 + 0.03 * next(), next),
        },
        payload: { ...template, id, source: `q/${i}.png` },
      };
    });
    const lookup: Record<string, { msPerImage: number; joined: number }> = {};
    for (const tower of ENCODER_ROLES) {
      // One chunk of one image at a time, as ingest's worst case (chunks of 16 also compare within the chunk).
      const started = performance.now();
      let joined = 0;
      for (const p of probes) {
        const copy = { ...p, payload: { ...p.payload } };
        const g = await groupDuplicates([copy], big, { tower, threshold: thresholds[tower] }, () => true, ['x']);
        joined += g.joined.length;
      }
      lookup[tower] = { msPerImage: (performance.now() - started) / LOOKUPS, joined };
    }
    await big.close();

    const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
    const lines = [
      `# Near-duplicate grouping at ingest (seed ${SEED}, ${ITEMS} items × (1 + ${RERENDERS} re-renders + 1 twin))`,
      '',
      '| tower | threshold (× calibrated) | precision | recall | groups | images grouped | twins grouped with their original (colour / moved / added / removed) | ingest ms/image |',
      '|---|---|---|---|---|---|---|---|',
      ...rows.map((r) => {
        const t = (k: string) => {
          const x = r.twinsGrouped[k];
          return x ? pct(x.grouped / x.pairs) : '–';
        };
        return (
          `| ${r.tower} | ${r.threshold.toFixed(4)} (× ${r.scale}) | ${pct(r.precision)} | ${pct(r.recall)} | ${r.groups} | ` +
          `${r.grouped} of ${r.images} | ${t('change-color')} / ${t('move-defect')} / ${t('add-defect')} / ` +
          `${t('remove-defect')} | ${r.ingestMsPerImage.toFixed(2)} |`
        );
      }),
      '',
      `Lookup per new image against ${POINTS.toLocaleString('en')} points (${LOOKUPS} lookups, one image per call):`,
      '',
      '| tower | lookup ms/image | share of the ingest cost per image above |',
      '|---|---|---|',
      ...ENCODER_ROLES.map((t) => {
        const ingest = rows.find((r) => r.tower === t && r.scale === SCALES[0])!.ingestMsPerImage;
        return `| ${t} | ${lookup[t]!.msPerImage.toFixed(3)} | ${pct(lookup[t]!.msPerImage / ingest)} |`;
      }),
      '',
    ];
    await mkdir('bench/results', { recursive: true });
    await writeFile(
      'bench/results/duplicates.json',
      JSON.stringify({ seed: SEED, items: ITEMS, rerenders: RERENDERS, points: POINTS, rows, lookup }, null, 2) + '\n',
    );
    await writeFile('bench/results/duplicates.md', lines.join('\n'));
    console.log(lines.join('\n'));
  } finally {
    await Promise.all(Object.values(encoders).map((e) => e.close()));
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
