import { AppError } from '@lookalike/core';

/**
 * The store's vectors were made by other towers (model ids, preprocessing or dimension) than the configured ones, so
 * they cannot be compared with what the configured towers embed: the store has to be re-embedded first, by
 * {@link ReindexRequiredError.command} or by a re-index job already running (`details.reindex` then says how far it
 * is). Answered as 409 `CONFLICT`.
 */
export class ReindexRequiredError extends AppError {
  /** The command that re-embeds the store, e.g. `npx lookalike reindex --data data/demo`. */
  readonly command: string;

  constructor(message: string, options: { command: string; details?: Record<string, unknown> }) {
    super('CONFLICT', message, {
      details: { reason: 'REINDEX_REQUIRED', command: options.command, ...options.details },
    });
    Object.setPrototypeOf(this, new.target.prototype);
    this.command = options.command;
  }
}
