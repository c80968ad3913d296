import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MicroBatcher } from './batcher.js';

const double = (calls: number[][]) => (items: number[]) => {
  calls.push([...items]);
  return new Promise<number[]>((resolve) => setImmediate(() => resolve(items.map((x) => x * 2))));
};

describe(MicroBatcher.name, () => {
  it('merges concurrent small requests into one batch and returns each its own results', async () => {
    const calls: number[][] = [];
    const batcher = new MicroBatcher(double(calls), { maxBatch: 8, maxWaitMs: 5 });
    const [a, b, c] = await Promise.all([batcher.submit([1]), batcher.submit([2, 3]), batcher.submit([4])]);
    expect([a, b, c]).toEqual([[2], [4, 6], [8]]);
    expect(calls).toEqual([[1, 2, 3, 4]]);
  });

  it('never runs more than maxBatch items at once and splits oversized requests in order', async () => {
    const calls: number[][] = [];
    const batcher = new MicroBatcher(double(calls), { maxBatch: 3, maxWaitMs: 1 });
    const out = await batcher.submit([1, 2, 3, 4, 5, 6, 7]);
    expect(out).toEqual([2, 4, 6, 8, 10, 12, 14]);
    expect(Math.max(...calls.map((c) => c.length))).toBeLessThanOrEqual(3);
    expect(calls.flat()).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it('runs one batch at a time', async () => {
    let active = 0;
    let maxActive = 0;
    const batcher = new MicroBatcher(
      async (items: number[]) => {
        active++;
        maxActive = Math.max(maxActive, active);
        await new Promise((r) => setTimeout(r, 2));
        active--;
        return items;
      },
      { maxBatch: 2, maxWaitMs: 0 },
    );
    await Promise.all(Array.from({ length: 10 }, (_, i) => batcher.submit([i])));
    expect(maxActive).toBe(1);
  });

  it('rejects only the requests of a failing batch', async () => {
    const batcher = new MicroBatcher(
      (items: number[]) => (items.includes(13) ? Promise.reject(new Error('bad 13')) : Promise.resolve(items)),
      { maxBatch: 1, maxWaitMs: 0 },
    );
    const results = await Promise.allSettled([batcher.submit([1]), batcher.submit([13]), batcher.submit([2])]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
  });

  it('finishes submitted work on close and refuses new work afterwards', async () => {
    const calls: number[][] = [];
    const batcher = new MicroBatcher(double(calls), { maxBatch: 4, maxWaitMs: 10_000 });
    const pending = batcher.submit([5]);
    await batcher.close();
    await expect(pending).resolves.toEqual([10]);
    await expect(batcher.submit([1])).rejects.toThrow(/closed/);
  });

  it('returns every output to its own request for any mix of request sizes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(fc.integer(), { maxLength: 9 }), { maxLength: 12 }),
        fc.integer({ min: 1, max: 5 }),
        async (requests, maxBatch) => {
          const calls: number[][] = [];
          const batcher = new MicroBatcher(double(calls), { maxBatch, maxWaitMs: 0 });
          const outs = await Promise.all(requests.map((r) => batcher.submit(r)));
          expect(outs).toEqual(requests.map((r) => r.map((x) => x * 2)));
          expect(calls.every((c) => c.length <= maxBatch)).toBe(true);
        },
      ),
      { numRuns: 50 },
    );
  });
});
