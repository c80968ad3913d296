import type { RequestHandler } from 'express';
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { pinoHttp } from 'pino-http';

/**
 * Where credentials sit in a request log line: the key headers the API reads, cookies, and a proxy's credentials.
 * Only the hashes of API keys are configured, so a key written to the logs would be the one copy in clear.
 */
export const REDACTED_LOG_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers["proxy-authorization"]',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
] as const;

const redact: LoggerOptions['redact'] = { paths: [...REDACTED_LOG_PATHS], censor: '[Redacted]' };

/** Query parameters whose values may be credentials (`api_key`, `token`, `X-Amz-Signature`, …). */
const SECRET_PARAM = /key|token|secret|pass|auth|sig|credential|session/i;

/** `url` with the values of credential-like query parameters replaced by `[Redacted]`; the names stay readable. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const query = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const name = eq < 0 ? pair : pair.slice(0, eq);
      return eq >= 0 && SECRET_PARAM.test(safeDecode(name)) ? `${name}=[Redacted]` : pair;
    })
    .join('&');
  return `${url.slice(0, q)}?${query}`;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** A process's logger at `level`, redacting credentials from whatever request it logs. */
export function createLogger(level: LoggerOptions['level'], destination?: DestinationStream): Logger {
  return destination ? pino({ level, redact }, destination) : pino({ level, redact });
}

interface SerializedRequest {
  url?: unknown;
  query?: unknown;
  [key: string]: unknown;
}

/**
 * pino-http on `logger`, with the credentials redacted whichever logger it is given ({@link REDACTED_LOG_PATHS},
 * and credential-like query parameters in the URL and the parsed query). `/healthz` is not logged.
 */
export function requestLogger(logger: Logger): RequestHandler {
  return pinoHttp({
    logger,
    redact,
    autoLogging: { ignore: (req) => req.url === '/healthz' },
    serializers: {
      req: (req: SerializedRequest) => {
        if (typeof req.url === 'string') req.url = redactUrl(req.url);
        if (req.query !== null && typeof req.query === 'object')
          req.query = Object.fromEntries(
            Object.entries(req.query).map(([name, value]) => [name, SECRET_PARAM.test(name) ? '[Redacted]' : value]),
          );
        return req;
      },
    },
  });
}
