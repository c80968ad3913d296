import { AppError, type AppErrorOptions } from './app-error.js';

/** One problem found while validating input: where it is and what is wrong with it. */
export interface ValidationIssue {
  /** Dotted path of the offending field, e.g. `filter.must.0.field`; empty for the whole value. */
  path: string;
  message: string;
}

/** Input that failed validation. Lists every problem at once so a caller can fix them in one go. */
export class ValidationError extends AppError {
  readonly issues: readonly ValidationIssue[];

  constructor(message: string, issues: readonly ValidationIssue[] = [], options: AppErrorOptions = {}) {
    super('VALIDATION_FAILED', message, { ...options, details: { ...options.details, issues } });
    Object.setPrototypeOf(this, new.target.prototype);
    this.issues = issues;
  }
}
