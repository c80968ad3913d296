import { OpenAPIRegistry, OpenApiGeneratorV31, type RouteConfig } from '@asteasolutions/zod-to-openapi';
import type { Express, RequestHandler } from 'express';
import type { Access } from './auth.js';
import { errorSchema } from './schemas.js';

/** One documented route: what `app[method](path)` serves, and what `/openapi.json` says about it. */
export interface RouteSpec {
  method: 'get' | 'post';
  /** Express path, e.g. `/v1/images/:id`; written `{id}` in the document. */
  path: string;
  access: Access;
  summary: string;
  description?: string;
  tags: string[];
  request?: RouteConfig['request'];
  responses: RouteConfig['responses'];
}

const error = (description: string) => ({
  description,
  content: { 'application/json': { schema: errorSchema } },
});

/** Error responses every route of an access level can give. */
function commonErrors(access: Access): RouteConfig['responses'] {
  const host = 'the Host header names no allowed host (`HOST_NOT_ALLOWED`; see ALLOWED_HOSTS)';
  if (access === 'public')
    return { 403: error(`Refused: ${host}.`), 500: error('Unexpected server error (logged; no details are sent).') };
  return {
    400: error('The request is invalid (`VALIDATION_FAILED`); `details.issues` lists every problem.'),
    401: error('No API key, or one that matches no configured key (`UNAUTHORIZED`).'),
    403: error(
      access === 'write'
        ? `Refused: the key is read-only (\`FORBIDDEN\`), a browser sent this from a page on another site ` +
            `(\`CROSS_SITE_REFUSED\`), or ${host}.`
        : `Refused: ${host}.`,
    ),
    429: error('Too many requests from this key or address (`RATE_LIMITED`); see the RateLimit headers.'),
    500: error('Unexpected server error (logged; no details are sent).'),
  };
}

/** Typed error responses for route specs. */
export const errorResponse = error;

/**
 * Registers routes on the app and in an OpenAPI registry at once, so the document lists exactly the routes the app
 * serves, with the zod schemas their handlers parse with.
 */
export class ApiRoutes {
  private readonly registry = new OpenAPIRegistry();
  private readonly routes: RouteSpec[] = [];
  private document: object | undefined;

  constructor(private readonly app: Express) {
    this.registry.registerComponent('securitySchemes', 'bearer', {
      type: 'http',
      scheme: 'bearer',
      description: 'An API key as a bearer token. Keys are configured by their sha256 in API_KEYS.',
    });
    this.registry.registerComponent('securitySchemes', 'apiKey', { type: 'apiKey', in: 'header', name: 'X-API-Key' });
  }

  /** Serves `handlers` at the spec's method and path, and documents it. */
  add(spec: RouteSpec, ...handlers: RequestHandler[]): void {
    this.routes.push(spec);
    this.document = undefined;
    this.app[spec.method](spec.path, ...handlers);
    this.registry.registerPath({
      method: spec.method,
      path: spec.path.replace(/:([A-Za-z_]+)/g, '{$1}'),
      summary: spec.summary,
      ...(spec.description ? { description: spec.description } : {}),
      tags: spec.tags,
      ...(spec.request ? { request: spec.request } : {}),
      ...(spec.access === 'public' ? { security: [] } : { security: [{ bearer: [] }, { apiKey: [] }, {}] }),
      responses: { ...commonErrors(spec.access), ...spec.responses },
    });
  }

  /** The routes added so far. */
  list(): readonly RouteSpec[] {
    return this.routes;
  }

  /** The OpenAPI 3.1 document of every route added, generated once and cached. */
  openApi(): object {
    this.document ??= new OpenApiGeneratorV31(this.registry.definitions).generateDocument({
      openapi: '3.1.0',
      info: {
        title: 'Lookalike API',
        version: '1.0.0',
        description:
          'Find lookalike images in product and defect archives with a robust (FARE) and a clean CLIP tower. ' +
          'Errors are always `{ error: { code, message, details? } }` with a stable code.',
      },
      servers: [{ url: '/' }],
    });
    return this.document;
  }
}
