/**
 * What the benchmarks share: rounding and sizes for the reports, latency percentiles, a peak-RSS sampler, a real
 * HTTP listener for an app, autocannon on its own thread, and a closed-loop driver for in-process calls.
 */
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import autocannon from 'autocannon';

export const mib = (bytes: number) => Math.round(bytes / 2 ** 20);
export const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;
export const mean = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;

/** The nearest-rank `p`-th percentile of ascending `sorted` (NaN when empty). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** p50, p99 and max of latencies in ms, rounded to `digits`. */
export function latencySummary(ms: readonly number[], digits = 2) {
  const sorted = [...ms].sort((a, b) => a - b);
  return {
    p50: round(percentile(sorted, 50), digits),
    p99: round(percentile(sorted, 99), digits),
    max: round(sorted.at(-1) ?? NaN, digits),
  };
}

/** Samples this process's RSS every 50 ms: the peak since the start or the last `reset`. */
export function rssSampler() {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
  timer.unref();
  return {
    peak: () => Math.max(peak, process.memoryUsage().rss),
    reset: () => void (peak = process.memoryUsage().rss),
    stop: () => clearInterval(timer),
  };
}

/** `app` listening on a free port of 127.0.0.1. */
export async function listen(
  app: RequestListener,
): Promise<{ server: Server; url: string; close: () => Promise<void> }> {
  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    server,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** autocannon on its own worker thread, so that the client does not share the server's event loop. */
export async function cannon(url: string, requests: autocannon.Request[], connections: number, duration: number) {
  const result = await autocannon({ url, connections, duration, workers: 1, timeout: 10, requests });
  return {
    reqPerSec: round(result.requests.average, 1),
    p50: result.latency.p50,
    p99: result.latency.p99,
    requests: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
  };
}

/** `concurrency` callers in a closed loop for `seconds`: throughput and latency percentiles. */
export async function closedLoop(fn: (i: number) => Promise<unknown>, concurrency: number, seconds: number) {
  const latencies: number[] = [];
  const started = performance.now();
  const end = started + seconds * 1000;
  let i = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        await fn(i++);
        latencies.push(performance.now() - t);
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  return { reqPerSec: round(latencies.length / elapsed, 1), ...latencySummary(latencies) };
}
