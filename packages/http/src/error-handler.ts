import { AppError, isAppError } from '@lookalike/core';
import type { ErrorRequestHandler, RequestHandler } from 'express';

/** 404 for any route nobody answered, in the same JSON error shape as every other error. */
export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(new AppError('NOT_FOUND', `No route for ${req.method} ${req.path}.`));
};

/**
 * The one place errors become responses: an {@link AppError} keeps its code, status and message; body-parser errors
 * become `VALIDATION_FAILED` / `PAYLOAD_TOO_LARGE`; anything else is a 500 with no stack or internals in the body
 * (it is logged with the request instead).
 */
export const errorHandler: ErrorRequestHandler = (error: unknown, req, res, next) => {
  // A response already under way (a file being streamed) can only be cut off; Express does that.
  if (res.headersSent) return next(error);
  const appError = toAppError(error);
  if (appError.status >= 500) req.log.error({ err: error }, `Request failed: ${appError.message}`);
  res.status(appError.status).json(appError.toJSON());
};

function toAppError(error: unknown): AppError {
  if (isAppError(error)) return error;
  const status = (error as { status?: unknown; type?: unknown }).status;
  const type = (error as { type?: unknown }).type;
  if (type === 'entity.parse.failed') return new AppError('VALIDATION_FAILED', 'The request body is not valid JSON.');
  if (type === 'entity.too.large') return new AppError('PAYLOAD_TOO_LARGE', 'The request body is too large.');
  if (status === 404) return new AppError('NOT_FOUND', 'The requested file was not found.');
  if (status === 413) return new AppError('PAYLOAD_TOO_LARGE', 'The request body is too large.');
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new AppError('VALIDATION_FAILED', 'The request could not be read.');
  }
  return new AppError('INTERNAL', 'Something went wrong on our side; the error has been logged.', { cause: error });
}
