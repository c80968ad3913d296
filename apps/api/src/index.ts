export { createApp, servicesDeps, type AppDeps, type ReadinessCheck, type RouteContext } from './app.js';
export { errorHandler, notFoundHandler } from './error-handler.js';
export {
  closeOnSignals,
  shutdownLog,
  startServer,
  type RunningServer,
  type ServerOptions,
  type ShutdownLog,
} from './server.js';
