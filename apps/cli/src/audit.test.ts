import { execFile } from 'node:child_process';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// `lookalike audit` as users run it: the built entry point on a small catalog ingested by `lookalike ingest`.
const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const MODELS = fileURLToPath(new URL('../../../models/', import.meta.url));
const run = promisify(execFile);
let dir: string;

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, MODELS_DIR: MODELS, REDIS_URL: '', QDRANT_URL: '', LOG_LEVEL: 'silent' };
  try {
    const { stdout, stderr } = await run(process.execPath, [main, ...args], { env });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cli-audit-'));
  expect((await cli('synth', '--out', join(dir, 'catalog'), '--count', '30', '--seed', '3', '--size', '96')).code).toBe(
    0,
  );
  const env = { DATA_DIR: dir, INGEST_ROOTS: dir };
  const ingest = await run(process.execPath, [main, 'ingest', join(dir, 'catalog', 'manifest.jsonl')], {
    env: { ...process.env, ...env, MODELS_DIR: MODELS, REDIS_URL: '', QDRANT_URL: '' },
  });
  expect(ingest.stdout).toMatch(/the store now holds 30 images/);
}, 120_000);

afterAll(() => rm(dir, { recursive: true, force: true }));

describe('lookalike audit', () => {
  it('attacks both towers, prints robust vs clean per budget, and stores the report', async () => {
    const { code, stdout, stderr } = await cli(
      'audit',
      '--data',
      dir,
      '--queries',
      '6',
      '--eps',
      '0,4/255',
      '--steps',
      '10',
      '--targeted',
      '2',
      '--batch-size',
      '3',
    );
    expect(stderr).not.toMatch(/Error/);
    expect(code).toBe(0);
    expect(stdout).toMatch(
      /Under APGD-10 at ε = 4\/255 \(ℓ∞\), the robust tower keeps [\d.]+ % of its top-10 neighbours/,
    );
    expect(stdout).toMatch(/overlap@10\s+robust\s+100\.0%\s+[\d.]+%/);
    expect(stdout).toMatch(/6 queries/);
    const report = /Report: (\S+report\.html)/.exec(stdout)?.[1];
    expect(report).toBeDefined();
    await access(report!);
  }, 180_000);

  it('refuses a budget that is not one, with a clear message and no audit', async () => {
    const { code, stderr } = await cli('audit', '--data', dir, '--eps', '0,four/255');
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/--eps takes budgets such as 0,1\/255,4\/255 in \[0,1\]; "four\/255" is not one\./);
  });
});
