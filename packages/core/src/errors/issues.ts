import type { ValidationIssue } from './validation-error.js';

/** What a schema library reports per problem (zod's `ZodIssue` has this shape): a path of keys and a message. */
export interface SchemaIssue {
  readonly path: readonly PropertyKey[];
  readonly message: string;
}

/** Schema issues as {@link ValidationIssue}s: the path joined with dots (`filter.must.0.field`), empty for the root. */
export function toValidationIssues(issues: readonly SchemaIssue[]): ValidationIssue[] {
  return issues.map((issue) => ({ path: issue.path.map(String).join('.'), message: issue.message }));
}

/**
 * Issues on one line, the way every error message of the project lists them: `path: message` joined with `; `, a
 * problem with the whole value as its message alone.
 */
export function formatIssues(issues: readonly (ValidationIssue | SchemaIssue)[]): string {
  return issues
    .map((issue) => {
      const path = typeof issue.path === 'string' ? issue.path : issue.path.map(String).join('.');
      return path ? `${path}: ${issue.message}` : issue.message;
    })
    .join('; ');
}
