export { AppError, ERROR_CODES, isAppError, type AppErrorOptions, type ErrorCode } from './app-error.js';
export { ConfigError } from './config-error.js';
export { ImageRejectedError, type ImageRejectionCode } from './image-rejected-error.js';
export { ModelError } from './model-error.js';
export { NotFoundError } from './not-found-error.js';
export { UnavailableError } from './unavailable-error.js';
export { ValidationError, type ValidationIssue } from './validation-error.js';
export { formatIssues, toValidationIssues, type SchemaIssue } from './issues.js';
