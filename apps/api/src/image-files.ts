import { createHash, randomUUID } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NotFoundError, isAppError, type VectorStore } from '@lookalike/core';
import { resolveInsideRoots } from '@lookalike/ingest';
import sharp from 'sharp';

/** Longest side of a thumbnail, in pixels. */
export const THUMBNAIL_SIZE = 256;

/** Content types of the formats ingest accepts. */
export const CONTENT_TYPES: Record<string, string> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  gif: 'image/gif',
  tiff: 'image/tiff',
  avif: 'image/avif',
  svg: 'image/svg+xml',
};

/** What {@link ImageFiles} reads from and writes to. */
export interface ImageFilesDeps {
  store: Pick<VectorStore, 'get'>;
  /** Folders originals may be read from: the ingest roots and the uploads folder. */
  roots: readonly string[];
  /** Where thumbnails are cached, as `<id>.jpg`. */
  thumbsDir: string;
  /** Largest original read, in bytes. */
  maxBytes: number;
  /** Largest original decoded for a thumbnail, in pixels. */
  maxPixels: number;
}

/**
 * The original files of stored images and their thumbnails. Originals are read from the path the payload records,
 * only inside the allowed roots (symlinks resolved), and only when their bytes still hash to the image id, so a
 * file changed on disk is never served under an old id. Thumbnails are made once with sharp and cached on disk;
 * since ids are content hashes, a cached thumbnail never goes stale.
 */
export class ImageFiles {
  private readonly making = new Map<string, Promise<Buffer>>();

  constructor(private readonly deps: ImageFilesDeps) {}

  /**
   * The bytes and format of image `id`'s original.
   *
   * @throws NotFoundError when the image is unknown, was ingested from a URL, or its file is gone or changed
   */
  async original(id: string): Promise<{ bytes: Buffer; format: string; contentType: string }> {
    const [point] = await this.deps.store.get([id]);
    if (!point) throw new NotFoundError('image', id);
    const { source, format } = point.payload;
    if (/^https?:\/\//i.test(source)) throw new NotFoundError('original file of image', id);
    let path: string;
    try {
      path = await resolveInsideRoots(source, this.deps.roots);
    } catch (error) {
      // Gone, or no longer inside the roots: either way there is nothing this server may serve.
      if (isAppError(error)) throw new NotFoundError('original file of image', id);
      throw error;
    }
    const bytes = await readCapped(path, this.deps.maxBytes);
    if (!bytes || createHash('sha256').update(bytes).digest('hex') !== id)
      throw new NotFoundError('original file of image', id);
    return { bytes, format, contentType: CONTENT_TYPES[format] ?? 'application/octet-stream' };
  }

  /**
   * Image `id`'s JPEG thumbnail (longest side at most {@link THUMBNAIL_SIZE}), rendered on first use and then read
   * from the cache. Concurrent requests for the same id share one rendering.
   *
   * @throws NotFoundError as {@link original} does
   */
  async thumbnail(id: string): Promise<Buffer> {
    const path = join(this.deps.thumbsDir, `${id}.jpg`);
    const cached = await readFile(path).catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    });
    if (cached) return cached;
    let pending = this.making.get(id);
    if (!pending) {
      pending = this.render(id, path).finally(() => this.making.delete(id));
      this.making.set(id, pending);
    }
    return pending;
  }

  private async render(id: string, path: string): Promise<Buffer> {
    const { bytes } = await this.original(id);
    const jpeg = await sharp(bytes, { limitInputPixels: this.deps.maxPixels, failOn: 'error', pages: 1 })
      .rotate()
      .resize(THUMBNAIL_SIZE, THUMBNAIL_SIZE, { fit: 'inside', withoutEnlargement: true })
      .flatten({ background: '#ffffff' })
      .jpeg({ quality: 82 })
      .toBuffer();
    await mkdir(this.deps.thumbsDir, { recursive: true });
    // Written beside its final name and renamed, so a reader never sees half a file.
    const tmp = `${path}.${randomUUID()}.tmp`;
    try {
      await writeFile(tmp, jpeg, { flag: 'wx' });
      await rename(tmp, path);
    } catch (error) {
      await rm(tmp, { force: true });
      throw error;
    }
    return jpeg;
  }
}

/** The file's bytes, or `undefined` when it is larger than `maxBytes`. */
async function readCapped(path: string, maxBytes: number): Promise<Buffer | undefined> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    if (size > maxBytes) return undefined;
    const buf = Buffer.alloc(size);
    await handle.read(buf, 0, size, 0);
    return buf;
  } finally {
    await handle.close();
  }
}
