import { AppError } from './app-error.js';
import type { ValidationIssue } from './validation-error.js';

/** The environment does not describe a runnable configuration. Every bad key is listed in one message. */
export class ConfigError extends AppError {
  readonly issues: readonly ValidationIssue[];

  constructor(issues: readonly ValidationIssue[]) {
    const lines = issues.map((issue) => `  - ${issue.path || '(root)'}: ${issue.message}`);
    super('CONFIG_INVALID', `Configuration is invalid (${issues.length} problem(s)):\n${lines.join('\n')}`, {
      details: { issues },
    });
    Object.setPrototypeOf(this, new.target.prototype);
    this.issues = issues;
  }
}
