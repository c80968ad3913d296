/**
 * The thread half of {@link WorkerSession}: a piscina task handler that opens one onnxruntime session (on the first
 * task of this thread) and runs it, moving the outputs back without copying. Loaded from `dist/` (built apps) or
 * from this source through tsx (tests and benchmarks).
 */
import { workerData } from 'node:worker_threads';
import type * as ort from 'onnxruntime-node';
import { move, transferableSymbol, valueSymbol } from 'piscina';
import {
  createSession,
  inputShapesOf,
  runOnnx,
  transferable,
  type SessionNames,
  type SessionTask,
  type SessionThreadData,
  type TensorData,
} from './session.js';

let session: Promise<ort.InferenceSession> | undefined;

function open(): Promise<ort.InferenceSession> {
  const { model, settings } = workerData as SessionThreadData;
  session ??= createSession(model, settings);
  // A failed open is not kept: the error goes to this task, and the next one tries again.
  session.catch(() => (session = undefined));
  return session;
}

/** Hands the output buffers to the owning thread instead of copying them. */
class Transfer {
  constructor(private readonly outputs: Record<string, TensorData>) {}

  get [transferableSymbol](): ArrayBuffer[] {
    return transferable(Object.values(this.outputs));
  }

  get [valueSymbol](): Record<string, TensorData> {
    return this.outputs;
  }
}

export default async function handle(task: SessionTask): Promise<unknown> {
  if (task.kind === 'release') {
    const open = session;
    session = undefined;
    if (open) await (await open).release();
    return null;
  }
  const s = await open();
  if (task.kind === 'names')
    return {
      inputNames: [...s.inputNames],
      outputNames: [...s.outputNames],
      inputShapes: inputShapesOf(s),
    } satisfies SessionNames;
  return move(new Transfer(await runOnnx(s, task.feeds, task.outputs)));
}
