import { z } from 'zod';
import { dependencyChecks, runReadiness, type ReadinessCheck } from '@lookalike/services';
import type { RouteContext } from '../context.js';
import { healthSchema, readinessSchema } from '../schemas.js';

/**
 * `/healthz`, `/readyz`, `/metrics` and `/openapi.json`: unthrottled, outside `/v1`, and public but for `/metrics`,
 * which needs a read key where read keys are configured (it tells the runtime, memory and traffic per route).
 */
export function systemRoutes({ routes, deps, metrics, access }: RouteContext): void {
  const checks: ReadinessCheck[] = [...dependencyChecks(deps), ...(deps.readiness ?? [])];

  routes.add(
    {
      method: 'get',
      path: '/healthz',
      access: 'public',
      summary: 'Liveness: the process is up (touches no dependency).',
      tags: ['operations'],
      responses: { 200: { description: 'Up.', content: { 'application/json': { schema: healthSchema } } } },
    },
    (_req, res) => {
      res.json({ status: 'ok' });
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/readyz',
      access: 'public',
      summary: 'Readiness: the store, the queue (Redis when used) and the models can serve.',
      tags: ['operations'],
      responses: {
        200: { description: 'Ready.', content: { 'application/json': { schema: readinessSchema } } },
        503: {
          description: 'Not ready; the failing checks say why.',
          content: { 'application/json': { schema: readinessSchema } },
        },
      },
    },
    async (_req, res) => {
      const { ready, checks: results } = await runReadiness(checks);
      res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', checks: results });
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/metrics',
      access: 'read',
      summary: 'Prometheus metrics: request, embedding and search latency histograms, queue depths.',
      description:
        'Needs a read (or write) key when read keys are configured, like every read route; scrape it with ' +
        '`authorization: { credentials: <key> }`.',
      tags: ['operations'],
      responses: { 200: { description: 'Prometheus text format.', content: { 'text/plain': { schema: z.string() } } } },
    },
    access('read'),
    async (_req, res) => {
      const body = await metrics.registry.metrics();
      res.type(metrics.registry.contentType).send(body);
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/openapi.json',
      access: 'public',
      summary: 'This document: OpenAPI 3.1, generated from the schemas that validate the requests.',
      tags: ['operations'],
      responses: {
        200: {
          description: 'The OpenAPI document.',
          content: { 'application/json': { schema: z.record(z.string(), z.unknown()) } },
        },
      },
    },
    (_req, res) => {
      res.json(routes.openApi());
    },
  );
}
