/**
 * Writes a synthetic catalog to disk: images, `manifest.jsonl` (one line per image with labels, caption and, on
 * request, its edited twin) and `catalog.json` (generator, seed, options and the caption vocabulary). The same
 * options always give byte-identical files.
 */
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import writeFileAtomic from 'write-file-atomic';
import { distortionRecipe, renderDistorted, type DistortionRecipe } from './distorted.js';
import { noiseBank } from './noise.js';
import { renderSvg } from './render.js';
import {
  captionOf,
  makeRerender,
  makeTwin,
  sampleSpec,
  type ItemLabels,
  type ItemSpec,
  type RerenderChanges,
  type TwinEdit,
} from './spec.js';
import { VOCABULARY } from './vocabulary.js';

/** Bumped whenever a change to the generator changes any pixel or label for the same seed. */
export const GENERATOR = '@lookalike/synth/1';

export type ImageFormat = 'png' | 'jpeg';

export interface CatalogOptions {
  /** Number of catalog images (twins come on top). */
  count: number;
  seed: number;
  outDir: string;
  /** Also render an edited twin of every image. */
  twins?: boolean;
  /**
   * Also render this many re-renders of every image (0–4; default 0): the same item photographed again
   * (`makeRerender`), the ground truth of near-duplicate detection.
   */
  rerenders?: number;
  format?: ImageFormat;
  /** Pixel side of the square images; default 256. */
  size?: number;
  /**
   * Also render a distorted copy of every image (`distortionRecipe`: blur, motion, noise, JPEG, exposure, contrast
   * at known severities), with its quality target: the ground truth of the quality head.
   */
  distort?: boolean;
  /** Images rendered at once; default: the number of cores, at least 2. */
  concurrency?: number;
  /** Called after each image (and its twin) is written. */
  onProgress?: (done: number, total: number) => void;
  /** Replace an existing catalog in `outDir`; without it a non-empty `outDir` is an error. */
  overwrite?: boolean;
}

/**
 * The ingest manifest of a catalog's re-renders (when it has them), one line each: `id`, `file`, `caption`,
 * `labels`, and `item`, the id of the manifest record it re-renders.
 */
export const RERENDERS_MANIFEST = 'rerenders.jsonl';

/**
 * The ingest manifest of a catalog's distorted copies (when it has them), one line each: `id`, `file`, `caption`,
 * `labels`, `item` (the record it distorts), `distortions` and `quality` ({@link distortionRecipe}).
 */
export const DISTORTED_MANIFEST = 'distorted.jsonl';

/** One image of the manifest, as written to `manifest.jsonl`. */
export interface ManifestRecord {
  id: string;
  /** Path relative to the catalog root. */
  file: string;
  caption: string;
  labels: ItemLabels;
  pose: ItemSpec['pose'];
  twin?: { id: string; file: string; caption: string; labels: ItemLabels; edit: TwinEdit };
  /** The re-renders of the same item, when the catalog has them: `<id>-r1`, `<id>-r2`, … */
  rerenders?: RerenderRecord[];
  /** The item's distorted copy, when the catalog has them: `<id>-q`, PNG, with its recipe and quality target. */
  distorted?: { id: string; file: string } & DistortionRecipe;
}

/** One re-render of a manifest record's item: the same item photographed again. */
export interface RerenderRecord {
  id: string;
  file: string;
  labels: ItemLabels;
  pose: ItemSpec['pose'];
  changes: RerenderChanges;
}

/** What `catalog.json` holds. */
export interface CatalogInfo {
  generator: string;
  seed: number;
  count: number;
  twins: boolean;
  /** Re-renders per item; present only when the catalog has them. */
  rerenders?: number;
  /** Whether every item has a distorted copy; present only when the catalog has them. */
  distorted?: boolean;
  format: ImageFormat;
  size: number;
  images: number;
  vocabulary: typeof VOCABULARY;
}

/** Thrown for options that cannot make a catalog (the CLI prints the message). */
export class CatalogOptionsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CatalogOptionsError';
    Object.setPrototypeOf(this, new.target.prototype);
  }
}

sharp.cache(false);

/** JPEG quality of catalog images saved as JPEG (a re-render may be compressed harder). */
const CATALOG_JPEG_QUALITY = 92;

/** Rasterises one spec to encoded image bytes; `jpegQuality` applies to the JPEG format only. */
export async function renderImage(
  spec: ItemSpec,
  size: number,
  format: ImageFormat,
  jpegQuality = CATALOG_JPEG_QUALITY,
): Promise<Buffer> {
  const image = sharp(Buffer.from(renderSvg(spec, size, await noiseBank())), { density: 72 }).removeAlpha();
  // Chroma subsampling comes with harder compression, as in a camera's or a phone's JPEG.
  const chromaSubsampling = jpegQuality >= CATALOG_JPEG_QUALITY ? '4:4:4' : '4:2:0';
  return format === 'png'
    ? image.png({ compressionLevel: 6, adaptiveFiltering: false }).toBuffer()
    : image.jpeg({ quality: jpegQuality, chromaSubsampling, mozjpeg: false }).toBuffer();
}

/** Most re-renders per item a catalog may ask for. */
export const MAX_RERENDERS = 4;

function validate(o: CatalogOptions): Required<Omit<CatalogOptions, 'onProgress'>> {
  if (!Number.isInteger(o.count) || o.count < 1 || o.count > 10_000_000)
    throw new CatalogOptionsError(`count must be a whole number from 1 to 10000000; got ${o.count}`);
  if (!Number.isInteger(o.seed) || o.seed < 0 || o.seed > 2 ** 32 - 1)
    throw new CatalogOptionsError(`seed must be a whole number from 0 to 4294967295; got ${o.seed}`);
  const size = o.size ?? 256;
  if (!Number.isInteger(size) || size < 32 || size > 2048)
    throw new CatalogOptionsError(`size must be a whole number of pixels from 32 to 2048; got ${size}`);
  const format = o.format ?? 'png';
  if (format !== 'png' && format !== 'jpeg')
    throw new CatalogOptionsError(`format must be png or jpeg; got ${String(format)}`);
  const rerenders = o.rerenders ?? 0;
  if (!Number.isInteger(rerenders) || rerenders < 0 || rerenders > MAX_RERENDERS)
    throw new CatalogOptionsError(`rerenders must be a whole number from 0 to ${MAX_RERENDERS}; got ${rerenders}`);
  const concurrency = o.concurrency ?? Math.max(2, availableParallelism());
  return {
    count: o.count,
    seed: o.seed,
    outDir: o.outDir,
    twins: o.twins ?? false,
    rerenders,
    distort: o.distort ?? false,
    format,
    size,
    concurrency,
    overwrite: o.overwrite ?? false,
  };
}

/** The manifest record of image `index` (no pixels are rendered). */
export function manifestRecord(
  seed: number,
  index: number,
  twins: boolean,
  format: ImageFormat,
  rerenders = 0,
  distort = false,
): ManifestRecord {
  const spec = sampleSpec(seed, index);
  const id = `s${seed}-${String(index).padStart(6, '0')}`;
  const ext = format === 'png' ? 'png' : 'jpg';
  const record: ManifestRecord = {
    id,
    file: `images/${id}.${ext}`,
    caption: captionOf(spec.labels),
    labels: spec.labels,
    pose: spec.pose,
  };
  if (twins) {
    const twin = makeTwin(spec, seed, index);
    record.twin = {
      id: `${id}-twin`,
      file: `images/${id}-twin.${ext}`,
      caption: captionOf(twin.spec.labels),
      labels: twin.spec.labels,
      edit: twin.edit,
    };
  }
  if (rerenders > 0) {
    record.rerenders = Array.from({ length: rerenders }, (_, i) => {
      const { spec: again, changes } = makeRerender(spec, seed, index, i + 1);
      const rid = `${id}-r${i + 1}`;
      return {
        id: rid,
        file: `images/${rid}.${changes.jpegQuality === undefined ? ext : 'jpg'}`,
        labels: again.labels,
        pose: again.pose,
        changes,
      };
    });
  }
  if (distort) record.distorted = { id: `${id}-q`, file: `images/${id}-q.png`, ...distortionRecipe(seed, index) };
  return record;
}

/**
 * Generates the catalog. Images are written under a temporary name and renamed, and `catalog.json` is written
 * last, so a catalog with a `catalog.json` is complete.
 */
export async function generateCatalog(options: CatalogOptions): Promise<CatalogInfo> {
  const o = validate(options);
  const existing = await readdir(o.outDir).catch((e: unknown) => {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  });
  if (existing.length > 0) {
    if (!o.overwrite)
      throw new CatalogOptionsError(`${o.outDir} is not empty; choose an empty folder or pass overwrite to replace it`);
    await rm(join(o.outDir, 'catalog.json'), { force: true });
    await rm(join(o.outDir, 'manifest.jsonl'), { force: true });
    await rm(join(o.outDir, RERENDERS_MANIFEST), { force: true });
    await rm(join(o.outDir, DISTORTED_MANIFEST), { force: true });
    await rm(join(o.outDir, 'images'), { recursive: true, force: true });
  }
  await mkdir(join(o.outDir, 'images'), { recursive: true });

  const lines: string[] = new Array<string>(o.count);
  let next = 0;
  let done = 0;
  const write = async (file: string, bytes: Buffer): Promise<void> => {
    // Whole or absent after a crash; not synced, as a catalog is made again rather than recovered.
    await writeFileAtomic(join(o.outDir, file), bytes, { fsync: false });
  };
  const worker = async (): Promise<void> => {
    while (next < o.count) {
      const index = next++;
      const record = manifestRecord(o.seed, index, o.twins, o.format, o.rerenders, o.distort);
      const spec = sampleSpec(o.seed, index);
      await write(record.file, await renderImage(spec, o.size, o.format));
      if (record.twin) {
        await write(record.twin.file, await renderImage(makeTwin(spec, o.seed, index).spec, o.size, o.format));
      }
      for (const [i, again] of (record.rerenders ?? []).entries()) {
        const { spec: rendered } = makeRerender(spec, o.seed, index, i + 1);
        const quality = again.changes.jpegQuality;
        await write(
          again.file,
          await renderImage(rendered, o.size, quality === undefined ? o.format : 'jpeg', quality),
        );
      }
      if (record.distorted) {
        await write(record.distorted.file, await renderDistorted(spec, o.size, record.distorted, o.seed, index));
      }
      lines[index] = JSON.stringify(record);
      options.onProgress?.(++done, o.count);
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.concurrency, o.count) }, worker));

  await writeFile(join(o.outDir, 'manifest.jsonl'), lines.join('\n') + '\n');
  if (o.rerenders > 0) {
    // The re-renders as an ingest manifest of their own: the same parts photographed again, a day later.
    const again = lines.flatMap((line) => {
      const record = JSON.parse(line) as ManifestRecord;
      return (record.rerenders ?? []).map((r) =>
        JSON.stringify({ id: r.id, file: r.file, caption: captionOf(r.labels), labels: r.labels, item: record.id }),
      );
    });
    await writeFile(join(o.outDir, RERENDERS_MANIFEST), again.join('\n') + '\n');
  }
  if (o.distort) {
    const distorted = lines.map((line) => {
      const record = JSON.parse(line) as ManifestRecord;
      const d = record.distorted!;
      return JSON.stringify({
        id: d.id,
        file: d.file,
        caption: record.caption,
        labels: record.labels,
        item: record.id,
        distortions: d.distortions,
        quality: d.quality,
      });
    });
    await writeFile(join(o.outDir, DISTORTED_MANIFEST), distorted.join('\n') + '\n');
  }
  const info: CatalogInfo = {
    generator: GENERATOR,
    seed: o.seed,
    count: o.count,
    twins: o.twins,
    // Only when asked for, so that a catalog without re-renders keeps its bytes.
    ...(o.rerenders > 0 ? { rerenders: o.rerenders } : {}),
    ...(o.distort ? { distorted: true } : {}),
    format: o.format,
    size: o.size,
    images: o.count * (1 + (o.twins ? 1 : 0) + o.rerenders + (o.distort ? 1 : 0)),
    vocabulary: VOCABULARY,
  };
  await writeFile(join(o.outDir, 'catalog.json'), JSON.stringify(info, null, 2) + '\n');
  return info;
}
