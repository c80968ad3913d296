/**
 * What the browser tests share: a real app served over real services on a free port, and an ingest through the job
 * runner that waits for the run.
 */
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseConfig } from '@lookalike/core';
import { createApp, servicesDeps, type AppDeps } from '@lookalike/http';
import { getRunStatus } from '@lookalike/ingest';
import type { Services } from '@lookalike/services';
import { pino } from 'pino';
import { expect } from 'vitest';
import { webRoot } from '../../src/index.js';

/** Serves a real app over `services` with the settings `vars` on a free port; records the server in `servers`. */
export async function serveApp(
  services: Services,
  vars: Record<string, string>,
  servers: Server[],
  extra: Partial<AppDeps> = {},
): Promise<string> {
  const app = createApp({
    ...servicesDeps(services),
    logger: pino({ level: 'silent' }),
    webRoot,
    config: parseConfig(vars),
    ...extra,
  });
  const listening = app.listen(0, '127.0.0.1');
  await once(listening, 'listening');
  servers.push(listening);
  return `http://127.0.0.1:${(listening.address() as AddressInfo).port}`;
}

/** Closes a server and its open connections. */
export async function stopServer(s: Server): Promise<void> {
  s.closeAllConnections();
  await new Promise((resolve) => s.close(resolve));
}

/** Ingests a manifest through the job runner, as the CLI and the API do, and waits until all `expected` are done. */
export async function ingestManifest(services: Services, manifest: string, expected: number): Promise<void> {
  const runId = crypto.randomUUID();
  const source = { kind: 'manifest', location: manifest } as const;
  await services.runner.enqueue('ingest-run', { runId, source, batchSize: 16 }, { jobId: runId });
  for (let waited = 0; waited < 45_000; waited += 100) {
    const status = await getRunStatus(services.runner, runId);
    if (status?.state === 'failed') throw new Error(`The ingest run failed: ${JSON.stringify(status)}`);
    if (status && 'done' in status && status.state === 'completed') {
      expect(status.done, JSON.stringify(status.failed)).toBe(expected);
      await services.store.optimize?.();
      return;
    }
    await sleep(100);
  }
  throw new Error('The ingest run did not finish in 45 s.');
}
