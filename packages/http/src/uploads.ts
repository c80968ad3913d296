import { AppError, ValidationError } from '@lookalike/core';
import type { RequestHandler } from 'express';
import multer from 'multer';

function fmtBytes(n: number): string {
  return n >= 1024 * 1024 ? `${(n / (1024 * 1024)).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`;
}

/**
 * Reads one uploaded file from the multipart field `field` into memory (at most `maxBytes`, one file, a few small
 * text fields) and maps multer's errors to typed ones: too large → 413 `PAYLOAD_TOO_LARGE`, anything malformed →
 * 400 `VALIDATION_FAILED`. Requests that are not multipart pass through untouched.
 */
export function singleUpload(field: string, maxBytes: number): RequestHandler {
  return formUpload([field], maxBytes);
}

/**
 * Reads at most one uploaded file from each of the multipart fields `fields` into memory (each at most `maxBytes`)
 * into `req.files[field]`, or `req.file` when there is one field; errors as {@link singleUpload}.
 */
export function formUpload(fields: readonly string[], maxBytes: number): RequestHandler {
  const instance = multer({
    storage: multer.memoryStorage(),
    limits: {
      fileSize: maxBytes,
      files: fields.length,
      fields: 8,
      fieldSize: 64 * 1024,
      parts: 9 + fields.length,
      headerPairs: 200,
    },
  });
  const upload =
    fields.length === 1 ? instance.single(fields[0]!) : instance.fields(fields.map((name) => ({ name, maxCount: 1 })));
  const expected =
    fields.length === 1
      ? `Send exactly one file, in the form field "${fields[0]}".`
      : `Send at most one file in each of the form fields ${fields.map((f) => `"${f}"`).join(' and ')}.`;
  return (req, res, next) => {
    upload(req, res, (error: unknown) => {
      if (error === undefined || error === null) return next();
      if (error instanceof multer.MulterError) {
        switch (error.code) {
          case 'LIMIT_FILE_SIZE':
            return next(
              new AppError(
                'PAYLOAD_TOO_LARGE',
                `The uploaded file is larger than the limit of ${fmtBytes(maxBytes)}; upload a smaller version.`,
                { details: { maxBytes } },
              ),
            );
          case 'LIMIT_UNEXPECTED_FILE':
          case 'LIMIT_FILE_COUNT':
            return next(
              new ValidationError(expected, [{ path: error.field ?? fields[0]!, message: 'unexpected file' }]),
            );
          default:
            return next(
              new ValidationError(`The multipart form was refused: ${error.message}.`, [
                { path: error.field ?? '', message: error.message },
              ]),
            );
        }
      }
      next(new ValidationError('The multipart body could not be read; send a well-formed multipart/form-data body.'));
    });
  };
}
