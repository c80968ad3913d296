import { AppError, type AppErrorOptions, type ErrorCode } from './app-error.js';

/** Why an image was refused. Each reason is also the error's stable code. */
export type ImageRejectionCode = Extract<
  ErrorCode,
  | 'IMAGE_EMPTY'
  | 'IMAGE_TRUNCATED'
  | 'IMAGE_NOT_AN_IMAGE'
  | 'IMAGE_UNSUPPORTED_FORMAT'
  | 'IMAGE_TOO_MANY_BYTES'
  | 'IMAGE_TOO_MANY_PIXELS'
  | 'IMAGE_DECODE_FAILED'
>;

/**
 * Untrusted image bytes were refused before or during decoding. The message says what was wrong and, where
 * there is one, the limit that applies, so the uploader can fix the file.
 */
export class ImageRejectedError extends AppError {
  declare readonly code: ImageRejectionCode;

  constructor(code: ImageRejectionCode, message: string, options: AppErrorOptions = {}) {
    super(code, message, options);
    Object.setPrototypeOf(this, new.target.prototype);
  }
}
