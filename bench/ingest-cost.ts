/**
 * What one ingest feature costs: the same items ingested into fresh embedded stores with the feature off and on, in
 * alternating order round by round (off-on, on-off, …) so that drift on a shared machine falls on both sides, and the
 * median throughput of each side. Used by the benchmarks of the features ingest runs beside the towers.
 */
import { join } from 'node:path';
import type { EncoderRole, VectorStore } from '@lookalike/core';
import type { OnnxImageEncoder } from '@lookalike/encoder';
import type { PreprocessPool } from '@lookalike/imaging';
import { createIngestHandlers, type IngestDeps } from '@lookalike/ingest';
import { InProcessJobRunner, type IngestItem } from '@lookalike/queue';
import { EmbeddedVectorStore } from '@lookalike/store-embedded';

export interface IngestCostOptions {
  /** Folder for the stores (one per round and side) and the root the items lie under. */
  dir: string;
  items: IngestItem[];
  encoders: Record<EncoderRole, OnnxImageEncoder>;
  preparer: PreprocessPool;
  rounds: number;
  /** The payload field the feature filters on, indexed in every store, so both sides keep the same index. */
  field: string;
  /** What the line printed after each round calls the feature ("quality", "screening"). */
  feature: string;
  /** The ingest dependencies that turn the feature on, given the store of that round. */
  featureDeps: (store: VectorStore) => Partial<IngestDeps>;
}

export interface IngestCost {
  images: number;
  rounds: number;
  offImagesPerSecond: number;
  onImagesPerSecond: number;
}

export async function ingestCost(o: IngestCostOptions): Promise<IngestCost> {
  const times: Record<'on' | 'off', number[]> = { on: [], off: [] };
  for (let round = 0; round < o.rounds; round++)
    for (const mode of round % 2 ? (['on', 'off'] as const) : (['off', 'on'] as const)) {
      const ms = await timeIngest(o, `${mode}-${round}`, mode === 'on');
      times[mode].push(ms);
      console.log(
        `ingest of ${o.items.length} images, ${o.feature} ${mode}: ${rate(o.items.length, ms).toFixed(1)} img/s`,
      );
    }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return {
    images: o.items.length,
    rounds: o.rounds,
    offImagesPerSecond: rate(o.items.length, median(times.off)),
    onImagesPerSecond: rate(o.items.length, median(times.on)),
  };
}

const rate = (images: number, ms: number) => images / (ms / 1000);

/** Ingests the items into a fresh embedded store, the feature on or off; returns the wall time in ms. */
async function timeIngest(o: IngestCostOptions, name: string, on: boolean): Promise<number> {
  const store = await EmbeddedVectorStore.open(join(o.dir, `store-${name}`));
  await store.ensureCollection({
    name: 'lookalike',
    dims: { robust: o.encoders.robust.info.dim, clean: o.encoders.clean.info.dim },
    indexedFields: [{ path: o.field, type: 'keyword' }],
  });
  const handlers = createIngestHandlers({
    store,
    encoders: o.encoders,
    roots: [o.dir],
    fetch: { maxBytes: 1 << 24, timeoutMs: 1000 },
    preparer: o.preparer,
    ...(on ? o.featureDeps(store) : {}),
  });
  const runner = new InProcessJobRunner(handlers, { ingest: 2 });
  const started = performance.now();
  await runner.enqueue('ingest-run', { runId: name, source: { kind: 'items', items: o.items }, batchSize: 32 });
  await runner.idle();
  const ms = performance.now() - started;
  await runner.close();
  await handlers.close();
  if ((await store.count()) !== o.items.length) throw new Error(`the ingest stored ${await store.count()} images`);
  await store.close();
  return ms;
}
