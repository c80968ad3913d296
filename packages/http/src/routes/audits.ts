import { randomUUID } from 'node:crypto';
import { auditIdFor } from '@lookalike/audit';
import { AppError, NotFoundError, type AuditRepository } from '@lookalike/core';
import { auditOptionsSchema } from '@lookalike/queue';
import { z } from 'zod';
import type { RouteContext } from '../context.js';
import { errorResponse } from '../openapi.js';
import {
  auditAcceptedSchema,
  auditIdParamsSchema,
  auditListQuerySchema,
  auditListSchema,
  auditRequestSchema,
  auditSchema,
  parse,
} from '../schemas.js';

// The report is self-contained HTML made on this server: inline styles and SVG charts, no scripts, no fetches.
const REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox";

const unavailable = errorResponse('This server has no audit store configured.');

/** `POST /v1/audits`, `GET /v1/audits`, `GET /v1/audits/:id` and `GET /v1/audits/:id/report`. */
export function auditRoutes({ routes, deps, access }: RouteContext): void {
  const audits = (): AuditRepository => {
    if (!deps.audits)
      throw new AppError('AUDITS_UNAVAILABLE', 'Audits are not available: this server has no audit store configured.');
    return deps.audits;
  };

  routes.add(
    {
      method: 'post',
      path: '/v1/audits',
      access: 'write',
      summary: 'Start a robustness audit now (the nightly one runs on AUDIT_CRON).',
      description:
        'Queues the same run → batches → report flow as the nightly scheduler. The audit is listed once its report ' +
        'is stored; `GET /v1/jobs/{finalJobId}` says where it stands.',
      tags: ['audits'],
      request: { body: { required: false, content: { 'application/json': { schema: auditRequestSchema } } } },
      responses: {
        202: { description: 'The audit is queued.', content: { 'application/json': { schema: auditAcceptedSchema } } },
        503: errorResponse('No audit store, or the queue cannot take jobs now.'),
      },
    },
    access('write'),
    async (req, res) => {
      audits();
      const body = parse(auditRequestSchema, req.body ?? {}, 'audit options');
      const options = auditOptionsSchema.parse({ ...(deps.auditDefaults ?? {}), ...body });
      const auditId = auditIdFor(randomUUID(), new Date());
      const { id: jobId } = await deps.runner.enqueue('audit-run', { auditId, options }, { jobId: auditId });
      const finalJobId = `${auditId}.final`;
      res.status(202).location(`/v1/jobs/${finalJobId}`).json({ auditId, jobId, finalJobId });
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/audits',
      access: 'read',
      summary: 'The finished robustness audits, newest first, with their headline numbers.',
      tags: ['audits'],
      request: { query: auditListQuerySchema },
      responses: {
        200: { description: 'The audits.', content: { 'application/json': { schema: auditListSchema } } },
        503: unavailable,
      },
    },
    access('read'),
    async (req, res) => {
      const { limit } = parse(auditListQuerySchema, req.query, 'query string');
      res.json({ audits: await audits().list(limit === undefined ? {} : { limit }) });
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/audits/:id',
      access: 'read',
      summary: 'One audit: attack settings, models and every metric per tower and budget.',
      tags: ['audits'],
      request: { params: auditIdParamsSchema },
      responses: {
        200: { description: 'The audit.', content: { 'application/json': { schema: auditSchema } } },
        404: errorResponse('No audit has this id.'),
        503: unavailable,
      },
    },
    access('read'),
    async (req, res) => {
      const { id } = parse(auditIdParamsSchema, req.params, 'audit id');
      const audit = await audits().get(id);
      if (!audit) throw new NotFoundError('audit', id);
      res.json(audit);
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/audits/:id/report',
      access: 'read',
      summary: 'The self-contained HTML report of one audit.',
      tags: ['audits'],
      request: { params: auditIdParamsSchema },
      responses: {
        200: { description: 'The report.', content: { 'text/html': { schema: z.string() } } },
        404: errorResponse('No audit has this id.'),
        503: unavailable,
      },
    },
    access('read'),
    async (req, res) => {
      const { id } = parse(auditIdParamsSchema, req.params, 'audit id');
      const html = await audits().report(id);
      if (html === undefined) throw new NotFoundError('audit', id);
      res.set('Content-Security-Policy', REPORT_CSP).type('html').send(html);
    },
  );
}
