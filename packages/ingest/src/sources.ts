/**
 * Where bulk ingest finds images: a directory (recursive, glob include/exclude), a JSONL or CSV manifest, or a
 * list of items. Local paths must resolve, symlinks followed, inside one of the configured roots.
 */
import { realpath } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { glob } from 'tinyglobby';
import { ValidationError } from '@lookalike/core';
import { ingestItemSchema, type IngestItem } from '@lookalike/queue';

/** Image file extensions a directory listing picks up by default. */
export const DEFAULT_INCLUDE = ['**/*.{jpg,jpeg,png,webp,gif,tif,tiff,avif,JPG,JPEG,PNG,WEBP,GIF,TIF,TIFF,AVIF}'];

/**
 * The real path of `path` if it lies inside one of `roots` (after resolving symlinks), else a `ValidationError`:
 * `../` tricks and links out of the roots are refused.
 */
export async function resolveInsideRoots(path: string, roots: readonly string[]): Promise<string> {
  let real: string;
  try {
    real = await realpath(resolve(path));
  } catch {
    throw new ValidationError(`${path} does not exist or cannot be read`);
  }
  for (const root of roots) {
    const realRoot = await realpath(resolve(root)).catch(() => undefined);
    if (!realRoot) continue;
    const rel = relative(realRoot, real);
    if (rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel))) return real;
  }
  throw new ValidationError(`${path} is outside the folders ingest may read (${roots.join(', ')}); set INGEST_ROOTS`);
}

/**
 * Files under `root` matching `include` and not `exclude`, sorted, as ingest items with absolute locations. Symbolic
 * links are not followed, so a listing never leaves the root.
 */
export async function listDirectory(
  root: string,
  options: { include?: readonly string[]; exclude?: readonly string[] } = {},
): Promise<IngestItem[]> {
  const files = await glob([...(options.include ?? DEFAULT_INCLUDE)], {
    cwd: root,
    ignore: [...(options.exclude ?? [])],
    onlyFiles: true,
    followSymbolicLinks: false,
    dot: false,
    expandDirectories: false,
  });
  return files.sort().map((f) => ({ location: resolve(root, f) }));
}

/** A manifest line that could not be used, with its 1-based line number. */
export interface ManifestProblem {
  line: number;
  reason: string;
}

const LOCATION_KEYS = ['location', 'path', 'url', 'file'] as const;

function toItem(raw: Record<string, unknown>, baseDir: string): IngestItem {
  const key = LOCATION_KEYS.find((k) => typeof raw[k] === 'string' && raw[k] !== '');
  if (!key) throw new Error(`no ${LOCATION_KEYS.join('/')} field`);
  const loc = raw[key] as string;
  const location = /^https?:\/\//i.test(loc) ? loc : resolve(baseDir, loc);
  const known = new Set<string>([...LOCATION_KEYS, 'id', 'caption', 'labels', 'metadata']);
  // Other scalar fields become metadata; nested values (e.g. a synthetic catalog's pose or twin) are not metadata.
  const extra = Object.fromEntries(
    Object.entries(raw).filter(
      ([k, v]) =>
        !known.has(k) && v !== '' && (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean'),
    ),
  );
  const metadata = { ...((raw.metadata as object | undefined) ?? {}), ...extra };
  const candidate = {
    location,
    // Numeric ids from CSV or JSON become strings; anything else goes to the schema, which refuses it.
    ...(raw.id === undefined || raw.id === '' ? {} : { id: typeof raw.id === 'number' ? String(raw.id) : raw.id }),
    ...(raw.caption === undefined || raw.caption === '' ? {} : { caption: raw.caption }),
    ...(raw.labels ? { labels: raw.labels } : {}),
    ...(Object.keys(metadata).length ? { metadata } : {}),
  };
  const parsed = ingestItemSchema.safeParse(candidate);
  if (!parsed.success) throw new Error(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  return parsed.data;
}

/**
 * Parses a JSONL or CSV manifest (relative paths resolve against `baseDir`). Bad lines are reported, never fatal:
 * one malformed row must not lose the rest of the catalog.
 */
export function parseManifest(
  text: string,
  format: 'jsonl' | 'csv',
  baseDir: string,
): { items: IngestItem[]; problems: ManifestProblem[] } {
  const items: IngestItem[] = [];
  const problems: ManifestProblem[] = [];
  if (format === 'jsonl') {
    text.split('\n').forEach((line, i) => {
      if (!line.trim()) return;
      try {
        const raw = JSON.parse(line) as unknown;
        if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new Error('not a JSON object');
        items.push(toItem(raw as Record<string, unknown>, baseDir));
      } catch (error) {
        problems.push({ line: i + 1, reason: (error as Error).message });
      }
    });
    return { items, problems };
  }
  let rows: Record<string, string>[];
  try {
    rows = parseCsv(text, { columns: true, skip_empty_lines: true, trim: true, relax_column_count: true, bom: true });
  } catch (error) {
    throw new ValidationError(`the CSV manifest cannot be parsed: ${(error as Error).message}`);
  }
  rows.forEach((row, i) => {
    try {
      items.push(toItem(row, baseDir));
    } catch (error) {
      problems.push({ line: i + 2, reason: (error as Error).message });
    }
  });
  return { items, problems };
}

/** The manifest format from a file name, when not given. */
export function manifestFormat(location: string): 'jsonl' | 'csv' {
  if (/\.csv$/i.test(location)) return 'csv';
  if (/\.(jsonl|ndjson)$/i.test(location)) return 'jsonl';
  throw new ValidationError(`cannot tell the format of ${location}; name it .jsonl or .csv, or give the format`);
}
