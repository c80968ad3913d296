/**
 * The cached store of `bench:search`: real embeddings of `seeds` synthetic catalog images (128 px, the committed tiny
 * towers) and, for every other point, a perturbation of a seed (its vector turned to a cosine uniform in
 * `noise`, with the seed's caption and labels), written to an embedded store under `cache` and indexed; the
 * embeddings of `queries` further catalog images, not stored, are the queries. Built once and reused while the
 * spec is the same (`meta.json` is written last: a folder with it is complete).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ENCODER_ROLES, cosine, parseConfig, type EncoderRole, type Point, type PointPayload } from '@lookalike/core';
import { decodeImage, preprocessBatch } from '@lookalike/imaging';
import { createServices } from '@lookalike/services';
import { createRng, generateCatalog, type ManifestRecord } from '@lookalike/synth';
import { percentile, round } from './harness.js';
import { perturb } from './vectors.js';

export interface StoreSpec {
  points: number;
  seeds: number;
  queries: number;
  catalogSeed: number;
  /** Cosine of a perturbed point to its seed: uniform in this range. */
  noise: { minCos: number; maxCos: number };
  /** The folder of the store, its queries, ids, captions and `meta.json`. */
  cache: string;
  /** Build again even when the cache matches. */
  rebuild: boolean;
}

export interface Query {
  /** The catalog record id (`s23-002000`); the image is not in the store. */
  record: string;
  part: string;
  vectors: Record<EncoderRole, number[]>;
}

export interface Meta {
  points: number;
  seeds: number;
  queries: number;
  noise: { minCos: number; maxCos: number };
  catalogSeed: number;
  /** Cosine of each seed to its nearest other seed (real embeddings), per tower: median and 10th/90th percentiles. */
  seedNearestCos: Record<EncoderRole, { p10: number; p50: number; p90: number }>;
  buildSeconds: { render: number; embed: number; upsert: number; optimize: number };
}

const sha256 = (data: string | Uint8Array) => createHash('sha256').update(data).digest('hex');

/** The store of `spec`, built unless the cache already holds it; and whether it was cached. */
export async function cachedStore(spec: StoreSpec): Promise<{ meta: Meta; cached: boolean }> {
  const cached = await isBuilt(spec);
  return cached ? { meta: cached, cached: true } : { meta: await build(spec), cached: false };
}

export function searchConfig(cache: string) {
  return parseConfig({
    DATA_DIR: cache,
    INGEST_ROOTS: cache,
    MODELS_DIR: 'models',
    LOG_LEVEL: 'silent',
    // A benchmark sends far more than the default 600 requests a minute from one address.
    RATE_LIMIT_PER_MINUTE: '1000000',
  });
}

async function isBuilt(spec: StoreSpec): Promise<Meta | undefined> {
  if (spec.rebuild || !existsSync(join(spec.cache, 'meta.json'))) return undefined;
  const meta = JSON.parse(await readFile(join(spec.cache, 'meta.json'), 'utf8')) as Meta;
  const same =
    meta.points === spec.points &&
    meta.seeds === spec.seeds &&
    meta.queries === spec.queries &&
    meta.catalogSeed === spec.catalogSeed &&
    meta.noise.minCos === spec.noise.minCos &&
    meta.noise.maxCos === spec.noise.maxCos;
  return same ? meta : undefined;
}

/** Renders the catalog, embeds it, writes the points and the held-out queries, and builds the index. */
async function build(spec: StoreSpec): Promise<Meta> {
  await rm(spec.cache, { recursive: true, force: true });
  await mkdir(spec.cache, { recursive: true });
  const catalogDir = join(spec.cache, 'catalog');
  console.error(`Rendering ${spec.seeds + spec.queries} catalog images (128 px) into ${catalogDir}...`);
  let t0 = performance.now();
  await generateCatalog({ count: spec.seeds + spec.queries, seed: spec.catalogSeed, outDir: catalogDir, size: 128 });
  const render = (performance.now() - t0) / 1000;
  const records = (await readFile(join(catalogDir, 'manifest.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as ManifestRecord);

  const services = await createServices(searchConfig(spec.cache));
  try {
    console.error(`Embedding ${records.length} images with both towers...`);
    t0 = performance.now();
    const embedded: { record: ManifestRecord; bytes: Buffer; vectors: Record<EncoderRole, Float32Array> }[] = [];
    const CHUNK = 32;
    for (let i = 0; i < records.length; i += CHUNK) {
      const chunk = records.slice(i, i + CHUNK);
      const bytes = await Promise.all(chunk.map((r) => readFile(join(catalogDir, r.file))));
      const images = await Promise.all(bytes.map((b) => decodeImage(b)));
      const vectors = await Promise.all(
        ENCODER_ROLES.map((role) =>
          services.encoders[role].embed(preprocessBatch(images, services.encoders[role].info.preprocess)),
        ),
      );
      chunk.forEach((record, j) =>
        embedded.push({
          record,
          bytes: bytes[j]!,
          vectors: Object.fromEntries(ENCODER_ROLES.map((r, k) => [r, vectors[k]![j]!])) as Record<
            EncoderRole,
            Float32Array
          >,
        }),
      );
    }
    const embed = (performance.now() - t0) / 1000;
    const seeds = embedded.slice(0, spec.seeds);
    const held = embedded.slice(spec.seeds);

    // How close real catalog images are to each other, so the noise scale can be read against it.
    const seedNearestCos = Object.fromEntries(
      ENCODER_ROLES.map((role) => {
        const nearest = seeds.map((a, i) => {
          let best = -1;
          seeds.forEach((b, j) => {
            if (i !== j) best = Math.max(best, cosine(a.vectors[role], b.vectors[role]));
          });
          return best;
        });
        nearest.sort((x, y) => x - y);
        return [
          role,
          {
            p10: round(percentile(nearest, 10), 4),
            p50: round(percentile(nearest, 50), 4),
            p90: round(percentile(nearest, 90), 4),
          },
        ];
      }),
    ) as Meta['seedNearestCos'];

    const provenance = Object.fromEntries(
      ENCODER_ROLES.map((r) => [
        r,
        { modelId: services.encoders[r].info.id, preprocessHash: services.encoders[r].info.preprocessHash },
      ]),
    ) as PointPayload['embeddings'];
    const ingestedAt = new Date().toISOString();
    const seedPayload = (s: (typeof seeds)[number], id: string): PointPayload => ({
      id,
      source: join(catalogDir, s.record.file),
      format: 'png',
      width: 128,
      height: 128,
      bytes: s.bytes.length,
      caption: s.record.caption,
      labels: { ...s.record.labels },
      metadata: { externalId: s.record.id },
      ingestedAt,
      embeddings: provenance,
    });

    const perSeed = Math.ceil(spec.points / spec.seeds);
    const ids: string[] = [];
    const page: Point[] = [];
    t0 = performance.now();
    const flush = async () => {
      await services.store.upsert(page);
      page.length = 0;
    };
    console.error(`Writing ${spec.points} points (${spec.seeds} real, the rest perturbed) to the embedded store...`);
    for (let j = 0; j < perSeed && ids.length < spec.points; j++) {
      for (const s of seeds) {
        if (ids.length >= spec.points) break;
        if (j === 0) {
          const id = sha256(s.bytes);
          page.push({ id, vectors: s.vectors, payload: seedPayload(s, id) });
          ids.push(id);
        } else {
          const rng = createRng(spec.catalogSeed, s.record.id, j);
          const cos = rng.range(spec.noise.minCos, spec.noise.maxCos);
          const next = () => rng.next();
          const id = sha256(`perturbation:${s.record.id}:${j}`);
          page.push({
            id,
            vectors: Object.fromEntries(ENCODER_ROLES.map((r) => [r, perturb(s.vectors[r], cos, next)])) as Record<
              EncoderRole,
              Float32Array
            >,
            payload: {
              ...seedPayload(s, id),
              source: `synthetic:perturbation/${s.record.id}/${j}`,
              metadata: { externalId: `${s.record.id}~${j}`, derivedFrom: s.record.id, cosToSeed: round(cos, 4) },
            },
          });
          ids.push(id);
        }
        if (page.length >= 5000) await flush();
      }
    }
    await flush();
    const upsert = (performance.now() - t0) / 1000;
    console.error(`Stored ${await services.store.count()} points in ${upsert.toFixed(0)} s; building the index...`);
    t0 = performance.now();
    const { indexed } = await services.store.optimize!();
    const optimize = (performance.now() - t0) / 1000;
    if (!indexed)
      throw new Error(`optimize() left the vector index out of step with the table at ${spec.points} points`);

    const queries: Query[] = held.map((h) => ({
      record: h.record.id,
      part: h.record.labels.part,
      vectors: Object.fromEntries(ENCODER_ROLES.map((r) => [r, Array.from(h.vectors[r])])) as Query['vectors'],
    }));
    await writeFile(join(spec.cache, 'queries.json'), JSON.stringify(queries));
    await writeFile(join(spec.cache, 'ids.json'), JSON.stringify(ids));
    await writeFile(
      join(spec.cache, 'captions.json'),
      JSON.stringify([...new Set(seeds.map((s) => s.record.caption))].slice(0, 1000)),
    );
    const meta: Meta = {
      points: spec.points,
      seeds: spec.seeds,
      queries: spec.queries,
      noise: spec.noise,
      catalogSeed: spec.catalogSeed,
      seedNearestCos,
      buildSeconds: {
        render: round(render, 1),
        embed: round(embed, 1),
        upsert: round(upsert, 1),
        optimize: round(optimize, 1),
      },
    };
    // Written last: a store with meta.json is complete.
    await writeFile(join(spec.cache, 'meta.json'), JSON.stringify(meta, null, 2) + '\n');
    return meta;
  } finally {
    await services.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Measuring
