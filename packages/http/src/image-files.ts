import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { NotFoundError, isAppError, isUrl, type VectorStore } from '@lookalike/core';
import { readLocal, resolveInsideRoots } from '@lookalike/ingest';
import { thumbnailJpeg } from '@lookalike/imaging';

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
 * file changed on disk is never served under an old id. Thumbnails are made once by the imaging package and cached on disk;
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
    if (isUrl(source)) throw new NotFoundError('original file of image', id);
    let path: string;
    try {
      path = await resolveInsideRoots(source, this.deps.roots);
    } catch (error) {
      // Gone, or no longer inside the roots: either way there is nothing this server may serve.
      if (isAppError(error)) throw new NotFoundError('original file of image', id);
      throw error;
    }
    // Larger than an upload may be: not a file this server stored, so nothing it serves.
    const bytes = await readLocal(path, this.deps.maxBytes).then(
      (b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength),
      (error: unknown) => {
        if (isAppError(error) && error.code === 'IMAGE_TOO_MANY_BYTES') return undefined;
        throw error;
      },
    );
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
    const jpeg = await thumbnailJpeg(bytes, { side: THUMBNAIL_SIZE, quality: 82, maxPixels: this.deps.maxPixels });
    await mkdir(this.deps.thumbsDir, { recursive: true });
    // Written beside its final name and renamed, so a reader never sees half a file; a cache, so not synced.
    await writeFileAtomic(path, jpeg, { fsync: false });
    return jpeg;
  }
}
