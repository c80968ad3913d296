/**
 * Where ingest decodes and preprocesses images. On the exact path resizing a 1024 × 768 photo to a model input is
 * tens of milliseconds of JavaScript (a 4000 × 3000 one, hundreds); on the fast path (the default) libvips shrinks
 * it while decoding in a few milliseconds, still CPU that the main thread must not spend: it would starve BullMQ's
 * lock renewal and the API's requests. {@link PreprocessPool} runs decode, resize and pixel conversion on worker
 * threads and transfers the pixels back. {@link MainThreadPreparer} does the same work in this thread, for
 * comparison.
 */
import { availableParallelism } from 'node:os';
import {
  isAppError,
  ownsWholeBuffer,
  threadModule,
  type ErrorCode,
  type PreprocessMode,
  type PreprocessSpec,
} from '@lookalike/core';
import { decodeImage, type DecodeLimits, type DecodedImage, type ImageFormat } from './decode.js';
import { fastResize, toPixels } from './preprocess.js';
import { Piscina } from 'piscina';

/** What decides the pixels of one image for one model: the side of the square input and the resampling filter. */
export type PixelSpec = Pick<PreprocessSpec, 'size' | 'interpolation'>;

/** One decoded and preprocessed image: the facts stored in its payload and its pixels for each requested spec. */
export interface PreparedImage {
  format: ImageFormat;
  /** Upright width in pixels (EXIF orientation applied). */
  width: number;
  /** Upright height in pixels. */
  height: number;
  /** One `[3, S, S]` float32 array in [0, 1] per requested spec, in the order of the specs. */
  pixels: Float32Array[];
}

/** An image that was refused or could not be decoded, with its typed code (`IMAGE_TRUNCATED`, …). */
export interface PrepareFailure {
  code: ErrorCode;
  reason: string;
  /** The error's structured details (the limit, the declared size, …), when it had any. */
  details?: Record<string, unknown>;
}

export type PrepareOutcome = PreparedImage | PrepareFailure;

/** The message a pool thread receives: a slice of a chunk. */
export interface PrepareTask {
  images: Uint8Array[];
  specs: PixelSpec[];
  limits: DecodeLimits | undefined;
  mode: PreprocessMode;
}

/** True when the outcome is a refused image. */
export function isPrepareFailure(outcome: PrepareOutcome): outcome is PrepareFailure {
  return 'code' in outcome;
}

/**
 * Decodes untrusted image bytes and preprocesses them. Refused images resolve to a {@link PrepareFailure}; only
 * unexpected faults reject.
 */
export interface ImagePreparer {
  /**
   * Decodes each of `images` (see `decodeImage` for what is refused) and writes its pixels once per spec; outcomes
   * come back in the order of `images`. The bytes may be handed to another thread: the caller must not use them
   * afterwards. `mode` (default `fast`) says how the resize is done (see `PreprocessMode`).
   */
  prepare(
    images: readonly Uint8Array[],
    specs: readonly PixelSpec[],
    limits?: DecodeLimits,
    mode?: PreprocessMode,
  ): Promise<PrepareOutcome[]>;
  /** Waits for running work and releases the threads, if any. */
  close(): Promise<void>;
}

/** The image's size once EXIF orientation is applied, whatever size it was decoded at. */
function uprightSize(image: DecodedImage): { width: number; height: number } {
  const swaps = image.orientation !== undefined && image.orientation >= 5 && image.orientation <= 8;
  return swaps
    ? { width: image.originalHeight, height: image.originalWidth }
    : { width: image.originalWidth, height: image.originalHeight };
}

/**
 * Decodes and preprocesses one image on the calling thread. `exact` decodes once at full size for every spec;
 * `fast` (the default) decodes once per spec, each time resized by libvips on the way (a second decode of a
 * shrunk JPEG costs less than one full-size resize).
 */
export async function prepareImage(
  bytes: Uint8Array,
  specs: readonly PixelSpec[],
  limits?: DecodeLimits,
  mode: PreprocessMode = 'fast',
): Promise<PrepareOutcome> {
  try {
    if (mode === 'exact' || specs.length === 0) {
      const image = await decodeImage(bytes, limits);
      const pixels = specs.map((spec) => toPixels(image, spec));
      return { format: image.format, ...uprightSize(image), pixels };
    }
    const pixels: Float32Array[] = [];
    let image: DecodedImage | undefined;
    for (const spec of specs) {
      image = await decodeImage(bytes, limits, fastResize(spec));
      pixels.push(toPixels(image, spec));
    }
    return { format: image!.format, ...uprightSize(image!), pixels };
  } catch (error) {
    if (isAppError(error))
      return { code: error.code, reason: error.message, ...(error.details ? { details: error.details } : {}) };
    throw error;
  }
}

/**
 * Decode and preprocessing on the calling thread, as ingest did before the pool: sharp decodes every image of the
 * call at once (off the thread) and each resize then runs here. Kept for comparison and tests.
 */
export class MainThreadPreparer implements ImagePreparer {
  prepare(
    images: readonly Uint8Array[],
    specs: readonly PixelSpec[],
    limits?: DecodeLimits,
    mode?: PreprocessMode,
  ): Promise<PrepareOutcome[]> {
    return Promise.all(images.map((bytes) => prepareImage(bytes, specs, limits, mode)));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Options of {@link PreprocessPool}. */
export interface PreprocessPoolOptions {
  /** Worker threads. Default: {@link defaultPreprocessThreads}. */
  threads?: number;
}

/**
 * The default size of a {@link PreprocessPool} (PREPROCESS_THREADS=0): a quarter of the cores, at least one. On the
 * fast path a 1024 × 768 JPEG costs about 5 ms of one core, about as much as the tiny towers' 7 ms for both and a
 * twentieth of ViT-B/32's; a quarter of the cores keeps either fed while the towers get theirs (`imageTowerThreads`:
 * half the cores per tower, two towers). 2 cores: 1 thread (measured: a second one changed nothing, the cores
 * were already full); 8 cores: 2; 32 cores: 8. Idle threads cost memory (a V8 isolate each), not CPU.
 */
export function defaultPreprocessThreads(cores = availableParallelism()): number {
  return Math.max(1, Math.floor(cores / 4));
}

/**
 * A pool of worker threads (piscina) that decode and preprocess images. A call is split into one slice per thread
 * and every slice is handed over at once, so the threads keep working while this thread embeds the previous chunk;
 * within a slice a thread resizes one image while sharp decodes the next. Bytes move to the threads when they own their buffer and the pixels move back, so nothing large is
 * copied. The threads start with the pool and live until {@link PreprocessPool.close}; while idle they are unref'd, so
 * an unclosed pool never keeps a process alive.
 */
export class PreprocessPool implements ImagePreparer {
  /** Number of worker threads. */
  readonly threads: number;
  private readonly pool: Piscina<PrepareTask, PrepareOutcome[]>;

  constructor(options: PreprocessPoolOptions = {}) {
    const threads = options.threads ?? defaultPreprocessThreads();
    if (!Number.isInteger(threads) || threads < 1)
      throw new RangeError(`a preprocessing pool needs a whole number of threads ≥ 1, not ${threads}`);
    this.threads = threads;
    this.pool = new Piscina<PrepareTask, PrepareOutcome[]>({
      ...threadModule(import.meta.url, 'preprocess-worker'),
      name: 'default',
      minThreads: threads,
      maxThreads: threads,
      // A second slice waits in the thread rather than in this thread's queue, which only moves between model runs.
      concurrentTasksPerWorker: 2,
      // Some object, never `undefined`: geotiff's `web-worker` dependency takes over any thread whose workerData is
      // undefined when it is imported (the deep-TIFF route in ./tiff.ts), which would kill this pool's threads.
      workerData: {},
    });
  }

  async prepare(
    images: readonly Uint8Array[],
    specs: readonly PixelSpec[],
    limits?: DecodeLimits,
    mode: PreprocessMode = 'fast',
  ): Promise<PrepareOutcome[]> {
    const plain = specs.map(({ size, interpolation }) => ({ size, interpolation }));
    // A buffer listed twice may be sent to two threads, so only buffers listed once move.
    const uses = new Map<ArrayBufferLike, number>();
    for (const b of images) uses.set(b.buffer, (uses.get(b.buffer) ?? 0) + 1);
    const per = Math.ceil(images.length / this.threads);
    const slices: Promise<PrepareOutcome[]>[] = [];
    for (let i = 0; i < images.length; i += per) {
      const slice = images.slice(i, i + per);
      const transferList = slice.filter(ownsWholeBuffer).flatMap((b) => (uses.get(b.buffer) === 1 ? [b.buffer] : []));
      slices.push(this.pool.run({ images: slice, specs: plain, limits, mode }, { transferList }));
    }
    return (await Promise.all(slices)).flat();
  }

  /** Lets queued and running images finish, then stops the threads. */
  async close(): Promise<void> {
    await this.pool.close();
  }
}
