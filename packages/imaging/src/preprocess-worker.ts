/**
 * The worker-thread half of {@link PreprocessPool}: decodes a slice of a chunk and writes each image's `[3, S, S]`
 * pixels for every requested preprocessing, so that neither the resize nor the pixel conversion runs on the main
 * thread. piscina loads this module from `dist/` (built apps) or from this source file through tsx (tests and
 * benchmarks).
 */
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { isPrepareFailure, prepareImage, type PrepareOutcome, type PrepareTask } from './preprocess-pool.js';

/** Images of a slice in flight at once: one resizing on this thread while sharp decodes the next. */
const LANES = 2;

/** Hands the pixel buffers to the main thread instead of copying them. */
class Transfer {
  constructor(private readonly outcomes: PrepareOutcome[]) {}

  get [transferableSymbol](): ArrayBufferLike[] {
    return this.outcomes.flatMap((o) => (isPrepareFailure(o) ? [] : o.pixels.map((p) => p.buffer)));
  }

  get [valueSymbol](): PrepareOutcome[] {
    return this.outcomes;
  }
}

/**
 * Decodes and preprocesses every image of `task`, in order. A refused or broken image is an outcome with its typed
 * code; anything else (a bug, no memory) rejects the task so that the batch fails and its job retries.
 */
export default async function prepareSlice(task: PrepareTask): Promise<PrepareOutcome[]> {
  const outcomes: PrepareOutcome[] = new Array<PrepareOutcome>(task.images.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < task.images.length) {
      const i = next++;
      outcomes[i] = await prepareImage(task.images[i]!, task.specs, task.limits, task.mode);
    }
  };
  await Promise.all(Array.from({ length: LANES }, lane));
  return move(new Transfer(outcomes)) as unknown as PrepareOutcome[];
}
