/**
 * Stable error codes. Clients may switch on these; they never change meaning once released.
 */
export const ERROR_CODES = {
  VALIDATION_FAILED: 400,
  CONFIG_INVALID: 500,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  CROSS_SITE_REFUSED: 403,
  HOST_NOT_ALLOWED: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  IMAGE_EMPTY: 422,
  IMAGE_TRUNCATED: 422,
  IMAGE_NOT_AN_IMAGE: 415,
  IMAGE_UNSUPPORTED_FORMAT: 415,
  IMAGE_TOO_MANY_BYTES: 413,
  IMAGE_TOO_MANY_PIXELS: 413,
  IMAGE_DECODE_FAILED: 422,
  MODEL_INVALID: 500,
  STORE_UNAVAILABLE: 503,
  QUEUE_UNAVAILABLE: 503,
  AUDITS_UNAVAILABLE: 503,
  INTERNAL: 500,
} as const;

/** One of the stable error codes in {@link ERROR_CODES}. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** Options shared by every {@link AppError}. */
export interface AppErrorOptions {
  /** Machine-readable context a client may show or act on (limits, offending keys, …). Never secrets. */
  details?: Record<string, unknown>;
  /** The lower-level error that caused this one; logged, never sent to clients. */
  cause?: unknown;
}

/**
 * Base of every error Lookalike raises on purpose. It carries a stable {@link ErrorCode}, the HTTP status that
 * code maps to, and a message written for the person who has to act on it.
 */
export class AppError extends Error {
  /** Stable code, e.g. `IMAGE_TOO_MANY_PIXELS`. */
  readonly code: ErrorCode;
  /** HTTP status the API answers with. */
  readonly status: number;
  /** Structured context for clients and logs. */
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    Object.setPrototypeOf(this, new.target.prototype);
    this.name = new.target.name;
    this.code = code;
    this.status = ERROR_CODES[code];
    this.details = options.details;
  }

  /** The shape the API sends: `{ error: { code, message, details? } }`. */
  toJSON(): { error: { code: ErrorCode; message: string; details?: Record<string, unknown> } } {
    return {
      error: { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) },
    };
  }
}

/** True when `error` is an {@link AppError} (also across package copies, by shape). */
export function isAppError(error: unknown): error is AppError {
  return (
    error instanceof AppError ||
    (error instanceof Error &&
      typeof (error as Partial<AppError>).code === 'string' &&
      (error as Partial<AppError>).code! in ERROR_CODES &&
      typeof (error as Partial<AppError>).status === 'number')
  );
}
