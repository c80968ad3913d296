import { ValidationError } from '@lookalike/core';
import type { SearchOptions, SearchResult } from '@lookalike/search';
import type { ApiMetrics } from '../metrics.js';
import type { PublicPaths } from '../public-paths.js';
import type { RouteContext } from '../context.js';
import { errorResponse } from '../openapi.js';
import {
  facetsResponseSchema,
  idParamsSchema,
  parse,
  searchFieldsSchema,
  searchFormSchema,
  searchJsonSchema,
  searchResponseSchema,
} from '../schemas.js';

/** The response of every search: the hits with a thumbnail URL each, and the server time spent. */
export function searchResponse(result: SearchResult, started: number, paths: PublicPaths) {
  return {
    encoder: result.encoder,
    k: result.k,
    tookMs: Math.round((performance.now() - started) * 10) / 10,
    hits: result.hits.map((h) => ({
      id: h.id,
      score: h.score,
      payload: paths.payload(h.payload),
      thumbnailUrl: `/v1/images/${h.id}/thumbnail`,
    })),
  };
}

/** Records the query's embedding time (when it had one) and the store's search time. */
export function observeSearch(metrics: ApiMetrics, result: SearchResult, query: 'image' | 'text' | 'id'): void {
  if (query !== 'id') metrics.embedDuration.observe({ encoder: result.encoder, query }, result.timings.embedMs / 1000);
  metrics.searchDuration.observe({ encoder: result.encoder }, result.timings.searchMs / 1000);
}

/** Options from parsed request fields, leaving out what was not sent. */
export function searchOptions(fields: {
  k?: number;
  encoder?: SearchOptions['encoder'];
  filter?: SearchOptions['filter'];
  quality?: SearchOptions['quality'];
  includeSuspicious?: boolean;
}) {
  return {
    ...(fields.k === undefined ? {} : { k: fields.k }),
    ...(fields.includeSuspicious === undefined ? {} : { includeSuspicious: fields.includeSuspicious }),
    ...(fields.encoder === undefined ? {} : { encoder: fields.encoder }),
    ...(fields.filter === undefined ? {} : { filter: fields.filter }),
    ...(fields.quality === undefined ? {} : { quality: fields.quality }),
  } satisfies SearchOptions;
}

const searchResponses = {
  200: { description: 'The hits, best first.', content: { 'application/json': { schema: searchResponseSchema } } },
  404: errorResponse('No image has this id (`NOT_FOUND`).'),
};

/** `POST /v1/search`, `GET /v1/images/:id/similar` and `GET /v1/facets`. */
export function searchRoutes({ routes, search, metrics, access, upload, paths }: RouteContext): void {
  routes.add(
    {
      method: 'post',
      path: '/v1/search',
      access: 'read',
      summary: 'Search by an uploaded image, a stored image or a text.',
      description:
        'Send `multipart/form-data` with the query image in `image` (and optional `k`, `encoder`, `filter` as ' +
        'text fields, `filter` as a JSON string), or `application/json` with exactly one of `imageId` and `text`.',
      tags: ['search'],
      request: {
        body: {
          required: true,
          content: {
            'multipart/form-data': { schema: searchFormSchema },
            'application/json': { schema: searchJsonSchema },
          },
        },
      },
      responses: {
        ...searchResponses,
        413: errorResponse('The file or the image is too large (`PAYLOAD_TOO_LARGE`, `IMAGE_TOO_MANY_PIXELS`, …).'),
        415: errorResponse('Not an image, or a format that is not accepted (`IMAGE_NOT_AN_IMAGE`, …).'),
        422: errorResponse('The image is damaged or truncated (`IMAGE_DECODE_FAILED`, `IMAGE_TRUNCATED`, …).'),
      },
    },
    access('read'),
    upload,
    async (req, res) => {
      const started = performance.now();
      let result: SearchResult;
      if (req.file) {
        const fields = parse(searchFieldsSchema, req.body ?? {}, 'search form');
        result = await search.byImage(req.file.buffer, searchOptions(fields));
        observeSearch(metrics, result, 'image');
      } else if (req.is('multipart/form-data')) {
        throw new ValidationError('The search form has no image: send the query image in the form field "image".', [
          { path: 'image', message: 'required' },
        ]);
      } else if (req.is('application/json')) {
        const body = parse(searchJsonSchema, req.body, 'search request');
        if (body.imageId !== undefined) {
          result = await search.byId(body.imageId, searchOptions(body));
          observeSearch(metrics, result, 'id');
        } else {
          result = await search.byText(body.text!, searchOptions(body));
          observeSearch(metrics, result, 'text');
        }
      } else {
        throw new ValidationError(
          'Send the search as application/json ({ "imageId" } or { "text" }) or as multipart/form-data with the ' +
            'image in the field "image".',
        );
      }
      res.json(searchResponse(result, started, paths));
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/images/:id/similar',
      access: 'read',
      summary: 'The lookalikes of a stored image (the image itself is left out).',
      tags: ['search'],
      request: { params: idParamsSchema, query: searchFieldsSchema },
      responses: searchResponses,
    },
    access('read'),
    async (req, res) => {
      const started = performance.now();
      const { id } = parse(idParamsSchema, req.params, 'image id');
      const fields = parse(searchFieldsSchema, req.query, 'query string');
      const result = await search.similar(id, searchOptions(fields));
      observeSearch(metrics, result, 'id');
      res.json(searchResponse(result, started, paths));
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/facets',
      access: 'read',
      summary: 'Distinct values of the label fields the UI filters on (part, defect, color, material).',
      tags: ['search'],
      responses: {
        200: {
          description: 'The values of each field, sorted.',
          content: { 'application/json': { schema: facetsResponseSchema } },
        },
      },
    },
    access('read'),
    async (_req, res) => {
      res.json({ fields: await search.facets() });
    },
  );
}
