import { randomUUID } from 'node:crypto';
import { isAbsolute, resolve } from 'node:path';
import { NotFoundError, ValidationError, isUrl } from '@lookalike/core';
import { assertPatternConfined, getRunStatus, resolveInsideRoots } from '@lookalike/ingest';
import type { IngestSource } from '@lookalike/queue';
import type { RouteContext } from '../context.js';
import { errorResponse } from '../openapi.js';
import { ingestAcceptedSchema, ingestRequestSchema, jobIdParamsSchema, jobStatusSchema, parse } from '../schemas.js';

/**
 * The source with its local path made absolute (relative paths are taken from the first root) and checked to lie
 * inside `roots`, symlinks resolved, and its include patterns checked to stay inside it; URL manifests are left to
 * the ingest job's address checks. Refusals name the path as it was sent, never the server's folders.
 */
export async function confineSource(source: IngestSource, roots: readonly string[]): Promise<IngestSource> {
  const base = roots[0] ?? '.';
  const inside = (path: string) =>
    resolveInsideRoots(isAbsolute(path) ? path : resolve(base, path), roots, { label: JSON.stringify(path) });
  switch (source.kind) {
    case 'directory':
      for (const pattern of source.include ?? []) assertPatternConfined(pattern);
      return { ...source, root: await inside(source.root) };
    case 'manifest':
      return isUrl(source.location) ? source : { ...source, location: await inside(source.location) };
    case 'items':
      throw new ValidationError('An items source is not accepted over HTTP; send a folder or a manifest.');
  }
}

/** `POST /v1/ingest` and `GET /v1/jobs/:id`. */
export function ingestRoutes({ routes, deps, access, paths }: RouteContext): void {
  const { config, runner } = deps;

  routes.add(
    {
      method: 'post',
      path: '/v1/ingest',
      access: 'write',
      summary: 'Start a bulk ingest of a folder or a JSONL/CSV manifest under INGEST_ROOTS.',
      description:
        'Paths outside INGEST_ROOTS (after resolving `..` and symbolic links) and include patterns that leave the ' +
        'folder (absolute, or with `..`) are refused. Progress and the reasons of files that could not be ingested ' +
        'are at `GET /v1/jobs/{jobId}`, with paths relative to their root.',
      tags: ['ingest'],
      request: { body: { required: true, content: { 'application/json': { schema: ingestRequestSchema } } } },
      responses: {
        202: { description: 'The run is queued.', content: { 'application/json': { schema: ingestAcceptedSchema } } },
        503: errorResponse('The queue cannot take jobs now (`QUEUE_UNAVAILABLE`).'),
      },
    },
    access('write'),
    async (req, res) => {
      const body = parse(ingestRequestSchema, req.body, 'ingest request');
      const source = await confineSource(body.source, config.ingest.roots);
      const runId = randomUUID();
      const { id: jobId } = await runner.enqueue(
        'ingest-run',
        { runId, source, batchSize: body.batchSize ?? config.ingest.batchSize },
        { jobId: runId },
      );
      res.status(202).location(`/v1/jobs/${jobId}`).json({ runId, jobId });
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/jobs/:id',
      access: 'read',
      summary: 'Where a job stands; an ingest run is summed over all its batches.',
      tags: ['ingest'],
      request: { params: jobIdParamsSchema },
      responses: {
        200: { description: 'The status.', content: { 'application/json': { schema: jobStatusSchema } } },
        404: errorResponse('No job has this id (or it was removed by retention).'),
      },
    },
    access('read'),
    async (req, res) => {
      const { id } = parse(jobIdParamsSchema, req.params, 'job id');
      const status = await getRunStatus(runner, id);
      if (!status) throw new NotFoundError('job', id);
      res.json(paths.jobStatus(status));
    },
  );
}
