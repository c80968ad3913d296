#!/usr/bin/env node
import { loadConfig } from '@lookalike/core';
import { pino } from 'pino';
import { createApp } from './app.js';

// Composition root: read the configuration once, build the adapters, serve, and shut down in a fixed order.
const config = loadConfig(process.env);
const logger = pino({ level: config.logLevel });
const app = createApp({ logger, readiness: [] });
const server = app.listen(config.api.port, config.api.host, () => {
  logger.info(`Lookalike API listening on http://${config.api.host}:${config.api.port}.`);
});

let stopping = false;
function shutdown(signal: string): void {
  if (stopping) return;
  stopping = true;
  logger.info(`Received ${signal}; closing the HTTP server.`);
  server.close((error) => {
    if (error) logger.error({ err: error }, 'HTTP server closed with an error.');
    process.exit(error ? 1 : 0);
  });
  server.closeIdleConnections();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
