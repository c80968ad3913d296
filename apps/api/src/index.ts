export { createApp, type AppDeps, type ReadinessCheck } from './app.js';
export { errorHandler, notFoundHandler } from './error-handler.js';
