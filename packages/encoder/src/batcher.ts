/** Options of a {@link MicroBatcher}. */
export interface MicroBatcherOptions {
  /** Most items run together in one call. */
  maxBatch: number;
  /**
   * How long the first waiting item may wait for company before its batch runs anyway, in ms. 0 still lets items
   * submitted in the same tick share a batch.
   */
  maxWaitMs: number;
}

interface Pending<In, Out> {
  items: readonly In[];
  resolve: (out: Out[]) => void;
  reject: (error: unknown) => void;
}

/**
 * Groups concurrent requests into batches for a model runtime: single requests stay fast (they wait at most
 * `maxWaitMs`), bursts fill batches of up to `maxBatch` items, and exactly one batch runs at a time so the runtime's
 * thread pool is never oversubscribed. A request larger than `maxBatch` is split across batches; results come back
 * in order. A failing batch rejects only the requests in it.
 */
export class MicroBatcher<In, Out> {
  private readonly queue: Pending<In, Out>[] = [];
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private closed = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly run: (items: In[]) => Promise<Out[]>,
    private readonly options: MicroBatcherOptions,
  ) {
    if (!Number.isInteger(options.maxBatch) || options.maxBatch < 1) {
      throw new RangeError(`maxBatch must be a positive integer, got ${options.maxBatch}`);
    }
    if (!(options.maxWaitMs >= 0)) throw new RangeError(`maxWaitMs must be ≥ 0, got ${options.maxWaitMs}`);
  }

  /** Number of items waiting (not yet running). */
  get waiting(): number {
    return this.queue.reduce((sum, p) => sum + p.items.length, 0);
  }

  /** Queues `items` and resolves with their outputs, in order. */
  submit(items: readonly In[]): Promise<Out[]> {
    if (this.closed) return Promise.reject(new Error('the batcher is closed'));
    if (items.length === 0) return Promise.resolve([]);
    if (items.length > this.options.maxBatch) {
      const parts: Promise<Out[]>[] = [];
      for (let i = 0; i < items.length; i += this.options.maxBatch) {
        parts.push(this.submit(items.slice(i, i + this.options.maxBatch)));
      }
      return Promise.all(parts).then((outs) => outs.flat());
    }
    return new Promise<Out[]>((resolve, reject) => {
      this.queue.push({ items, resolve, reject });
      this.schedule();
    });
  }

  /** Stops accepting work and resolves once everything already submitted has finished. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
      void this.drain();
    }
    if (!this.running && this.queue.length === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private schedule(): void {
    if (this.running) return;
    if (this.waiting >= this.options.maxBatch || this.closed) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      void this.drain();
    } else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.drain();
      }, this.options.maxWaitMs);
    }
  }

  private async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    while (this.queue.length > 0) {
      // Take whole requests while they fit; a request is never split here (oversized ones were split on submit).
      const batch: Pending<In, Out>[] = [];
      let size = 0;
      while (this.queue.length > 0 && size + this.queue[0]!.items.length <= this.options.maxBatch) {
        const next = this.queue.shift()!;
        batch.push(next);
        size += next.items.length;
      }
      const items = batch.flatMap((p) => p.items);
      try {
        const outputs = await this.run(items);
        if (outputs.length !== items.length) {
          throw new Error(`batch function returned ${outputs.length} outputs for ${items.length} inputs`);
        }
        let offset = 0;
        for (const p of batch) {
          p.resolve(outputs.slice(offset, offset + p.items.length));
          offset += p.items.length;
        }
      } catch (error) {
        for (const p of batch) p.reject(error);
      }
      // Let requests arriving during the run gather for a fresh wait window unless a full batch is ready.
      if (!this.closed && this.queue.length > 0 && this.waiting < this.options.maxBatch) break;
    }
    this.running = false;
    if (this.queue.length > 0) this.schedule();
    else for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}
