import type { JobRunner } from '@lookalike/queue';
import type { RequestHandler } from 'express';
import { Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The API's Prometheus metrics, in a registry of its own (one per app, so tests can build many apps). */
export interface ApiMetrics {
  registry: Registry;
  /** Observes every response by route pattern, method and status. */
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  /** Query embedding time: uploaded images and texts. */
  embedDuration: Histogram<'encoder' | 'query'>;
  /** Vector store search time. */
  searchDuration: Histogram<'encoder'>;
  /** Middleware that times each request into {@link httpDuration}. */
  middleware: RequestHandler;
}

const LATENCY_BUCKETS = [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * Builds the metrics. Queue depths are read from `runner.counts()` when Prometheus scrapes, so they are never
 * stale and cost nothing between scrapes.
 */
export function createMetrics(runner: Pick<JobRunner, 'counts'>): ApiMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by route pattern, method and status.',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const embedDuration = new Histogram({
    name: 'lookalike_embed_duration_seconds',
    help: 'Time to decode, preprocess and embed a search query, by tower and query kind (image, text).',
    labelNames: ['encoder', 'query'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const searchDuration = new Histogram({
    name: 'lookalike_search_duration_seconds',
    help: 'Vector store nearest-neighbour search time, by tower.',
    labelNames: ['encoder'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  new Gauge({
    name: 'lookalike_queue_jobs',
    help: 'Jobs per queue and state, read from the job runner at scrape time.',
    labelNames: ['queue', 'state'] as const,
    registers: [registry],
    async collect() {
      const counts = await runner.counts();
      this.reset();
      for (const [queue, states] of Object.entries(counts))
        for (const [state, n] of Object.entries(states)) this.set({ queue, state }, n);
    },
  });

  const middleware: RequestHandler = (req, res, next) => {
    const end = httpDuration.startTimer();
    res.on('finish', () => {
      // The route pattern, never the raw path, so ids do not explode the label set.
      const route = (req.route as { path?: unknown } | undefined)?.path;
      end({
        method: req.method,
        route: typeof route === 'string' ? route : res.statusCode === 404 ? 'unmatched' : 'static',
        status: String(res.statusCode),
      });
    });
    next();
  };
  return { registry, httpDuration, embedDuration, searchDuration, middleware };
}
