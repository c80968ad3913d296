import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

/**
 * True when `view` spans the whole of a plain (not shared) ArrayBuffer, so that handing its buffer to another thread
 * moves exactly its data; anything else (Node's pooled slabs, subarrays) must be copied instead.
 */
export function ownsWholeBuffer<T extends ArrayBufferView>(view: T): view is T & { buffer: ArrayBuffer } {
  return view.buffer instanceof ArrayBuffer && view.byteOffset === 0 && view.byteLength === view.buffer.byteLength;
}

/** How to start a worker thread on one of a package's own modules (see {@link threadModule}). */
export interface ThreadModule {
  /** The module's URL, for `new Worker(...)` or piscina's `filename`. */
  filename: string;
  /** Flags the thread needs to load it; absent for built code. */
  execArgv?: string[];
}

/**
 * The worker-thread module `name` that lies beside the calling module (`from`, its `import.meta.url`). Built code
 * runs `name.js` from `dist/`; under vitest or tsx the caller is a `.ts` source, and the thread needs tsx's loader and
 * the `source` export condition to run `name.ts` and the workspace packages' sources (a parent's own loader flags are
 * not inherited: some are refused in worker threads).
 */
export function threadModule(from: string, name: string): ThreadModule {
  const fromSource = from.endsWith('.ts');
  const filename = new URL(`./${name}.${fromSource ? 'ts' : 'js'}`, from).href;
  if (!fromSource) return { filename };
  const tsx = pathToFileURL(createRequire(from).resolve('tsx')).href;
  return { filename, execArgv: ['--import', tsx, '--conditions=source'] };
}
