/**
 * Where bulk ingest finds images: a directory (recursive, glob include/exclude), a JSONL or CSV manifest, or a
 * list of items. Local paths must resolve, symlinks followed, inside one of the configured roots.
 */
import { realpath } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { parse as parseCsv } from 'csv-parse';
import { glob } from 'tinyglobby';
import { ValidationError, formatIssues, isUrl } from '@lookalike/core';
import { ingestItemSchema, type IngestItem } from '@lookalike/queue';

/** Image file extensions a directory listing picks up by default. */
export const DEFAULT_INCLUDE = ['**/*.{jpg,jpeg,png,webp,gif,tif,tiff,avif,JPG,JPEG,PNG,WEBP,GIF,TIF,TIFF,AVIF}'];

/** `path` lies in `dir` (or is it): no `..` step and no other root between them. */
function isWithin(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

/** Options of {@link resolveInsideRoots}. */
export interface ResolveOptions {
  /** How messages name the path, e.g. the path as a client sent it; default "the file". */
  label?: string;
}

/**
 * The real path of `path` if it lies inside one of `roots` (after resolving symlinks), else a `ValidationError`:
 * `../` tricks and links out of the roots are refused. A path outside the roots gets one message whether or not
 * it exists, and is refused before anything is read from it; only a path inside the roots can be told missing.
 * Messages name neither the resolved path nor the roots (a client must not learn the server's layout).
 */
export async function resolveInsideRoots(
  path: string,
  roots: readonly string[],
  options: ResolveOptions = {},
): Promise<string> {
  const label = options.label ?? 'the file';
  const outside = () =>
    new ValidationError(
      `${label} is outside the folders ingest may read; give a path under one of them (the operator sets them ` +
        'in INGEST_ROOTS)',
    );
  const target = resolve(path);
  const realRoots = (await Promise.all(roots.map((root) => realpath(resolve(root)).catch(() => undefined)))).filter(
    (root): root is string => root !== undefined,
  );
  // Lexically outside every root (as given, or as the roots really are): refused without touching the path.
  if (!roots.some((root) => isWithin(resolve(root), target)) && !realRoots.some((root) => isWithin(root, target)))
    throw outside();
  let real: string;
  try {
    real = await realpath(target);
  } catch {
    // Missing, but through a link out of the roots it would be outside: say so, as for a file that exists there.
    if (!(await realRootsHold(dirname(target), realRoots))) throw outside();
    throw new ValidationError(`${label} does not exist or cannot be read`);
  }
  if (realRoots.some((root) => isWithin(root, real))) return real;
  throw outside();
}

/** The nearest existing folder of `dir` (itself or an ancestor) really lies inside one of `realRoots`. */
async function realRootsHold(dir: string, realRoots: readonly string[]): Promise<boolean> {
  for (let at = dir; ; at = dirname(at)) {
    const real = await realpath(at).catch(() => undefined);
    if (real !== undefined) return realRoots.some((root) => isWithin(root, real));
    if (dirname(at) === at) return false;
  }
}

/**
 * Refuses a glob pattern that could match outside the folder it is applied to, before anything is listed: an
 * absolute pattern, or one with a `..` step anywhere (also escaped as `\.\.`, or inside braces and extglobs).
 *
 * @throws ValidationError naming the pattern
 */
export function assertPatternConfined(pattern: string): void {
  // Backslashes only escape in globs; without them `\.\./` is `../`.
  const bare = pattern.replace(/\\/g, '');
  const absolute = bare.startsWith('/') || /^[A-Za-z]:/.test(bare);
  const parentStep = bare.split(/[/{},()|]/).some((part) => part.replace(/^[!@+*?]/, '') === '..');
  if (absolute || parentStep)
    throw new ValidationError(
      `the include pattern ${JSON.stringify(pattern)} reaches outside the folder; patterns are relative to it and ` +
        'may not start with / or contain ..',
      [{ path: 'include', message: 'must stay inside the folder' }],
    );
}

/**
 * Files under `root` matching `include` and not `exclude`, sorted, as ingest items with absolute locations. Include
 * patterns that leave the root are refused before the walk ({@link assertPatternConfined}); symbolic links are not
 * followed, and every file listed is checked to lie inside the root once more, as its real path, so a listing never
 * leaves the root: a file that does not is left out.
 *
 * @throws ValidationError for a pattern that leaves the root
 */
export async function listDirectory(
  root: string,
  options: { include?: readonly string[]; exclude?: readonly string[] } = {},
): Promise<IngestItem[]> {
  const include = [...(options.include ?? DEFAULT_INCLUDE)];
  for (const pattern of include) assertPatternConfined(pattern);
  const base = await realpath(resolve(root));
  const files = await glob(include, {
    cwd: base,
    ignore: [...(options.exclude ?? [])],
    onlyFiles: true,
    followSymbolicLinks: false,
    dot: false,
    expandDirectories: false,
  });
  const locations = files.map((f) => resolve(base, f));
  const escaped = locations.find((location) => !isWithin(base, location));
  if (escaped !== undefined)
    throw new ValidationError('an include pattern matched files outside the folder; make the patterns relative to it');
  const inside: string[] = [];
  for (let i = 0; i < locations.length; i += REALPATH_CHUNK) {
    const chunk = locations.slice(i, i + REALPATH_CHUNK);
    const reals = await Promise.all(chunk.map((location) => realpath(location).catch(() => undefined)));
    chunk.forEach((location, k) => {
      if (reals[k] !== undefined && isWithin(base, reals[k])) inside.push(location);
    });
  }
  return inside.sort().map((location) => ({ location }));
}

/** Real paths resolved at once while checking a listing. */
const REALPATH_CHUNK = 256;

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
  const location = isUrl(loc) ? loc : resolve(baseDir, loc);
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
  if (!parsed.success) throw new Error(formatIssues(parsed.error.issues));
  return parsed.data;
}

/** Line `line`'s entry: the item of the record `raw` gives, or the reason `raw` or the item failed. */
function entryOf(line: number, baseDir: string, raw: () => Record<string, unknown>): ManifestEntry {
  try {
    return { item: toItem(raw(), baseDir) };
  } catch (error) {
    return { problem: { line, reason: (error as Error).message } };
  }
}

/** A manifest line read: the item it names, or why it could not be used. */
export type ManifestEntry = { item: IngestItem } | { problem: ManifestProblem };

const CSV_OPTIONS = { columns: true, skip_empty_lines: true, trim: true, relax_column_count: true, bom: true };

/**
 * Reads a JSONL or CSV manifest as it streams in, one entry per line in the file's order, so a catalog of millions of
 * lines is never held in memory (relative paths resolve against `baseDir`). Bad lines become problems, never fatal:
 * one malformed row must not lose the rest of the catalog. A CSV that cannot be parsed at all (an unclosed quote)
 * throws a `ValidationError` with its parser's reason where it stops.
 */
export async function* readManifest(
  input: Readable,
  format: 'jsonl' | 'csv',
  baseDir: string,
): AsyncGenerator<ManifestEntry> {
  if (format === 'jsonl') {
    let line = 0;
    for await (const text of createInterface({ input, crlfDelay: Infinity })) {
      line++;
      if (!text.trim()) continue;
      yield entryOf(line, baseDir, () => {
        const raw = JSON.parse(text) as unknown;
        if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new Error('not a JSON object');
        return raw as Record<string, unknown>;
      });
    }
    return;
  }
  const parser = parseCsv(CSV_OPTIONS);
  // pipe() does not pass on the source's errors; the parser's iterator must end with them.
  input.on('error', (error) => parser.destroy(error));
  input.pipe(parser);
  const rows = parser[Symbol.asyncIterator]() as AsyncIterator<Record<string, string>>;
  // Line 1 is the header; a row's line counts rows, as spreadsheets do.
  for (let line = 2; ; line++) {
    let next: IteratorResult<Record<string, string>>;
    try {
      next = await rows.next();
    } catch (error) {
      if ((error as { code?: unknown }).code?.toString().startsWith('CSV_'))
        throw new ValidationError(`the CSV manifest cannot be parsed: ${(error as Error).message}`);
      throw error;
    }
    if (next.done) return;
    const row = next.value;
    yield entryOf(line, baseDir, () => row);
  }
}

/** The manifest format from a file name, when not given. */
export function manifestFormat(location: string): 'jsonl' | 'csv' {
  if (/\.csv$/i.test(location)) return 'csv';
  if (/\.(jsonl|ndjson)$/i.test(location)) return 'jsonl';
  throw new ValidationError(`cannot tell the format of ${location}; name it .jsonl or .csv, or give the format`);
}
