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
import type { launchChromium } from '@lookalike/testkit';
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

/** playwright-core's types through testkit's launcher: this package lists no browser driver of its own. */
export type Browser = Awaited<ReturnType<typeof launchChromium>>;
export type Page = Awaited<ReturnType<Browser['newPage']>>;

/** One page per test, in a context of its own; every console error (CSP violations, failed loads) is recorded. */
export class TestPages {
  /** What the open page logged as an error; a test may drop what it expects before {@link close}. */
  problems: string[] = [];
  private page: Page | undefined;

  constructor(private readonly browser: () => Browser) {}

  /** Opens `url` in a new 1400 × 900 page. */
  async open(url: string): Promise<Page> {
    const context = await this.browser().newContext({ viewport: { width: 1400, height: 900 } });
    const opened = await context.newPage();
    this.page = opened;
    this.problems = [];
    opened.on('console', (message) => {
      if (message.type() === 'error') this.problems.push(`console: ${message.text()}`);
    });
    opened.on('pageerror', (error) => this.problems.push(`page error: ${error.message}`));
    await opened.goto(url);
    return opened;
  }

  /** Closes the page (call it after each test) and fails the test if it logged an error. */
  async close(): Promise<void> {
    if (!this.page) return;
    await this.page.context().close();
    this.page = undefined;
    expect(this.problems).toEqual([]);
  }
}
