/**
 * Reading an image's original bytes from where ingest found it: a local path inside the allowed roots (symlinks
 * resolved) or an http(s) URL under the SSRF rules. Ingest and re-index read through this one function, so a
 * re-index can read exactly what an ingest could, and nothing more.
 */
import { open } from 'node:fs/promises';
import { AppError, isUrl } from '@lookalike/core';
import { fetchImage, type FetchLimits } from './fetch-url.js';
import { resolveInsideRoots } from './sources.js';

/** What an original may be read from, and how large it may be. */
export interface OriginalLimits {
  /** Folders local paths must lie in. */
  roots: readonly string[];
  fetch: FetchLimits;
  /** Largest original in bytes; default 25 MiB. */
  maxBytes?: number;
}

/** Default largest original, when the decode limits give none. */
export const DEFAULT_MAX_ORIGINAL_BYTES = 25 * 1024 * 1024;

/** The bytes of a local file, refused before reading when it is larger than `maxBytes`. */
export async function readLocal(path: string, maxBytes: number): Promise<Uint8Array> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    if (size > maxBytes)
      throw new AppError('IMAGE_TOO_MANY_BYTES', `the file is ${size} bytes; the limit is ${maxBytes}`, {
        details: { size },
      });
    const buf = Buffer.alloc(size);
    await handle.read(buf, 0, size, 0);
    return new Uint8Array(buf.buffer, buf.byteOffset, size);
  } finally {
    await handle.close();
  }
}

/**
 * The original bytes at `location`. Throws what ingest reports: `ValidationError` for a path outside the roots (or
 * missing inside them) and for a refused URL, `AppError`s for limits and HTTP answers, system errors for the rest.
 */
export async function readOriginal(location: string, limits: OriginalLimits): Promise<Uint8Array> {
  const maxBytes = limits.maxBytes ?? DEFAULT_MAX_ORIGINAL_BYTES;
  return isUrl(location)
    ? fetchImage(location, { ...limits.fetch, maxBytes: Math.min(limits.fetch.maxBytes, maxBytes) })
    : readLocal(await resolveInsideRoots(location, limits.roots), maxBytes);
}
