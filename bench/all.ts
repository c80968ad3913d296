/**
 * `npm run bench`: runs every benchmark one after another (never side by side: they would share the two cores) and
 * writes one markdown report, bench/results/report.md, of the ratios each measured against its own baseline in the
 * same run, with this machine's float32 matmul rate (measured by bench:encoder) as the limit column.
 *
 *   npm run bench [-- --only encoder,autodiff,ingest,audit,search,load,quality] [--report-only]
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';

const ALL = ['encoder', 'autodiff', 'ingest', 'audit', 'search', 'load', 'quality'] as const;
const { values } = parseArgs({
  options: { only: { type: 'string', default: ALL.join(',') }, 'report-only': { type: 'boolean', default: false } },
});
const chosen = values.only.split(',').filter((b): b is (typeof ALL)[number] => (ALL as readonly string[]).includes(b));

const ran: { bench: string; seconds: number; ok: boolean }[] = [];
if (!values['report-only']) {
  for (const bench of chosen) {
    const t0 = performance.now();
    let ok = true;
    try {
      console.error(`\n=== npm run bench:${bench} ===`);
      execFileSync('npm', ['run', '--silent', `bench:${bench}`], { stdio: ['ignore', 'inherit', 'inherit'] });
    } catch {
      ok = false;
      console.error(`bench:${bench} failed; its row is left out of the report.`);
    }
    ran.push({ bench, seconds: (performance.now() - t0) / 1000, ok });
  }
  await mkdir('bench/results', { recursive: true });
  await writeFile('bench/results/runs.json', JSON.stringify(ran, null, 2) + '\n');
} else if (existsSync('bench/results/runs.json')) {
  // The report rebuilt from the last run's results names that run's benchmarks and durations.
  ran.push(...(JSON.parse(await readFile('bench/results/runs.json', 'utf8')) as typeof ran));
}

async function result<T>(name: string): Promise<T | undefined> {
  const file = `bench/results/${name}.json`;
  return existsSync(file) ? (JSON.parse(await readFile(file, 'utf8')) as T) : undefined;
}

interface EncoderResult {
  /** The limit: the best float32 rate of the run (onnxruntime's MatMul, PyTorch's, or a tower's own). */
  matmulGflops: number;
  ortMatmulGflops?: number;
  torchMatmulGflops?: number;
  theoreticalPeak?: { gflops: number; cores: number; ghz: number; flopsPerCycle: number; basis: string };
  limitNote?: string;
  blasNote?: string;
  torch: string;
  models: Record<
    string,
    {
      macsPerImage: number;
      limitImagesPerSecond: number;
      results: { batch: number; typescript: number; pytorch: number; ratio: number; ofLimit: number }[];
    }
  >;
}
interface AutodiffResult {
  models: Record<
    string,
    { rows: { batch: number; forwardMsPerImage: number; vjpMsPerImage: number; ratio: number }[] }
  >;
}
interface IngestResult {
  kinds: Record<string, { label: string }>;
  models: Record<
    string,
    {
      encoderOnly: { imagesPerSecond: number; cpuMsPerImage: number };
      kinds: Record<
        string,
        {
          ingest: { imagesPerSecond: number; cpuMsPerImage: number };
          ratio: number;
          ingestExact?: { imagesPerSecond: number };
          exactRatio?: number;
        }
      >;
    }
  >;
}
interface AuditBench {
  attacks: { tower: string; attack: string; batch: number; secondsPerQuery: number }[];
  audit?: {
    queries: number;
    seconds: number;
    projectedNightlySeconds: number;
    overlapAt4: { robust: number; clean: number };
  };
}

interface SearchBench {
  store: { points: number };
  recall: {
    tower: string;
    filter: string;
    recallAtK: number;
    annMs: { p50: number; p99: number };
    exactMs: { p50: number; p99: number };
  }[];
  idLookup?: { scan: { p50: number }; btree: { p50: number } };
}
interface LoadBench {
  bigUploads?: {
    uploads: number;
    poolOverBaseline: number;
    rows: { mode: string; peakAboveStartMiB: number }[];
  };
}
interface QualityBench {
  catalog: { count: number };
  imageToImage: { name: string; scores: Record<string, { value: number }> }[];
  aims: { met: boolean }[];
}

const encoder = await result<EncoderResult>('encoder');
const autodiff = await result<AutodiffResult>('autodiff');
const ingest = await result<IngestResult>('ingest');
const audit = await result<AuditBench>('audit');
const search = await result<SearchBench>('search');
const load = await result<LoadBench>('load');
const quality = await result<QualityBench>('quality');
const gflops = encoder?.matmulGflops;
const macs = (tower: string) => encoder?.models[tower]?.macsPerImage;
const f = (x: number | undefined, d = 2) => (x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(d));

const rows: string[] = [];
const row = (what: string, measured: string, baseline: string, ratio: string, limit: string) =>
  rows.push(`| ${what} | ${measured} | ${baseline} | ${ratio} | ${limit} |`);
// "Of limit" is at most 100 %: bench:encoder raises the limit to a tower's own rate if one outran the MatMul runs.
const ofLimit = (x: number) => `${(100 * Math.min(1, x)).toFixed(0)} %`;
const slowBlas =
  encoder?.torchMatmulGflops && encoder.ortMatmulGflops && encoder.torchMatmulGflops < encoder.ortMatmulGflops
    ? ` (PyTorch's BLAS: ${f(encoder.torchMatmulGflops, 1)} GFLOP/s, ${f(encoder.ortMatmulGflops / encoder.torchMatmulGflops, 1)}× slower than onnxruntime's MatMul)`
    : '';
for (const [tower, m] of Object.entries(encoder?.models ?? {}))
  for (const r of m.results)
    row(
      `encoder ${tower}, batch ${r.batch}: TypeScript vs PyTorch ${encoder!.torch}`,
      `${f(r.typescript, 1)} img/s`,
      `${f(r.pytorch, 1)} img/s`,
      `${f(r.ratio)}×${slowBlas}`,
      `${f(m.limitImagesPerSecond, 1)} img/s (${ofLimit(r.ofLimit)})`,
    );
for (const [tower, m] of Object.entries(autodiff?.models ?? {}))
  for (const r of m.rows) {
    // An input gradient costs a forward and a backward that computes only activation gradients (one matmul per
    // forward matmul, no weight gradients): 2 × the forward's FLOPs at best.
    const limit = gflops && macs(tower) ? (gflops * 1e9) / (2 * 2 * macs(tower)!) : undefined;
    const rate = 1000 / r.vjpMsPerImage;
    row(
      `input gradient ${tower}, batch ${r.batch}: VJP ÷ forward`,
      `${f(r.vjpMsPerImage)} ms/img`,
      `${f(r.forwardMsPerImage)} ms/img`,
      `${f(r.ratio)}×`,
      limit ? `${f(limit, 1)} grad/s (${ofLimit(rate / limit)})` : '–',
    );
  }
/** The aims of issue 16 for ingest ÷ encoders, per towers and kind of file. */
const INGEST_AIMS: Record<string, Record<string, number>> = {
  tiny: { jpeg: 0.85, camera: 0.6 },
  vitb32: { jpeg: 0.95 },
};
for (const [tower, m] of Object.entries(ingest?.models ?? {}))
  for (const [kind, k] of Object.entries(m.kinds)) {
    const aim = INGEST_AIMS[tower]?.[kind];
    row(
      `ingest ${tower}, ${ingest!.kinds[kind]?.label ?? kind}, both towers: end-to-end ÷ encoders only`,
      `${f(k.ingest.imagesPerSecond, 1)} img/s`,
      `${f(m.encoderOnly.imagesPerSecond, 1)} img/s`,
      `${(100 * k.ratio).toFixed(0)} %${aim ? ` (aim ≥ ${100 * aim} %)` : ''}; exact path ` +
        `${k.exactRatio === undefined ? '–' : `${(100 * k.exactRatio).toFixed(0)} %`}`,
      `encoders' share of ingest CPU: ${ofLimit(m.encoderOnly.cpuMsPerImage / k.ingest.cpuMsPerImage)}`,
    );
  }
for (const a of audit?.attacks ?? [])
  row(
    `audit ${a.tower}: ${a.attack}, ε = 4/255, batch ${a.batch}`,
    `${f(a.secondsPerQuery, 3)} s/query`,
    '–',
    '–',
    '–',
  );
if (audit?.audit)
  row(
    `nightly audit, tiny towers, 200 queries × {1,2,4,8}/255, APGD-100`,
    `${f(audit.audit.projectedNightlySeconds / 60, 1)} min (from ${audit.audit.queries} queries)`,
    '15 min aim',
    `${f(audit.audit.projectedNightlySeconds / 900)}× the aim`,
    '–',
  );
for (const r of search?.recall ?? [])
  row(
    `ANN search ${r.tower}, ${search!.store.points.toLocaleString('en')} points, filter ${r.filter}: recall@10 and p50 vs exact`,
    `recall ${f(r.recallAtK, 3)}, ${f(r.annMs.p50, 1)} ms`,
    `exact, ${f(r.exactMs.p50, 1)} ms`,
    `${f(r.exactMs.p50 / r.annMs.p50, 1)}× faster (aim recall ≥ 0.95)`,
    '–',
  );
if (search?.idLookup)
  row(
    'lookup by id (a search by id starts with it): BTREE index vs scan',
    `${f(search.idLookup.btree.p50)} ms p50`,
    `${f(search.idLookup.scan.p50)} ms p50`,
    `${f(search.idLookup.scan.p50 / search.idLookup.btree.p50, 1)}× faster`,
    '–',
  );
if (load?.bigUploads) {
  const [pool, baseline] = load.bigUploads.rows;
  row(
    `memory, ${load.bigUploads.uploads} concurrent 36 MP query uploads: decoded in the pool vs on each request`,
    `+${pool?.peakAboveStartMiB ?? '–'} MiB peak RSS`,
    `+${baseline?.peakAboveStartMiB ?? '–'} MiB`,
    `${f(load.bigUploads.poolOverBaseline)}×`,
    '–',
  );
}
for (const tower of ['robust', 'clean'] as const) {
  const at = (name: string) => quality?.imageToImage.find((r) => r.name.startsWith(name))?.scores.partDefect?.value;
  const measured = at(`${tower} tower`);
  const baseline = at('raw ');
  if (measured === undefined || baseline === undefined) continue;
  row(
    `retrieval quality ${tower} tower, ${quality!.catalog.count} held-out items: part+defect precision@10 vs raw 16×16 pixels`,
    `${f(100 * measured, 1)} %`,
    `${f(100 * baseline, 1)} %`,
    `${f(measured / baseline)}×`,
    `issue #14 aims met: ${quality!.aims.filter((a) => a.met).length} of ${quality!.aims.length}`,
  );
}
const peak = encoder?.theoreticalPeak;
const peakLine = gflops
  ? `float32 matmul limit ${f(gflops, 1)} GFLOP/s (onnxruntime MatMul ${f(encoder?.ortMatmulGflops, 1)}, PyTorch ` +
    `${f(encoder?.torchMatmulGflops, 1)}${encoder?.limitNote ? `; ${encoder.limitNote}` : ''}) · theoretical peak ` +
    (peak
      ? `${f(peak.gflops, 0)} GFLOP/s (${peak.cores} cores × ${f(peak.ghz)} GHz × ${peak.flopsPerCycle} FLOPs/cycle: ${peak.basis})`
      : '–')
  : 'float32 matmul not measured (run bench:encoder)';
const extra = async (name: string, file: string): Promise<string> =>
  existsSync(`bench/results/${file}.md`)
    ? `\n### ${name}\n\n${await readFile(`bench/results/${file}.md`, 'utf8')}\n`
    : '';

const report = `# Lookalike benchmark report

${new Date().toISOString()} · ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'} · load ${loadavg()
  .map((l) => l.toFixed(1))
  .join(' / ')} · ${peakLine}

Every ratio compares two things measured side by side in the same run of its benchmark; the limit is what this
machine's float32 matmul rate allows (FLOPs = 2 × MACs of the tower per image), so "of limit" is at most 100 %.
For ingest the limit column is the encoders' share of ingest's CPU time: what ingest ÷ encoders would be with every
core busy in both phases (a ratio above it means the encoders alone left cores idle). See bench/README.md.

| measure | measured | baseline | ratio | limit |
| --- | --- | --- | --- | --- |
${rows.join('\n')}
${await extra('Search: ANN vs exact, 100,000 points', 'search')}${await extra('Load: 50 connections × 30 s', 'load')}${await extra('Retrieval quality (issue #14)', 'quality')}
${ran.length ? `Benchmarks run: ${ran.map((r) => `${r.bench} ${r.ok ? '' : '(FAILED) '}${r.seconds.toFixed(0)} s`).join(', ')}.` : ''}
`;
await writeFile('bench/results/report.md', report);
console.log(report);
if (ran.some((r) => !r.ok)) process.exitCode = 1;
