import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

// The CLI is tested as users run it: the built entry point in a child process (`npm test` builds first).
const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const run = promisify(execFile);
const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function cliEnv(
  env: Record<string, string>,
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [main, ...args], { env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

const cli = (...args: string[]) => cliEnv({}, ...args);

describe('lookalike synth', () => {
  it('writes a catalog with twins and reports what it made', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cli-synth-'));
    dirs.push(dir);
    const out = join(dir, 'catalog');
    const { code, stdout, stderr } = await cli(
      'synth',
      '--count',
      '4',
      '--seed',
      '3',
      '--out',
      out,
      '--twins',
      '--size',
      '64',
    );
    expect(code).toBe(0);
    expect(stdout).toMatch(/Wrote 8 png images \(4 items with edited twins, 64×64, seed 3\)/);
    expect(stderr).toContain('synth: 4/4 (100%)');
    const lines = (await readFile(join(out, 'manifest.jsonl'), 'utf8')).trim().split('\n');
    expect(lines).toHaveLength(4);
  });

  it('refuses bad flags and a non-empty folder with a clear message and a non-zero exit', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cli-synth-'));
    dirs.push(dir);
    const bad = await cli('synth', '--count', 'ten', '--out', dir);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('--count must be a whole number');
    const format = await cli('synth', '--format', 'gif', '--out', dir);
    expect(format.stderr).toMatch(/Allowed choices are png, jpeg/);
    await cli('synth', '--count', '1', '--out', dir, '--size', '32');
    const again = await cli('synth', '--count', '1', '--out', dir, '--size', '32');
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/is not empty/);
  });
});

// The committed tiny towers; the CLI reads MODELS_DIR like any deployment.
const MODELS = fileURLToPath(new URL('../../../models/', import.meta.url));

describe('lookalike ingest', () => {
  it('ingests a folder into the embedded store, reports bad files, and adds nothing the second time', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cli-ingest-'));
    dirs.push(dir);
    await cli('synth', '--count', '5', '--seed', '8', '--out', join(dir, 'catalog'), '--size', '96');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(dir, 'catalog', 'images', 'broken.png'), 'not a png');
    const env = { DATA_DIR: dir, INGEST_ROOTS: dir, MODELS_DIR: MODELS };
    const first = await cliEnv(env, 'ingest', join(dir, 'catalog', 'images'));
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/Ingested 5 new images \(0 already present, 1 failed\) of 6/);
    expect(first.stdout).toMatch(/failed: .*broken\.png: the file is text, not an image.* \[IMAGE_NOT_AN_IMAGE\]/);
    const second = await cliEnv(env, 'ingest', join(dir, 'catalog', 'images'));
    expect(second.stdout).toMatch(/Ingested 0 new images \(5 already present, 1 failed\) of 6 .* holds 5 images/);
    const outside = await cliEnv(env, 'ingest', tmpdir());
    expect(outside.code).not.toBe(0);
    expect(outside.stderr).toMatch(/outside the folders ingest may read/);
  });
});
