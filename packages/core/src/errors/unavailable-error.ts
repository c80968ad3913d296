import { AppError, type AppErrorOptions } from './app-error.js';

/**
 * A backing service (vector store, Redis) cannot be reached or refused the request for a transient reason.
 * Jobs let this propagate so their retry policy applies.
 */
export class UnavailableError extends AppError {
  constructor(service: 'store' | 'queue', message: string, options: AppErrorOptions = {}) {
    super(service === 'store' ? 'STORE_UNAVAILABLE' : 'QUEUE_UNAVAILABLE', message, options);
    Object.setPrototypeOf(this, new.target.prototype);
  }
}
