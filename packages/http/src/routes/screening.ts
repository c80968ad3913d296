import { AppError } from '@lookalike/core';
import type { CaptionScreen } from '@lookalike/screening';
import type { RouteContext } from '../context.js';
import { errorResponse } from '../openapi.js';
import {
  idParamsSchema,
  parse,
  screenedImageSchema,
  screeningListQuerySchema,
  screeningListSchema,
  screeningReviewSchema,
} from '../schemas.js';

function screenOf(screen: CaptionScreen | undefined): CaptionScreen {
  if (!screen)
    throw new AppError(
      'CONFLICT',
      'Caption screening is off (SCREENING=off, or the text tower does not embed into the image towers’ space).',
    );
  return screen;
}

/** `GET /v1/screening` and `POST /v1/screening/:id/review`. */
export function screeningRoutes({ routes, deps, search, access, paths }: RouteContext): void {
  routes.add(
    {
      method: 'get',
      path: '/v1/screening',
      access: 'read',
      summary: 'Captioned images by screening verdict (default: suspicious), with the mixture that judged them.',
      description:
        "Ingest screens each caption against its image (SafeCLIP): the caption's similarity to the image in the " +
        "screening tower's space (SCREENING, robust by default), judged by a two-component Gaussian mixture " +
        'fitted to the collection once it holds SCREENING_MIN_COUNT captioned images and refitted as it grows. A ' +
        'pair whose clean-component probability is below SCREENING_THRESHOLD is `suspicious` and left out of text ' +
        'search until a person accepts it. Nothing is deleted.',
      tags: ['screening'],
      request: { query: screeningListQuerySchema },
      responses: {
        200: { description: 'A page of images.', content: { 'application/json': { schema: screeningListSchema } } },
        409: errorResponse('Caption screening is off (`CONFLICT`).'),
      },
    },
    access('read'),
    async (req, res) => {
      const screen = screenOf(deps.screening);
      const q = parse(screeningListQuerySchema, req.query, 'query string');
      const verdict = q.verdict ?? 'suspicious';
      const [summary, page] = await Promise.all([
        screen.summary(),
        screen.list({ verdict, limit: q.limit ?? 20, offset: q.offset ?? 0 }),
      ]);
      const { tower, threshold, minCount } = summary.policy;
      res.json({
        policy: { tower, threshold, minCount },
        model: summary.model ?? null,
        counts: summary.counts,
        verdict,
        total: page.total,
        images: page.images.map((i) => paths.image(i.id, i.payload)),
      });
    },
  );

  routes.add(
    {
      method: 'post',
      path: '/v1/screening/:id/review',
      access: 'write',
      summary: "Accept (trust) or reject (withdraw) an image's screened caption.",
      description:
        '`accepted` trusts the caption whatever the mixture says (and restores a withdrawn one); `rejected` ' +
        "withdraws it from the payload's `caption` and keeps it in `screening.withdrawnCaption`. A refit never " +
        'overrides a review; a later review replaces it.',
      tags: ['screening'],
      request: {
        params: idParamsSchema,
        body: { required: true, content: { 'application/json': { schema: screeningReviewSchema } } },
      },
      responses: {
        200: {
          description: 'The image as reviewed.',
          content: { 'application/json': { schema: screenedImageSchema } },
        },
        400: errorResponse('The image has no screened caption (`VALIDATION_FAILED`).'),
        404: errorResponse('No image has this id (`NOT_FOUND`).'),
        409: errorResponse('Caption screening is off (`CONFLICT`).'),
      },
    },
    access('write'),
    async (req, res) => {
      const screen = screenOf(deps.screening);
      const { id } = parse(idParamsSchema, req.params, 'image id');
      const { review } = parse(screeningReviewSchema, req.body, 'review');
      const reviewed = await screen.review(id, review);
      search.invalidate();
      res.json(paths.image(id, reviewed.payload));
    },
  );
}
