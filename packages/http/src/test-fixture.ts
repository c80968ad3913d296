/**
 * Real components for the API tests: a small synthetic catalog ingested by `createServices` (the committed tiny
 * towers, the embedded store in a temp folder, the in-process runner or BullMQ), and apps built on them.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32 } from 'node:zlib';
import { parseConfig, type Config } from '@lookalike/core';
import { getRunStatus, isRunStatus, type RunStatus } from '@lookalike/ingest';
import type { JobRunner } from '@lookalike/queue';
import { createServices, type Services } from '@lookalike/services';
import { generateCatalog, type ManifestRecord } from '@lookalike/synth';
import type { Express } from 'express';
import { pino } from 'pino';
import { createApp, servicesDeps, type AppDeps } from './app.js';

export const MODELS = fileURLToPath(new URL('../../../models/', import.meta.url));
export const logger = pino({ level: 'silent' });

/** A catalog in the store and the services that hold it. */
export interface Fixture {
  dir: string;
  services: Services;
  records: ManifestRecord[];
  /** The file of a catalog record. */
  file(record: ManifestRecord): string;
  /** An app on these services; `env` changes the API settings (keys, limits) of this app only. */
  app(env?: Record<string, string>, extra?: Partial<AppDeps>): Express;
  config(env?: Record<string, string>): Config;
  close(): Promise<void>;
}

/** Polls the run until it and all its batches have finished. */
export async function waitForRun(runner: JobRunner, runId: string, timeoutMs = 30_000): Promise<RunStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await getRunStatus(runner, runId);
    if (status && isRunStatus(status) && (status.state === 'completed' || status.state === 'failed')) return status;
    if (Date.now() > deadline) throw new Error(`run ${runId} did not finish: ${JSON.stringify(status)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Builds the services on a fresh folder and ingests a `count`-image catalog (96 px PNGs) from its manifest. */
export async function buildFixture(
  options: { count?: number; seed?: number; env?: Record<string, string> } = {},
): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'api-'));
  const baseEnv = { DATA_DIR: dir, MODELS_DIR: MODELS, LOG_LEVEL: 'silent', ...options.env };
  const config = (env: Record<string, string> = {}) => parseConfig({ ...baseEnv, ...env });
  const seed = options.seed ?? 5;
  await generateCatalog({ count: options.count ?? 40, seed, outDir: join(dir, 'catalog'), size: 96 });
  const records = (await readFile(join(dir, 'catalog', 'manifest.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as ManifestRecord);
  const services = await createServices(config());
  try {
    const runId = `fixture-${seed}`;
    await services.runner.enqueue(
      'ingest-run',
      { runId, source: { kind: 'manifest', location: join(dir, 'catalog', 'manifest.jsonl') }, batchSize: 20 },
      { jobId: runId },
    );
    await waitForRun(services.runner, runId);
  } catch (error) {
    await services.close();
    throw error;
  }
  const fixture: Fixture = {
    dir,
    services,
    records,
    file: (record) => join(dir, 'catalog', record.file),
    config,
    app: (env = {}, extra = {}) =>
      createApp({
        config: config(env),
        logger,
        ...servicesDeps(services),
        ...extra,
      }),
    async close() {
      await services.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return fixture;
}

/**
 * A PNG that is only a header declaring `width` × `height` pixels: a decompression bomb's calling card. Decoders
 * that trusted the header would allocate width × height × 3 bytes.
 */
export function pngHeaderOnly(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.writeUInt8(8, 8); // bit depth
  ihdr.writeUInt8(2, 9); // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', Buffer.from([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
