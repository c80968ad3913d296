/**
 * Memory and time of an ingest run's listing: a JSONL manifest of `--lines` lines read by the `ingest-run` handler
 * (streamed, batch jobs queued a page at a time) against the same manifest read whole and held as items, as the
 * handler did before it streamed (the baseline, same parser, same run). Queuing itself is left out: the handler's
 * context counts the batch jobs and drops them, so the numbers are the listing's own. Peak heap (sampled every 10 ms,
 * after a full GC) and wall time per phase; prints markdown and writes bench/results/ingest-run.json.
 *
 *   npm run bench:ingest-run [-- --lines 1000000 --batch-size 32]
 */
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ingestRunHandler, readManifest, type ManifestEntry } from '@lookalike/ingest';

const { values } = parseArgs({
  options: {
    lines: { type: 'string', default: '1000000' },
    'batch-size': { type: 'string', default: '32' },
  },
});
const lines = Number(values.lines);
const batchSize = Number(values['batch-size']);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc (npm run bench:ingest-run does)');

const dir = await mkdtemp(join(tmpdir(), 'bench-ingest-run-'));
try {
  const manifest = join(dir, 'manifest.jsonl');
  const text = Array.from({ length: lines }, (_, i) =>
    JSON.stringify({ path: `images/${i}.jpg`, caption: `a part photographed ${i}`, labels: { part: 'gear' } }),
  ).join('\n');
  await writeFile(manifest, text + '\n');
  const manifestMiB = Buffer.byteLength(text) / 2 ** 20;

  async function measure(label: string, work: () => Promise<number>) {
    gc!();
    const base = process.memoryUsage().heapUsed;
    let peak = base;
    const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().heapUsed)), 10);
    const t0 = performance.now();
    const items = await work();
    const seconds = (performance.now() - t0) / 1000;
    clearInterval(timer);
    peak = Math.max(peak, process.memoryUsage().heapUsed);
    return { label, items, seconds, peakHeapMiB: (peak - base) / 2 ** 20 };
  }

  const streamed = await measure('ingest-run, streamed and paged', async () => {
    let queued = 0;
    const handler = ingestRunHandler({ roots: [dir], fetch: { maxBytes: 1 << 20, timeoutMs: 1000 } });
    const ctx = {
      enqueueBulk: (_name: string, payloads: readonly { items: unknown[] }[]) => {
        for (const p of payloads) queued += p.items.length;
        return Promise.resolve();
      },
      updateProgress: () => Promise.resolve(),
    } as unknown as Parameters<typeof handler>[1];
    await handler({ runId: 'bench', source: { kind: 'manifest', location: manifest }, batchSize }, ctx);
    return queued;
  });
  const whole = await measure('whole manifest held as items (baseline)', async () => {
    const entries: ManifestEntry[] = [];
    for await (const e of readManifest(createReadStream(manifest), 'jsonl', dir)) entries.push(e);
    // The payloads of every batch job, built at once, as the handler did.
    const items = entries.flatMap((e) => ('item' in e ? [e.item] : []));
    const payloads = Array.from({ length: Math.ceil(items.length / batchSize) }, (_, b) =>
      items.slice(b * batchSize, (b + 1) * batchSize),
    );
    return payloads.reduce((n, p) => n + p.length, 0);
  });

  const rows = [streamed, whole].map(
    (r) => `| ${r.label} | ${r.items} | ${r.seconds.toFixed(2)} | ${r.peakHeapMiB.toFixed(0)} |`,
  );
  const ratio = whole.peakHeapMiB / Math.max(streamed.peakHeapMiB, 1);
  console.log(
    [
      `Manifest: ${lines} lines, ${manifestMiB.toFixed(0)} MiB; batch size ${batchSize}.`,
      '',
      '| phase | items | s | peak heap MiB |',
      '|---|---|---|---|',
      ...rows,
      '',
      `Baseline ÷ streamed peak heap: ${ratio.toFixed(1)}×; time ratio ${(streamed.seconds / whole.seconds).toFixed(2)}.`,
    ].join('\n'),
  );
  await mkdir('bench/results', { recursive: true });
  await writeFile('bench/results/ingest-run.json', JSON.stringify({ lines, batchSize, streamed, whole }, null, 2));
} finally {
  await rm(dir, { recursive: true, force: true });
}
