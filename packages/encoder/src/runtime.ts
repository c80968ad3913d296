import * as ort from 'onnxruntime-node';
import { ModelError } from '@lookalike/core';

/** Runtime knobs shared by the image and text encoders. */
export interface EncoderRuntimeOptions {
  /** Intra-op threads of the onnxruntime session; 0 or undefined lets onnxruntime choose (one per core). */
  threads?: number;
  /** Most inputs run in one session call. */
  maxBatch?: number;
  /** How long a lone request waits for others to share its batch, in ms. */
  maxWaitMs?: number;
}

/** Defaults chosen for interactive search on a small CPU: batches of 32, at most 5 ms of added latency. */
export const DEFAULT_RUNTIME_OPTIONS: Required<EncoderRuntimeOptions> = { threads: 0, maxBatch: 32, maxWaitMs: 5 };

/**
 * Opens an onnxruntime-node CPU session for `file` and checks that it has the named input and output. Sequential
 * execution with one inter-op thread: our graphs are chains, and the batcher already runs one call at a time.
 */
export async function openSession(
  file: string,
  io: { input: string; output: string },
  threads: number | undefined,
): Promise<ort.InferenceSession> {
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(file, {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      interOpNumThreads: 1,
      ...(threads ? { intraOpNumThreads: threads } : {}),
    });
  } catch (error) {
    throw new ModelError(`onnxruntime could not load ${file}: ${(error as Error).message}`, { cause: error });
  }
  if (!session.inputNames.includes(io.input) || !session.outputNames.includes(io.output)) {
    const found = `inputs [${session.inputNames.join(', ')}], outputs [${session.outputNames.join(', ')}]`;
    await session.release();
    throw new ModelError(`${file} should have input "${io.input}" and output "${io.output}"; it has ${found}.`);
  }
  return session;
}

/**
 * Splits a flat `[n, dim]` output into one vector per row, L2-normalising each unless the graph already did.
 * Rows are copied so callers may keep them after the output buffer is reused.
 */
export function splitRows(data: Float32Array, n: number, dim: number, normalize: boolean): Float32Array[] {
  if (data.length !== n * dim) throw new ModelError(`model returned ${data.length} values, expected ${n} × ${dim}`);
  const rows: Float32Array[] = [];
  for (let r = 0; r < n; r++) {
    const row = data.slice(r * dim, (r + 1) * dim);
    if (normalize) {
      let sum = 0;
      for (let i = 0; i < dim; i++) sum += row[i]! * row[i]!;
      const scale = sum > 0 ? 1 / Math.sqrt(sum) : 0;
      for (let i = 0; i < dim; i++) row[i]! *= scale;
    }
    rows.push(row);
  }
  return rows;
}
