/**
 * Where an onnxruntime session runs. onnxruntime-node runs `session.run` on the calling thread (upstream issue
 * microsoft/onnxruntime#19611): a ViT-B/32 batch holds the event loop for about a second, and an API process would
 * answer nothing meanwhile, nor a worker renew its job locks. {@link WorkerSession} owns the session on a worker
 * thread of its own and moves tensors in and out without copying; {@link InThreadSession} runs it here (for
 * comparison, and where a thread is not wanted).
 */
import * as ort from 'onnxruntime-node';
import { Piscina } from 'piscina';
import { ModelError, ownsWholeBuffer, threadModule } from '@lookalike/core';

/** A tensor handed to or returned by a {@link ModelSession}: plain data, so it can cross to a worker thread. */
export interface TensorData {
  type: 'float32' | 'int64' | 'int32';
  data: Float32Array | BigInt64Array | Int32Array;
  dims: readonly number[];
}

/** An ONNX model: the path of its file, or its bytes (a graph built in memory, e.g. a VJP model). */
export type ModelSource = string | Uint8Array;

/** The declared shape of one model input: numbers for fixed axes, names (or -1) for symbolic ones. */
export interface InputShape {
  name: string;
  shape: readonly (number | string)[];
}

/** What {@link openModelSession} passes to `ort.InferenceSession.create`. */
export interface SessionSettings {
  /** Intra-op threads; 0 lets onnxruntime choose (one per core). */
  threads: number;
  /**
   * Whether idle intra-op threads spin waiting for work (onnxruntime's default, true). Spinning buys a little
   * latency for one stream alone and burns the cores that other sessions and the image decoders need otherwise.
   */
  spinning?: boolean;
}

/** An open onnxruntime session, wherever it runs. */
export interface ModelSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** The declared shape of each tensor input, in input order. */
  readonly inputShapes: readonly InputShape[];
  /**
   * Runs the model once and returns the named outputs. With `transfer`, the feeds' buffers move to the session's
   * thread and the caller must not use them afterwards.
   */
  run(
    feeds: Record<string, TensorData>,
    outputs: readonly string[],
    options?: { transfer?: boolean },
  ): Promise<Record<string, TensorData>>;
  /** Frees the session (and stops its thread). Calls after it reject. */
  release(): Promise<void>;
}

/** The options every session of ours is created with: sequential chains, one inter-op thread. */
export function sessionOptions(settings: SessionSettings): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    interOpNumThreads: 1,
    ...(settings.threads ? { intraOpNumThreads: settings.threads } : {}),
    ...(settings.spinning === false ? { extra: { session: { intra_op: { allow_spinning: '0' } } } } : {}),
  };
}

/** The declared shapes of `session`'s tensor inputs. */
export function inputShapesOf(session: ort.InferenceSession): InputShape[] {
  type Meta = { name: string; shape?: (number | string)[] };
  const listed: unknown = session.inputMetadata;
  const meta: readonly Meta[] = Array.isArray(listed) ? (listed as Meta[]) : [];
  return session.inputNames.map((name) => ({ name, shape: [...(meta.find((m) => m.name === name)?.shape ?? [])] }));
}

/** Opens `model` with {@link sessionOptions}. */
export function createSession(model: ModelSource, settings: SessionSettings): Promise<ort.InferenceSession> {
  // Two calls, not one: `create` is overloaded on the path and the bytes.
  return typeof model === 'string'
    ? ort.InferenceSession.create(model, sessionOptions(settings))
    : ort.InferenceSession.create(model, sessionOptions(settings));
}

/** A model's name in messages: its file, or its size for bytes. */
export function describeModel(model: ModelSource): string {
  return typeof model === 'string' ? model : `an in-memory model of ${model.byteLength} bytes`;
}

/** Runs `session` on `feeds` and copies the named outputs out as plain {@link TensorData}, disposing the rest. */
export async function runOnnx(
  session: ort.InferenceSession,
  feeds: Record<string, TensorData>,
  outputs: readonly string[],
): Promise<Record<string, TensorData>> {
  const tensors = Object.fromEntries(
    Object.entries(feeds).map(([name, t]) => [name, new ort.Tensor(t.type, t.data, [...t.dims])]),
  );
  const result = await session.run(tensors, [...outputs]);
  const out: Record<string, TensorData> = {};
  for (const [name, tensor] of Object.entries(result)) {
    if (outputs.includes(name))
      out[name] = {
        type: tensor.type as TensorData['type'],
        data: tensor.data as TensorData['data'],
        dims: [...tensor.dims],
      };
    else tensor.dispose();
  }
  return out;
}

/** A session on the calling thread. */
export class InThreadSession implements ModelSession {
  readonly inputShapes: readonly InputShape[];

  private constructor(private readonly session: ort.InferenceSession) {
    this.inputShapes = inputShapesOf(session);
  }

  static async open(model: ModelSource, settings: SessionSettings): Promise<InThreadSession> {
    return new InThreadSession(await createSession(model, settings));
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  run(feeds: Record<string, TensorData>, outputs: readonly string[]): Promise<Record<string, TensorData>> {
    return runOnnx(this.session, feeds, outputs);
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

/** A task for the session thread (`session-worker.ts`). */
export type SessionTask =
  | { kind: 'names' }
  | { kind: 'run'; feeds: Record<string, TensorData>; outputs: readonly string[] }
  | { kind: 'release' };

/** What the session thread is started with. */
export interface SessionThreadData {
  model: ModelSource;
  settings: SessionSettings;
}

/** What the session thread answers to `names`. */
export interface SessionNames {
  inputNames: string[];
  outputNames: string[];
  inputShapes: InputShape[];
}

/** The buffers of `tensors` that can move to another thread (whole, unshared ArrayBuffers, each once). */
export function transferable(tensors: Iterable<TensorData>): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const { data } of tensors) if (ownsWholeBuffer(data)) buffers.add(data.buffer);
  return [...buffers];
}

/**
 * A session that lives on a worker thread of its own (a one-thread piscina pool, which also loads the thread's
 * TypeScript source under tsx). Calls run one at a time, in order; an idle thread does not keep the process alive.
 * An onnxruntime failure rejects that call with a `ModelError`; if the thread dies, piscina starts another, which
 * opens the model again on its next call.
 */
export class WorkerSession implements ModelSession {
  private released: Promise<void> | undefined;

  private constructor(
    private readonly pool: Piscina<SessionTask, unknown>,
    readonly inputNames: readonly string[],
    readonly outputNames: readonly string[],
    readonly inputShapes: readonly InputShape[],
    private readonly file: string,
  ) {}

  /** Opens `model` on a new thread; bytes are copied to it once. */
  static async open(model: ModelSource, settings: SessionSettings): Promise<WorkerSession> {
    const pool = new Piscina<SessionTask, unknown>({
      ...threadModule(import.meta.url, 'session-worker'),
      workerData: { model, settings } satisfies SessionThreadData,
      minThreads: 1,
      maxThreads: 1,
      concurrentTasksPerWorker: 1,
      idleTimeout: Number.POSITIVE_INFINITY,
    });
    try {
      const names = (await pool.run({ kind: 'names' })) as SessionNames;
      return new WorkerSession(pool, names.inputNames, names.outputNames, names.inputShapes, describeModel(model));
    } catch (error) {
      await pool.close();
      throw error;
    }
  }

  async run(
    feeds: Record<string, TensorData>,
    outputs: readonly string[],
    options: { transfer?: boolean } = {},
  ): Promise<Record<string, TensorData>> {
    if (this.released) throw new ModelError(`the session for ${this.file} was released`);
    const task: SessionTask = { kind: 'run', feeds, outputs };
    try {
      return (await this.pool.run(task, {
        transferList: options.transfer ? transferable(Object.values(feeds)) : [],
      })) as Record<string, TensorData>;
    } catch (error) {
      throw new ModelError(`onnxruntime failed on ${this.file}: ${(error as Error).message}`, { cause: error });
    }
  }

  release(): Promise<void> {
    this.released ??= (async () => {
      try {
        await this.pool.run({ kind: 'release' });
      } finally {
        await this.pool.close();
      }
    })();
    return this.released;
  }
}

/** Opens `model` on a worker thread of its own (`worker`) or on this thread. */
export function openModelSession(
  model: ModelSource,
  settings: SessionSettings & { worker: boolean },
): Promise<ModelSession> {
  return settings.worker ? WorkerSession.open(model, settings) : InThreadSession.open(model, settings);
}
