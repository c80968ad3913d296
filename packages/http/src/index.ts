export { createApp, servicesDeps, type AppDeps, type ReadinessCheck, type RouteContext } from './app.js';
export { errorHandler, notFoundHandler } from './error-handler.js';
export { startServer, type RunningServer, type ServerOptions } from './server.js';
