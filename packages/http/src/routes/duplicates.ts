import { NotFoundError } from '@lookalike/core';
import type { DuplicateGroup } from '@lookalike/distance';
import type { RouteContext } from '../context.js';
import { errorResponse } from '../openapi.js';
import {
  duplicateGroupSchema,
  duplicateListQuerySchema,
  duplicateListSchema,
  duplicateReviewSchema,
  groupParamsSchema,
  parse,
} from '../schemas.js';

/** `GET /v1/duplicates`, `GET /v1/duplicates/:group` and `POST /v1/duplicates/:group/review`. */
export function duplicateRoutes({ routes, deps, duplicates, search, access, paths }: RouteContext): void {
  const shown = (g: DuplicateGroup) => ({
    ...g,
    members: g.members.map((m) => paths.image(m.id, m.payload)),
  });

  routes.add(
    {
      method: 'get',
      path: '/v1/duplicates',
      access: 'read',
      summary: 'The near-duplicate groups ingest found, newest first.',
      description:
        'An image ingested within the same-item distance of a stored one (DUPLICATES: the robust tower by ' +
        "default, at its calibrated threshold) joins that image's group. Groups are listed by their newest member; " +
        'a review (`POST /v1/duplicates/{group}/review`) marks members, and nothing is ever deleted by grouping.',
      tags: ['duplicates'],
      request: { query: duplicateListQuerySchema },
      responses: {
        200: { description: 'A page of groups.', content: { 'application/json': { schema: duplicateListSchema } } },
      },
    },
    access('read'),
    async (req, res) => {
      const q = parse(duplicateListQuerySchema, req.query, 'query string');
      const page = await duplicates.list({
        limit: q.limit ?? 20,
        offset: q.offset ?? 0,
        unreviewed: q.unreviewed === 'true',
      });
      const policy = deps.duplicatePolicy;
      res.json({
        groups: page.groups.map(shown),
        total: page.total,
        images: page.images,
        grouping: policy ? { tower: policy.tower, threshold: policy.threshold } : null,
      });
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/duplicates/:group',
      access: 'read',
      summary: 'One near-duplicate group with all its members.',
      tags: ['duplicates'],
      request: { params: groupParamsSchema },
      responses: {
        200: { description: 'The group.', content: { 'application/json': { schema: duplicateGroupSchema } } },
        404: errorResponse('No image is in a group of this id (`NOT_FOUND`).'),
      },
    },
    access('read'),
    async (req, res) => {
      const { group } = parse(groupParamsSchema, req.params, 'group id');
      const found = await duplicates.get(group);
      if (!found) throw new NotFoundError('duplicate group', group);
      res.json(shown(found));
    },
  );

  routes.add(
    {
      method: 'post',
      path: '/v1/duplicates/:group/review',
      access: 'write',
      summary: 'Keep one member of a group and mark the others as duplicates.',
      description:
        "Writes the review into each member's payload (`duplicates.review`: `kept` or `duplicate`, with the time); " +
        'a later review replaces it. Nothing is deleted: a search can leave marked copies out with the filter ' +
        '`{"mustNot":[{"field":"duplicates.review","match":"duplicate"}]}`.',
      tags: ['duplicates'],
      request: {
        params: groupParamsSchema,
        body: { required: true, content: { 'application/json': { schema: duplicateReviewSchema } } },
      },
      responses: {
        200: {
          description: 'The group as reviewed.',
          content: { 'application/json': { schema: duplicateGroupSchema } },
        },
        404: errorResponse('No image is in a group of this id (`NOT_FOUND`).'),
        400: errorResponse('`keep` is not a member of the group (`VALIDATION_FAILED`).'),
      },
    },
    access('write'),
    async (req, res) => {
      const { group } = parse(groupParamsSchema, req.params, 'group id');
      const { keep } = parse(duplicateReviewSchema, req.body, 'review');
      const reviewed = await duplicates.review(group, keep);
      search.invalidate();
      res.json(shown(reviewed));
    },
  );
}
