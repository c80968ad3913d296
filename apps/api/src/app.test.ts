import { AppError } from '@lookalike/core';
import express from 'express';
import { pino } from 'pino';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createApp } from './app.js';
import { errorHandler } from './error-handler.js';

const logger = pino({ level: 'silent' });

describe(createApp.name, () => {
  it('answers liveness without touching dependencies', async () => {
    const app = createApp({ logger, readiness: [{ name: 'store', check: () => Promise.reject(new Error('down')) }] });
    const res = await request(app).get('/healthz').expect(200);
    expect(res.body).toEqual({ status: 'ok' });
  });

  it('reports readiness per dependency and 503 when one is down', async () => {
    const up = createApp({ logger, readiness: [{ name: 'store', check: () => Promise.resolve() }] });
    expect((await request(up).get('/readyz').expect(200)).body.status).toBe('ready');
    const down = createApp({
      logger,
      readiness: [
        { name: 'store', check: () => Promise.resolve() },
        { name: 'redis', check: () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:1')) },
      ],
    });
    const res = await request(down).get('/readyz').expect(503);
    expect(res.body.checks).toEqual([
      { name: 'store', ok: true },
      { name: 'redis', ok: false, reason: 'connect ECONNREFUSED 127.0.0.1:1' },
    ]);
  });

  it('answers unknown routes with the JSON error shape and sets security headers', async () => {
    const res = await request(createApp({ logger, readiness: [] }))
      .get('/nope')
      .expect(404);
    expect(res.body).toEqual({ error: { code: 'NOT_FOUND', message: 'No route for GET /nope.' } });
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-powered-by']).toBeUndefined();
  });
});

describe('errorHandler', () => {
  const appThrowing = (error: unknown) => {
    const app = express();
    app.use((req, _res, next) => {
      req.log = logger;
      next();
    });
    app.use(express.json({ limit: 64 }));
    app.post('/x', () => {
      throw error;
    });
    app.use(errorHandler);
    return app;
  };

  it('keeps an AppError code and status', async () => {
    const res = await request(appThrowing(new AppError('IMAGE_TOO_MANY_PIXELS', 'too big')))
      .post('/x')
      .expect(413);
    expect(res.body.error.code).toBe('IMAGE_TOO_MANY_PIXELS');
  });

  it('hides internals of unexpected errors', async () => {
    const res = await request(appThrowing(new Error('db password is hunter2')))
      .post('/x')
      .expect(500);
    expect(res.body.error.code).toBe('INTERNAL');
    expect(JSON.stringify(res.body)).not.toContain('hunter2');
  });

  it('turns malformed and oversized JSON into client errors', async () => {
    const app = appThrowing(new Error('unreached'));
    const bad = await request(app).post('/x').set('content-type', 'application/json').send('{"a":').expect(400);
    expect(bad.body.error.code).toBe('VALIDATION_FAILED');
    const big = await request(app)
      .post('/x')
      .set('content-type', 'application/json')
      .send(JSON.stringify({ a: 'x'.repeat(500) }))
      .expect(413);
    expect(big.body.error.code).toBe('PAYLOAD_TOO_LARGE');
  });
});
