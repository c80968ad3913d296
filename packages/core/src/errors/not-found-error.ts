import { AppError } from './app-error.js';

/** A named thing (image, job, audit, model) does not exist. */
export class NotFoundError extends AppError {
  constructor(kind: string, id: string) {
    super('NOT_FOUND', `${kind} "${id}" was not found.`, { details: { kind, id } });
    Object.setPrototypeOf(this, new.target.prototype);
  }
}
