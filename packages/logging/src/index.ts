export {
  SECRET_PARAM,
  createLogger,
  redact,
  redactCredentials,
  redactUrl,
  stderrLogger,
  type DestinationStream,
  type Logger,
  type LoggerOptions,
} from './logger.js';
export { closeOnSignals, shutdownLog, type ShutdownLog, type ShutdownMessages } from './shutdown.js';
