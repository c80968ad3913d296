import { createHash, timingSafeEqual } from 'node:crypto';
import { AppError, type Config } from '@lookalike/core';
import type { Request, RequestHandler, Response } from 'express';

/** What a route needs: `public` (no key ever), `read` or `write`. */
export type Access = 'public' | 'read' | 'write';

/** Who is calling, as far as the API key says. */
export interface Caller {
  /** Scope of the presented key when it matched a configured one. */
  scope: 'read' | 'write' | undefined;
  /** A short, non-secret id of the matched key (a prefix of its hash), for rate limiting and logs. */
  keyId: string | undefined;
  /** A key was presented and matched no configured key. */
  badKey: boolean;
}

const NOBODY: Caller = { scope: undefined, keyId: undefined, badKey: false };

/** The caller that {@link identifyCaller} attached to this response. */
export function callerOf(res: Response): Caller {
  return (res.locals.caller as Caller | undefined) ?? NOBODY;
}

/**
 * The key from `Authorization: Bearer <key>`, from the password of `Authorization: Basic` (what a browser sends for
 * a page such as the queue dashboard; the user name is ignored) or, failing those, `X-API-Key`.
 */
function presentedKey(req: Request): string | undefined {
  const auth = req.get('authorization');
  const bearer = auth ? /^Bearer\s+(\S+)\s*$/i.exec(auth)?.[1] : undefined;
  if (bearer) return bearer;
  const basic = auth ? /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(auth)?.[1] : undefined;
  if (basic) {
    const decoded = Buffer.from(basic, 'base64').toString('utf8');
    const password = decoded.slice(decoded.indexOf(':') + 1);
    if (decoded.includes(':') && password) return password;
  }
  const header = req.get('x-api-key')?.trim();
  return header ? header : undefined;
}

/**
 * Matches the presented API key against the configured ones and records the {@link Caller}; never refuses a
 * request itself (see {@link requireAccess}). Keys are kept only as sha256 hashes; the presented key is hashed and
 * compared with `timingSafeEqual` against every configured hash, without stopping at a match, so the time taken
 * says nothing about which hash (or how much of one) matched.
 */
export function identifyCaller(keys: Config['api']['keys']): RequestHandler {
  const hashes = keys.map((k) => ({
    scope: k.scope,
    hash: Buffer.from(k.sha256, 'hex'),
    keyId: k.sha256.slice(0, 12),
  }));
  return (req, res, next) => {
    const key = presentedKey(req);
    if (key === undefined || hashes.length === 0) {
      res.locals.caller = NOBODY;
      return next();
    }
    const digest = createHash('sha256').update(key, 'utf8').digest();
    let match: (typeof hashes)[number] | undefined;
    for (const candidate of hashes) {
      // Every configured hash is compared; the first match is kept.
      const equal = timingSafeEqual(digest, candidate.hash);
      if (equal && !match) match = candidate;
    }
    res.locals.caller = match
      ? ({ scope: match.scope, keyId: match.keyId, badKey: false } satisfies Caller)
      : ({ scope: undefined, keyId: undefined, badKey: true } satisfies Caller);
    next();
  };
}

/**
 * Refuses a request whose key does not grant `access`. With no keys configured everything is open. Otherwise: write
 * routes need a write key; read routes need a read or write key as soon as any read key is configured (with only
 * write keys configured, reading stays open); a presented key that matches nothing is refused everywhere.
 */
export function requireAccess(
  access: Access,
  keys: Config['api']['keys'],
  /** How a refusal asks for the key: `Bearer` for API clients, `Basic` for a page a browser opens (it prompts). */
  scheme: 'bearer' | 'basic' = 'bearer',
): RequestHandler {
  const anyKeys = keys.length > 0;
  const readKeys = keys.some((k) => k.scope === 'read');
  return (_req, res, next) => {
    if (access === 'public' || !anyKeys) return next();
    const caller = callerOf(res);
    const challenge = () =>
      res.set(
        'WWW-Authenticate',
        scheme === 'basic' ? 'Basic realm="lookalike", charset="UTF-8"' : 'Bearer realm="lookalike"',
      );
    if (caller.badKey) {
      challenge();
      return next(new AppError('UNAUTHORIZED', 'The API key is not valid.'));
    }
    const needed = access === 'write' || readKeys;
    if (!needed) return next();
    if (!caller.scope) {
      challenge();
      return next(
        new AppError(
          'UNAUTHORIZED',
          `This ${access === 'write' ? 'write' : 'read'} route needs an API key: send "Authorization: Bearer <key>" or ` +
            '"X-API-Key: <key>".',
        ),
      );
    }
    if (access === 'write' && caller.scope !== 'write')
      return next(
        new AppError('FORBIDDEN', 'This route changes data and needs a write key; the key sent is read-only.'),
      );
    next();
  };
}
