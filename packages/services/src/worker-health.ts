import { once } from 'node:events';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Services } from './index.js';
import { dependencyChecks, runReadiness, type ReadinessCheck } from './readiness.js';

/** The worker process's small listener; {@link WorkerHealthServer.close} stops it. */
export interface WorkerHealthServer {
  /** `http://host:port`, the port the system gave when 0 was asked for. */
  url: string;
  close(): Promise<void>;
}

/**
 * Serves the worker's own `/healthz` (the process answers), `/readyz` (Redis, the store and the models answer, and
 * each of its BullMQ workers is running: 200 or 503 with the failing checks) and `/metrics` (Prometheus: job
 * durations and outcomes per queue, the process's default metrics) on `host:port`. It answers GET only, and
 * nothing else: it is meant for the container's health check and a scraper on a private network, not for clients.
 */
export async function startWorkerHealth(
  services: Pick<Services, 'config' | 'store' | 'runner' | 'encoders' | 'text' | 'monitor'>,
  listen: { host: string; port: number },
): Promise<WorkerHealthServer> {
  const checks: ReadinessCheck[] = [
    ...dependencyChecks(services),
    {
      name: 'workers',
      check: () => {
        const workers = services.monitor?.running() ?? [];
        if (workers.length === 0) return Promise.reject(new Error('no BullMQ worker in this process'));
        const stopped = workers.filter((w) => !w.running).map((w) => w.queue);
        return stopped.length ? Promise.reject(new Error(`not running: ${stopped.join(', ')}`)) : Promise.resolve();
      },
    },
  ];
  const send = (res: ServerResponse, status: number, type: string, body: string) => {
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' }).end(body);
  };
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return send(res, 405, 'application/json', JSON.stringify({ error: { code: 'METHOD_NOT_ALLOWED' } }));
    if (path === '/healthz') return send(res, 200, 'application/json', JSON.stringify({ status: 'ok' }));
    if (path === '/readyz') {
      void runReadiness(checks).then(({ ready, checks: results }) => {
        const body = JSON.stringify({ status: ready ? 'ready' : 'not ready', checks: results });
        send(res, ready ? 200 : 503, 'application/json', body);
      });
      return;
    }
    if (path === '/metrics' && services.monitor) {
      const { registry } = services.monitor;
      void registry.metrics().then(
        (text) => send(res, 200, registry.contentType, text),
        (error: unknown) => send(res, 500, 'text/plain', String(error)),
      );
      return;
    }
    send(res, 404, 'application/json', JSON.stringify({ error: { code: 'NOT_FOUND', message: `no route ${path}` } }));
  });
  server.listen(listen.port, listen.host);
  await once(server, 'listening');
  const { address, port } = server.address() as AddressInfo;
  return {
    url: `http://${address.includes(':') ? `[${address}]` : address}:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}
