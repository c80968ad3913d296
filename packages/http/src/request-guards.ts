import { AppError } from '@lookalike/core';
import type { Request, RequestHandler } from 'express';

/** The host name of a `Host` header: lowercase, without its port, IPv6 without brackets, no trailing dot. */
export function hostNameOf(header: string): string {
  const host = header.trim().toLowerCase();
  const bracketed = /^\[([^\]]*)\](:\d*)?$/.exec(host);
  if (bracketed) return bracketed[1]!;
  // One colon separates a port; more than one is a bare IPv6 address.
  const name = host.split(':').length === 2 ? host.slice(0, host.lastIndexOf(':')) : host;
  return name.endsWith('.') ? name.slice(0, -1) : name;
}

/**
 * Refuses requests whose `Host` names none of `allowed` (`['*']` allows any), with `HOST_NOT_ALLOWED`. A page on a
 * domain its owner re-points at this machine (DNS rebinding) is same-origin to the browser and could read every
 * answer; its requests still carry its own domain in `Host`, so only the names this server is reached by pass.
 * Requests without a `Host` (HTTP/1.0 clients; no browser sends one) pass.
 */
export function requireAllowedHost(allowed: readonly string[]): RequestHandler {
  const any = allowed.includes('*');
  const names = new Set(allowed);
  return (req, _res, next) => {
    const header = req.headers.host;
    if (any || header === undefined || names.has(hostNameOf(header))) return next();
    next(
      new AppError(
        'HOST_NOT_ALLOWED',
        `This server does not answer for the host "${hostNameOf(header).slice(0, 253)}"; reach it by a name in ` +
          'ALLOWED_HOSTS (or its loopback address), or ask its operator to add this one.',
        { details: { host: hostNameOf(header).slice(0, 253) } },
      ),
    );
  };
}

/** Methods that change nothing; every other one is refused when it comes from another site. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** `scheme://host:port` of an `Origin` header and the request's own `Host` name the same host and port. */
function sameHost(origin: string, req: Request): boolean {
  const host = req.headers.host;
  if (host === undefined) return false;
  try {
    const from = new URL(origin);
    // The scheme is left out: behind a TLS proxy the page is https and this server plain http.
    return from.host === new URL(`${from.protocol}//${host}`).host;
  } catch {
    return false;
  }
}

/**
 * Refuses a state-changing request (any method but GET, HEAD and OPTIONS) that a browser sent on behalf of a page on
 * another site, with `CROSS_SITE_REFUSED`, whether or not keys are configured: a form or a `no-cors` fetch can
 * POST without reading the answer, and a keyless instance would act on it. Browsers say where a request comes from
 * in `Sec-Fetch-Site` (only `same-origin` and `none`, a user's own navigation, pass) or, older ones, in `Origin`
 * (it must name this host). Clients that send neither (curl, scripts, other servers) are not browsers and pass.
 */
export function refuseCrossSiteWrites(): RequestHandler {
  return (req, _res, next) => {
    if (SAFE_METHODS.has(req.method)) return next();
    const site = req.get('sec-fetch-site');
    const origin = req.get('origin');
    if (site !== undefined ? site === 'same-origin' || site === 'none' : origin === undefined || sameHost(origin, req))
      return next();
    const from = site !== undefined ? `Sec-Fetch-Site: ${site.slice(0, 32)}` : `Origin: ${origin!.slice(0, 256)}`;
    next(
      new AppError(
        'CROSS_SITE_REFUSED',
        `A ${req.method} from a page on another site was refused (${from}): this server takes changes only from its ` +
          'own web UI and from clients that are not browsers (curl, scripts, servers).',
        { details: { method: req.method, ...(site !== undefined ? { secFetchSite: site.slice(0, 32) } : {}) } },
      ),
    );
  };
}
