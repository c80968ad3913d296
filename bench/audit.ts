/**
 * Cost of the robustness audit. Part 1: seconds per query per encoder for PGD-10 and APGD-100 (ℓ∞, ε = 4/255,
 * queries batched) on the tiny towers and on random-weight ViT-B/32, through the same PixelSpaceModel the audit
 * uses. Part 2: a real audit end to end (synthetic catalog ingested into the embedded store, the run → batches →
 * finalize flow on the in-process runner) at the nightly settings with fewer queries, and its projection to the
 * nightly 200 queries — or the full nightly run with `--full`. Writes bench/results/audit.json and prints markdown.
 *
 *   npm run bench:audit [-- --towers defect-cnn-clean,defect-cnn-fare4,vitb32 --queries 20 --full]
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { PixelSpaceModel, runAttack, type AttackConfig } from '@lookalike/attacks';
import { parseConfig } from '@lookalike/core';
import { decodeImage, toPixels } from '@lookalike/imaging';
import type { InProcessJobRunner } from '@lookalike/queue';
import { createServices } from '@lookalike/services';
import { generateCatalog } from '@lookalike/synth';
import { benchTower } from './models.js';

const { values } = parseArgs({
  options: {
    towers: { type: 'string', default: 'defect-cnn-clean,defect-cnn-fare4,vitb32' },
    batch: { type: 'string', default: '10' },
    'vit-batch': { type: 'string', default: '4' },
    queries: { type: 'string', default: '20' },
    triplets: { type: 'string', default: '20' },
    full: { type: 'boolean', default: false },
  },
});

const EPS = 4 / 255;
const rows: string[] = [];
const results: { attacks: unknown[]; audit?: unknown } = { attacks: [] };
let peakRss = 0;
const sample = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);

// Part 1: attack cost per query.
const FIXTURES = 'models/fixtures/images';
const files = (await readdir(FIXTURES))
  .filter((f) => f.endsWith('.png') && !f.includes('px.'))
  .map((f) => `${FIXTURES}/${f}`);
const images = await Promise.all(files.map(async (f) => decodeImage(await readFile(f))));
const cacheDir = 'bench/.cache/vjp';
for (const name of values.towers.split(',')) {
  const tower = await benchTower(name);
  const model = await PixelSpaceModel.open(name, tower.modelPath, tower.spec, {
    cacheDir,
    outputNormalized: tower.outputNormalized,
  });
  const n = Number(name === 'vitb32' ? values['vit-batch'] : values.batch);
  const per = 3 * tower.spec.size * tower.spec.size;
  const x = new Float32Array(n * per);
  for (let i = 0; i < n; i++) toPixels(images[i % images.length]!, tower.spec, x, i * per);
  const anchors = await model.embed(x, n);
  for (const [label, config] of [
    ['PGD-10', { name: 'pgd', norm: 'linf', epsilon: EPS, steps: 10 }],
    ['APGD-100', { name: 'apgd', norm: 'linf', epsilon: EPS, steps: 100 }],
  ] as [string, AttackConfig][]) {
    // What a BullMQ worker running this batch would see of its own event loop: how busy it is, its longest stall.
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    const elu = performance.eventLoopUtilization();
    const t0 = performance.now();
    const r = await runAttack({ model, x, n, anchors, goal: 'untargeted' }, config);
    const secondsPerQuery = (performance.now() - t0) / 1000 / n;
    const loopBusy = performance.eventLoopUtilization(elu).utilization;
    delay.disable();
    const loopStallMs = delay.max / 1e6;
    const meanLoss = r.loss.reduce((s, v) => s + v, 0) / n;
    results.attacks.push({ tower: name, attack: label, batch: n, secondsPerQuery, meanLoss, loopBusy, loopStallMs });
    rows.push(
      `| ${name} | ${label} | ${n} | ${secondsPerQuery.toFixed(3)} | ${meanLoss.toFixed(3)} | ${(100 * loopBusy).toFixed(0)} % | ${loopStallMs.toFixed(0)} |`,
    );
    console.error(
      `${name} ${label}: ${secondsPerQuery.toFixed(3)} s/query (batch ${n}), mean loss ${meanLoss.toFixed(3)}, ` +
        `event loop busy ${(100 * loopBusy).toFixed(0)} %, longest stall ${loopStallMs.toFixed(0)} ms`,
    );
  }
  await model.release();
}

// Part 2: the audit end to end.
const NIGHTLY = {
  queries: 200,
  epsilons: [0, 1 / 255, 2 / 255, 4 / 255, 8 / 255],
  targetedQueries: 50,
  triplets: 100,
};
const queries = values.full ? NIGHTLY.queries : Number(values.queries);
const triplets = values.full ? NIGHTLY.triplets : Number(values.triplets);
const dir = await mkdtemp(join(tmpdir(), 'bench-audit-'));
try {
  await generateCatalog({ count: 400, seed: 1, outDir: join(dir, 'catalog'), twins: false, size: 256 });
  const services = await createServices(parseConfig({ DATA_DIR: dir, INGEST_ROOTS: dir, LOG_LEVEL: 'silent' }));
  try {
    const runner = services.runner as InProcessJobRunner;
    await runner.enqueue('ingest-run', {
      runId: 'catalog',
      source: { kind: 'manifest', location: join(dir, 'catalog', 'manifest.jsonl') },
    });
    await runner.idle();
    const t0 = performance.now();
    await runner.enqueue('audit-run', {
      auditId: 'bench',
      options: {
        ...services.auditDefaults,
        epsilons: NIGHTLY.epsilons,
        queries,
        // The nightly share of targeted queries (50 of 200).
        targetedQueries: Math.round((queries * NIGHTLY.targetedQueries) / NIGHTLY.queries),
        attack: 'apgd',
        steps: 100,
        perceptual: { ...services.auditDefaults.perceptual, triplets },
      },
    });
    await runner.idle();
    const seconds = (performance.now() - t0) / 1000;
    const audit = await services.audits.get('bench');
    if (!audit) throw new Error('the bench audit was not stored');
    // The retrieval part and the perceptual part (2AFC and the duplicate attacks), each projected to the nightly size.
    const perceptualSeconds = audit.perceptual?.cost.seconds ?? 0;
    const projected =
      ((seconds - perceptualSeconds) * NIGHTLY.queries) / queries +
      (triplets ? (perceptualSeconds * NIGHTLY.triplets) / triplets : 0);
    const twoAfc = (e: string) => audit.perceptual?.twoAfc.find((m) => m.encoder === e && m.norm === 'linf');
    const at4 = (e: string) => audit.metrics.find((m) => m.encoder === e && m.epsilon === EPS)?.overlapAtK ?? NaN;
    results.audit = {
      queries,
      epsilons: NIGHTLY.epsilons,
      seconds,
      secondsPerQueryPerEncoder: audit.cost.secondsPerQueryPerEncoder,
      projectedNightlySeconds: projected,
      overlapAt4: { robust: at4('robust'), clean: at4('clean') },
      perceptual: {
        triplets,
        seconds: perceptualSeconds,
        secondsPerTriplet: triplets ? perceptualSeconds / triplets : 0,
        twoAfcAt4: { robust: twoAfc('robust'), clean: twoAfc('clean') },
        twoAfc: audit.perceptual?.twoAfc,
        duplicates: audit.perceptual?.duplicates,
      },
    };
    clearInterval(sample);
    await mkdir('bench/results', { recursive: true });
    await writeFile(
      'bench/results/audit.json',
      JSON.stringify({ ...results, peakRssMiB: peakRss / 2 ** 20 }, null, 2) + '\n',
    );
    console.log(
      '| tower | attack | batch | s / query (one ε) | mean loss 1 − cos | event loop busy | longest loop stall (ms) |',
    );
    console.log('| --- | --- | --- | --- | --- | --- | --- |');
    for (const r of rows) console.log(r);
    console.log(
      `\nAudit of the committed towers, APGD-100 at ε ∈ {1,2,4,8}/255 (+ ε = 0), ${queries} queries (${Math.round((queries * 50) / 200)} also targeted): ` +
        `${seconds.toFixed(0)} s wall, ${audit.cost.secondsPerQueryPerEncoder.toFixed(2)} s per query per encoder; ` +
        `2AFC part: ${triplets} triplets, ${triplets ? (perceptualSeconds / triplets).toFixed(2) : '—'} s per triplet (both towers, ℓ∞ and ℓ2 2AFC and the two duplicate attacks); ` +
        `${values.full ? 'measured' : 'projected'} nightly (200 queries, 100 triplets): ${(projected / 60).toFixed(1)} min (aim ≤ 15 min). ` +
        `Overlap@10 at 4/255: robust ${(100 * at4('robust')).toFixed(1)} %, clean ${(100 * at4('clean')).toFixed(1)} %. ` +
        `Peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB.`,
    );
  } finally {
    await services.close();
  }
} finally {
  clearInterval(sample);
  await rm(dir, { recursive: true, force: true });
}
