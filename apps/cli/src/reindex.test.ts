import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { modelsWith } from '@lookalike/ingest/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// `lookalike reindex`, the demo and `serve` on a data folder made with the committed towers and then run with
// other towers (random weights, another id, a 64 px input, 48 dimensions), as users run them: the built entry
// point in a child process (`npm test` builds first).
const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const exec = promisify(execFile);
const NEW = { ROBUST_MODEL: 'rand-robust-48', CLEAN_MODEL: 'rand-clean-48' };
let dir: string;
let models: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cli-reindex-'));
  models = await modelsWith(join(dir, 'models'), [
    { id: 'rand-robust-48', role: 'robust', dim: 48, size: 64, seed: 1 },
    { id: 'rand-clean-48', role: 'clean', dim: 48, size: 64, seed: 2 },
  ]);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function lookalike(env: Record<string, string>, ...args: string[]) {
  try {
    const { stdout, stderr } = await exec(process.execPath, [main, ...args], {
      env: { ...process.env, MODELS_DIR: models, LOG_LEVEL: 'warn', REDIS_URL: '', QDRANT_URL: '', ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

/** A data folder with a 6-image catalog ingested by the committed towers. */
async function oldData(name: string): Promise<string> {
  const data = join(dir, name);
  const env = { DATA_DIR: data, INGEST_ROOTS: data };
  expect(
    (await lookalike(env, 'synth', '--count', '6', '--seed', '4', '--out', join(data, 'catalog'), '--size', '96')).code,
  ).toBe(0);
  const ingested = await lookalike(env, 'ingest', join(data, 'catalog', 'manifest.jsonl'));
  expect(ingested.stdout).toMatch(/Ingested 6 new images/);
  return data;
}

describe('lookalike reindex', () => {
  it('re-embeds a store made with other towers, which ingest refuses until then with the command to run', async () => {
    const data = await oldData('reindex');
    const env = { DATA_DIR: data, INGEST_ROOTS: data, ...NEW };
    const refused = await lookalike(env, 'ingest', join(data, 'catalog', 'manifest.jsonl'));
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/holds 6 images embedded by defect-cnn-fare4 and defect-cnn-clean/);
    expect(refused.stderr).toContain(`Run \`npx lookalike reindex --data ${data}\``);

    const run = await lookalike(NEW, 'reindex', '--data', data);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/Re-indexing reindex\.lookalike--[0-9a-f]{12}\.1: the 6 images of collection lookalike/);
    expect(run.stdout).toMatch(/: 6 re-embedded from their originals, 0 copied .*, 0 already there, 0 failed\./);
    expect(run.stdout).toMatch(/Search now uses collection lookalike--[0-9a-f]{12} \(6 images\)\./);
    expect(run.stderr).toMatch(/reindex .*6\/6 images/);
    const again = await lookalike(NEW, 'reindex', '--data', data);
    expect(again.stdout).toMatch(
      /The store is up to date: collection lookalike--\w+ holds the vectors of rand-robust-48/,
    );
    expect((await lookalike(env, 'ingest', join(data, 'catalog', 'manifest.jsonl'))).stdout).toMatch(
      /Ingested 0 new images \(6 already present, 0 failed\)/,
    );
  });

  it('reports originals that are gone, does not switch without them unless told to, and prunes the old collection', async () => {
    const data = await oldData('missing');
    const images = join(data, 'catalog', 'images');
    const [gone] = (await readdir(images)).sort();
    await unlink(join(images, gone!));
    const first = await lookalike(NEW, 'reindex', '--data', data);
    expect(first.code).toBe(1);
    expect(first.stdout).toMatch(/5 re-embedded from their originals.*1 failed\./);
    expect(first.stdout).toContain(
      `failed: ${join(images, gone!)}: the original ${join(images, gone!)} does not exist any more [SOURCE_MISSING]`,
    );
    expect(first.stdout).toMatch(
      /Search is not switched to collection lookalike--\w+: 1 images could not be re-embedded/,
    );
    expect(first.stdout).toContain('--accept-failures');

    const accepted = await lookalike(NEW, 'reindex', '--data', data, '--accept-failures', '--prune');
    expect(accepted.code, accepted.stderr).toBe(0);
    expect(accepted.stdout).toMatch(/0 re-embedded .*, 5 already there, 1 failed\./);
    expect(accepted.stdout).toMatch(
      /Search now uses collection lookalike--\w+ \(5 images\)\.\nDeleted the old collections: lookalike\./,
    );
    expect((await readdir(join(data, 'store'))).filter((f) => f.startsWith('lookalike.'))).toEqual([]);
  });
});

describe('lookalike demo on a data folder from before a model change', () => {
  it('re-embeds the folder first, then shows lookalikes as always', async () => {
    const data = join(dir, 'demo');
    const first = await lookalike({}, 'demo', '--data', data, '--count', '4', '--no-serve', '--no-audit');
    expect(first.code, first.stderr).toBe(0);
    const demo = await lookalike(NEW, 'demo', '--data', data, '--count', '4', '--no-serve', '--no-audit');
    expect(demo.code, demo.stderr).toBe(0);
    expect(demo.stdout).toMatch(
      /The store was made with other towers than the configured rand-robust-48 and rand-clean-48 .*; re-embedding its 8 images first\./,
    );
    expect(demo.stdout).toMatch(/8 re-embedded from their originals/);
    expect(demo.stdout).toMatch(/Deleted the old collections: lookalike\./);
    expect(demo.stdout).toMatch(/Ingested 0 new images \(4 already present, 0 failed\)/);
    expect(demo.stdout).toMatch(/Lookalikes of [^\n]+\n {2}robust tower:\n {4,}\d\.\d{3} /);
  });
});

describe('lookalike serve on a store made with other towers', () => {
  it('starts the re-index in the background and answers image searches with 409 until it has switched', async () => {
    const data = await oldData('serve');
    const child = spawn(process.execPath, [main, 'serve', '--port', '0'], {
      env: {
        ...process.env,
        MODELS_DIR: models,
        DATA_DIR: data,
        INGEST_ROOTS: data,
        REDIS_URL: '',
        QDRANT_URL: '',
        ...NEW,
      },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      let base: string | undefined;
      for (let i = 0; i < 600 && !base; i++) {
        await new Promise((r) => setTimeout(r, 100));
        base = /running at (http:\/\/127\.0\.0\.1:\d+)\//.exec(out)?.[1];
      }
      expect(base, out).toBeDefined();
      expect(out).toMatch(
        /a re-index has started \(reindex\.lookalike--\w+\.1\) into collection lookalike--\w+ in this process/,
      );
      const image = (await readdir(join(data, 'catalog', 'images'))).sort()[0]!;
      const { readFile } = await import('node:fs/promises');
      const bytes = await readFile(join(data, 'catalog', 'images', image));
      const statuses: number[] = [];
      for (let i = 0; i < 120; i++) {
        const form = new FormData();
        form.append('image', new Blob([bytes], { type: 'image/png' }), image);
        const res = await fetch(`${base}/v1/search`, { method: 'POST', body: form });
        statuses.push(res.status);
        const body = (await res.json()) as {
          error?: { code: string; details: { reason: string } };
          hits?: { score: number }[];
        };
        if (res.status === 200) {
          expect(body.hits![0]!.score).toBeGreaterThan(0.999);
          break;
        }
        expect(res.status).toBe(409);
        expect(body.error).toMatchObject({ code: 'CONFLICT', details: { reason: 'REINDEX_REQUIRED' } });
        await new Promise((r) => setTimeout(r, 500));
      }
      expect(statuses.at(-1), out).toBe(200);
      expect(out).toMatch(/The re-index into collection lookalike--\w+ completed/);
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  });
});
