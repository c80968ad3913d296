import { createHash, randomUUID } from 'node:crypto';
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { AppError, ERROR_CODES, NotFoundError, ValidationError, type ErrorCode, type JobStatus } from '@lookalike/core';
import { decodeImage, decodeLimitsOf, type DecodeLimits } from '@lookalike/imaging';
import type { BatchResult } from '@lookalike/ingest';
import type { JobRunner } from '@lookalike/queue';
import { z } from 'zod';
import type { RouteContext } from '../context.js';
import { errorResponse } from '../openapi.js';
import {
  idParamsSchema,
  imageSchema,
  parse,
  uploadAcceptedSchema,
  uploadCreatedSchema,
  uploadFieldsSchema,
  uploadFormSchema,
  uploadQuerySchema,
} from '../schemas.js';

/** How long `?wait=true` waits for the ingest job before answering 202 anyway. */
const WAIT_MS = 60_000;

const YEAR_SECONDS = 365 * 24 * 3600;

/**
 * Validates an uploaded image (decode limits, format sniffed from the bytes) and saves it as `<sha256>.<ext>` in
 * `dir`, atomically; a file already there is kept (same name, same bytes).
 */
export async function saveUpload(
  bytes: Buffer,
  dir: string,
  limits: DecodeLimits,
): Promise<{ id: string; location: string }> {
  const image = await decodeImage(bytes, limits);
  const id = createHash('sha256').update(bytes).digest('hex');
  const ext = image.format === 'jpeg' ? 'jpg' : image.format;
  const location = join(dir, `${id}.${ext}`);
  if (
    await stat(location).then(
      (s) => s.isFile(),
      () => false,
    )
  )
    return { id, location };
  await mkdir(dir, { recursive: true });
  // Synced and renamed into place: an upload is whole on disk before its job is queued, or not there at all.
  await writeFileAtomic(location, bytes);
  return { id, location };
}

/**
 * Resolves when job `jobId` has completed or failed for good, or with `undefined` after `timeoutMs`. Listens to the
 * runner's events and also polls, so a job that finished before the listener was attached is still seen.
 */
export function waitForJob(runner: JobRunner, jobId: string, timeoutMs: number): Promise<JobStatus | undefined> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (status: JobStatus | undefined, error?: Error) => {
      if (settled) return;
      settled = true;
      clearInterval(poll);
      clearTimeout(timer);
      runner.events.off('completed', onEvent);
      runner.events.off('failed', onEvent);
      if (error === undefined) resolve(status);
      else reject(error);
    };
    const check = () => {
      runner.getJob(jobId).then(
        (status) => {
          if (status && (status.state === 'completed' || status.state === 'failed')) finish(status);
        },
        (error: unknown) => finish(undefined, error instanceof Error ? error : new Error('the job could not be read')),
      );
    };
    const onEvent = (id: string) => {
      if (id === jobId) check();
    };
    runner.events.on('completed', onEvent);
    runner.events.on('failed', onEvent);
    const poll = setInterval(check, 500);
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    check();
  });
}

/** `GET /v1/images/:id` (+ `/thumbnail`, `/original`) and `POST /v1/images`. */
export function imageRoutes({
  routes,
  deps,
  files,
  paths,
  search,
  duplicates,
  access,
  upload,
  uploadsDir,
}: RouteContext): void {
  const { config, store, runner } = deps;
  const immutable = `${config.api.keys.some((k) => k.scope === 'read') ? 'private' : 'public'}, max-age=${YEAR_SECONDS}, immutable`;

  routes.add(
    {
      method: 'get',
      path: '/v1/images/:id',
      access: 'read',
      summary: 'A stored image: its id and payload (source, size, caption, labels, provenance).',
      tags: ['images'],
      request: { params: idParamsSchema },
      responses: {
        200: { description: 'The image.', content: { 'application/json': { schema: imageSchema } } },
        404: errorResponse('No image has this id (`NOT_FOUND`).'),
      },
    },
    access('read'),
    async (req, res) => {
      const { id } = parse(idParamsSchema, req.params, 'image id');
      const [point] = await store.get([id]);
      if (!point) throw new NotFoundError('image', id);
      const group = point.payload.duplicates?.group;
      res.json({
        id: point.id,
        payload: paths.payload(point.payload),
        ...(group ? { group: { id: group, size: await duplicates.size(group), url: `/v1/duplicates/${group}` } } : {}),
      });
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/images/:id/thumbnail',
      access: 'read',
      summary: 'A JPEG thumbnail, at most 256 px on its longest side; cacheable forever (ids are content hashes).',
      tags: ['images'],
      request: { params: idParamsSchema },
      responses: {
        200: {
          description: 'The thumbnail.',
          content: { 'image/jpeg': { schema: z.string().meta({ format: 'binary' }) } },
        },
        404: errorResponse('No image has this id, or its original file is gone (`NOT_FOUND`).'),
      },
    },
    access('read'),
    async (req, res) => {
      const { id } = parse(idParamsSchema, req.params, 'image id');
      const jpeg = await files.thumbnail(id);
      res.set('Cache-Control', immutable).type('image/jpeg').send(jpeg);
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/images/:id/original',
      access: 'read',
      summary: 'The original file, with its content type.',
      tags: ['images'],
      request: { params: idParamsSchema },
      responses: {
        200: {
          description: 'The original bytes.',
          content: { 'image/*': { schema: z.string().meta({ format: 'binary' }) } },
        },
        404: errorResponse('No image has this id, it was ingested from a URL, or its file is gone or changed.'),
      },
    },
    access('read'),
    async (req, res) => {
      const { id } = parse(idParamsSchema, req.params, 'image id');
      const original = await files.original(id);
      res
        .set('Cache-Control', immutable)
        // Opened directly, an image (SVG above all) must not run anything or reach anywhere.
        .set('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'; sandbox")
        .type(original.contentType)
        .send(original.bytes);
    },
  );

  routes.add(
    {
      method: 'post',
      path: '/v1/images',
      access: 'write',
      summary: 'Add one image: validated, saved under its sha256, and ingested with both towers.',
      description:
        'Answers 202 with the image id and the ingest job id at once; with `?wait=true`, waits until the image is ' +
        'stored and answers 201 with its payload (or 202 if that takes more than a minute).',
      tags: ['images'],
      request: {
        query: uploadQuerySchema,
        body: { required: true, content: { 'multipart/form-data': { schema: uploadFormSchema } } },
      },
      responses: {
        201: {
          description: 'Stored (with `wait=true`).',
          content: { 'application/json': { schema: uploadCreatedSchema } },
        },
        202: {
          description: 'Accepted; poll `GET /v1/jobs/{jobId}`.',
          content: { 'application/json': { schema: uploadAcceptedSchema } },
        },
        413: errorResponse('The file or the image is too large.'),
        415: errorResponse('Not an image, or a format that is not accepted.'),
        422: errorResponse('The image is damaged or truncated.'),
      },
    },
    access('write'),
    upload,
    async (req, res) => {
      const { wait } = parse(uploadQuerySchema, req.query, 'query string');
      if (!req.file)
        throw new ValidationError('Send the image as multipart/form-data in the form field "image".', [
          { path: 'image', message: 'required' },
        ]);
      const fields = parse(uploadFieldsSchema, req.body ?? {}, 'upload form');
      const { id, location } = await saveUpload(req.file.buffer, uploadsDir, decodeLimitsOf(config.images));
      const runId = `upload-${randomUUID()}`;
      const item = {
        location,
        ...(fields.caption ? { caption: fields.caption } : {}),
        ...(fields.labels ? { labels: fields.labels } : {}),
      };
      const { id: jobId } = await runner.enqueue(
        'ingest-batch',
        { runId, batch: 0, items: [item] },
        { jobId: `${runId}.0` },
      );
      res.location(`/v1/images/${id}`);
      if (wait !== 'true') {
        res.status(202).json({ id, jobId });
        return;
      }
      const status = await waitForJob(runner, jobId, WAIT_MS);
      if (!status) {
        res.status(202).json({ id, jobId });
        return;
      }
      if (status.state === 'failed')
        throw new AppError(
          'STORE_UNAVAILABLE',
          `The image was saved but could not be stored: ${paths.text(status.failedReason ?? 'unknown')}.`,
        );
      const failure = (status.result as BatchResult | undefined)?.failed[0];
      if (failure) {
        const code: ErrorCode = failure.code in ERROR_CODES ? (failure.code as ErrorCode) : 'IMAGE_DECODE_FAILED';
        throw new AppError(code, paths.text(failure.reason));
      }
      search.invalidate();
      const [point] = await store.get([id]);
      if (!point) throw new AppError('INTERNAL', `The ingest job finished but image ${id} is not in the store.`);
      res.status(201).json({ id, jobId, payload: paths.payload(point.payload) });
    },
  );
}
