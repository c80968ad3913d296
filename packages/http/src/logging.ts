/**
 * The API's request log: pino-http on the process's logger (`@lookalike/logging`), credentials redacted.
 */
import type { RequestHandler } from 'express';
import { SECRET_PARAM, redact, redactUrl, type Logger } from '@lookalike/logging';
import { pinoHttp } from 'pino-http';

interface SerializedRequest {
  url?: unknown;
  query?: unknown;
  [key: string]: unknown;
}

/**
 * pino-http on `logger`, with the credentials redacted whichever logger it is given ({@link REDACTED_LOG_PATHS},
 * and credential-like query parameters in the URL and the parsed query). `/healthz` is not logged. A logger that
 * logs nothing (`LOG_LEVEL=silent`, read when the app is built) gets no request logger: pino-http's per-request
 * child logger and serializers cost about a tenth of a search by id; `req.log` is then `logger` itself.
 */
export function requestLogger(logger: Logger): RequestHandler {
  if (!logger.isLevelEnabled('fatal'))
    return (req, _res, next) => {
      req.log = logger;
      next();
    };
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
