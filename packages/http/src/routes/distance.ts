import { ValidationError } from '@lookalike/core';
import type { DistanceResult, ImageRef } from '@lookalike/distance';
import type { Request } from 'express';
import type { RouteContext } from '../context.js';
import { errorResponse } from '../openapi.js';
import {
  distanceFieldsSchema,
  distanceFormSchema,
  distanceJsonSchema,
  distanceResponseSchema,
  parse,
} from '../schemas.js';
import { formUpload } from '../uploads.js';

/** The response of `POST /v1/distance`. */
function distanceResponse(result: DistanceResult, started: number) {
  return {
    verdict: result.verdict,
    towers: result.towers,
    tookMs: Math.round((performance.now() - started) * 10) / 10,
  };
}

/** The two sides of a multipart comparison: each a file or an id, never both, never neither. */
function formSides(req: Request): [ImageRef, ImageRef] {
  const fields = parse(distanceFieldsSchema, req.body ?? {}, 'distance form');
  const files = (req.files ?? {}) as Record<string, Express.Multer.File[] | undefined>;
  const side = (name: 'a' | 'b'): ImageRef => {
    const file = files[name]?.[0];
    const id = name === 'a' ? fields.aId : fields.bId;
    if (file && id !== undefined)
      throw new ValidationError(`Send either a file in "${name}" or an id in "${name}Id", not both.`, [
        { path: name, message: 'both a file and an id' },
      ]);
    if (file) return { upload: file.buffer };
    if (id !== undefined) return { id };
    throw new ValidationError(
      `The distance form has no image "${name}": send a file in "${name}" or an id in "${name}Id".`,
      [{ path: name, message: 'required' }],
    );
  };
  return [side('a'), side('b')];
}

/** `POST /v1/distance`. */
export function distanceRoutes({ routes, deps, distance, metrics, access }: RouteContext): void {
  const upload = formUpload(['a', 'b'], deps.config.api.maxUploadBytes);
  routes.add(
    {
      method: 'post',
      path: '/v1/distance',
      access: 'read',
      summary: 'The distance of two images under both towers, with calibrated verdicts.',
      description:
        'Each image is an upload or a stored image. Send `multipart/form-data` with, for each of `a` and `b`, ' +
        'a file in `a`/`b` or an id in `aId`/`bId`, or `application/json` with `aId` and `bId`. The answer is ' +
        "each tower's `1 − cos` distance and its verdict (`same item`, `same kind`, `different`) under the " +
        'thresholds calibrated for that tower on the synthetic catalog (`lookalike calibrate-distance`), shown ' +
        "with how they did on a held-out catalog; `verdict` is the robust tower's.",
      tags: ['search'],
      request: {
        body: {
          required: true,
          content: {
            'multipart/form-data': { schema: distanceFormSchema },
            'application/json': { schema: distanceJsonSchema },
          },
        },
      },
      responses: {
        200: {
          description: "Both towers' distances and verdicts.",
          content: { 'application/json': { schema: distanceResponseSchema } },
        },
        404: errorResponse('No image has this id (`NOT_FOUND`).'),
        413: errorResponse('A file or an image is too large (`PAYLOAD_TOO_LARGE`, `IMAGE_TOO_MANY_PIXELS`, …).'),
        415: errorResponse('Not an image, or a format that is not accepted (`IMAGE_NOT_AN_IMAGE`, …).'),
        422: errorResponse('An image is damaged or truncated (`IMAGE_DECODE_FAILED`, `IMAGE_TRUNCATED`, …).'),
      },
    },
    access('read'),
    upload,
    async (req, res) => {
      const started = performance.now();
      let sides: [ImageRef, ImageRef];
      if (req.is('multipart/form-data')) sides = formSides(req);
      else if (req.is('application/json')) {
        const body = parse(distanceJsonSchema, req.body, 'distance request');
        sides = [{ id: body.aId }, { id: body.bId }];
      } else
        throw new ValidationError(
          'Send the comparison as application/json ({ "aId", "bId" }) or as multipart/form-data with a file or an ' +
            'id for each of "a" and "b".',
        );
      const result = await distance.compare(...sides);
      if (result.timings.embedMs > 0)
        metrics.embedDuration.observe({ encoder: 'both', query: 'distance' }, result.timings.embedMs / 1000);
      res.json(distanceResponse(result, started));
    },
  );
}
