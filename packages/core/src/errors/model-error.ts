import { AppError, type AppErrorOptions } from './app-error.js';

/** A model file or manifest is missing, corrupt, or does not match what the code expects. */
export class ModelError extends AppError {
  constructor(message: string, options: AppErrorOptions = {}) {
    super('MODEL_INVALID', message, options);
    Object.setPrototypeOf(this, new.target.prototype);
  }
}
