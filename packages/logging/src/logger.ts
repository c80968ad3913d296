/**
 * The logger of every Lookalike process: pino (JSON lines on stdout, or a stream given), at the configured level,
 * with credentials redacted wherever a request or a Redis URL is logged.
 */
import { destination, pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

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

/** pino's `redact` option for {@link REDACTED_LOG_PATHS}. */
export const redact: LoggerOptions['redact'] = { paths: [...REDACTED_LOG_PATHS], censor: '[Redacted]' };

/** Query parameters whose values may be credentials (`api_key`, `token`, `X-Amz-Signature`, …). */
export const SECRET_PARAM = /key|token|secret|pass|auth|sig|credential|session/i;

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

/** A connection URL with its user and password hidden: `redis://***@host:6379`. */
export function redactCredentials(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
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

/**
 * A logger on stderr at `level`, for a library's default where no logger was handed in and for a CLI, whose stdout
 * is its answer to the user.
 */
export function stderrLogger(level: LoggerOptions['level']): Logger {
  return createLogger(level, destination({ fd: 2, sync: true }));
}

export type { DestinationStream, Logger, LoggerOptions };
