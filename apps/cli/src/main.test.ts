import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI_MAIN as main, MODELS, runCli } from './testing.js';

// The CLI is tested as users run it: the built entry point in a child process (`npm test` builds first).
const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

const cliEnv = runCli;
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

  it('writes a distorted copy of every item with its distortions and quality target', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cli-synth-'));
    dirs.push(dir);
    const out = join(dir, 'catalog');
    const { code, stdout } = await cli(
      'synth',
      '--count',
      '3',
      '--seed',
      '5',
      '--out',
      out,
      '--distort',
      '--size',
      '64',
    );
    expect(code).toBe(0);
    expect(stdout).toMatch(/a distorted copy each \(distorted\.jsonl\)/);
    const lines = (await readFile(join(out, 'distorted.jsonl'), 'utf8')).trim().split('\n');
    expect(lines).toHaveLength(3);
    for (const line of lines) {
      const d = JSON.parse(line) as { id: string; file: string; distortions: { severity: number }[]; quality: number };
      expect(d.id).toMatch(/-q$/);
      expect(d.distortions.length).toBeGreaterThan(0);
      // The target is the product of (1 − severity) over its distortions.
      expect(d.quality).toBeCloseTo(
        d.distortions.reduce((q, x) => q * (1 - x.severity), 1),
        3,
      );
      expect((await readFile(join(out, d.file))).subarray(1, 4).toString()).toBe('PNG');
    }
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
    // The robust tower's quality model (QUALITY=robust, the default) scored every new image.
    expect(first.stdout).toMatch(/Image quality: 5 images scored, [0-5] graded low/);
    const second = await cliEnv(env, 'ingest', join(dir, 'catalog', 'images'));
    expect(second.stdout).toMatch(/Ingested 0 new images \(5 already present, 1 failed\) of 6 .* holds 5 images/);
    const outside = await cliEnv(env, 'ingest', tmpdir());
    expect(outside.code).not.toBe(0);
    expect(outside.stderr).toMatch(/outside the folders ingest may read/);
  });
});

describe('lookalike jobs', () => {
  it('says there is no shared queue without Redis, and counts the BullMQ queues with it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cli-jobs-'));
    dirs.push(dir);
    const env = { DATA_DIR: dir, INGEST_ROOTS: dir, MODELS_DIR: MODELS, LOG_LEVEL: 'silent' };
    const without = await cliEnv({ ...env, REDIS_URL: '' }, 'jobs');
    expect(without.code, without.stderr).toBe(0);
    expect(without.stdout).toMatch(/No REDIS_URL: .*no shared queue to count/);
    const prefix = `cli-jobs-${process.pid}-${Date.now()}`;
    const withRedis = await cliEnv({ ...env, REDIS_URL: 'redis://127.0.0.1:6379', QUEUE_PREFIX: prefix }, 'jobs');
    expect(withRedis.code, withRedis.stderr).toBe(0);
    const counts = JSON.parse(withRedis.stdout) as Record<string, Record<string, number>>;
    expect(Object.keys(counts)).toContain('ingest');
    for (const queue of Object.values(counts))
      expect(queue).toEqual({ waiting: 0, active: 0, completed: 0, failed: 0, delayed: 0 });
  });
});

/** Starts the CLI and resolves with the first match of `ready` on stdout, or rejects when it exits first. */
function startUntil(
  env: Record<string, string>,
  ready: RegExp,
  ...args: string[]
): Promise<{ child: ChildProcessWithoutNullStreams; match: RegExpExecArray; output: () => string }> {
  const child = spawn(process.execPath, [main, ...args], { env: { ...process.env, ...env } });
  let out = '';
  const output = () => out;
  return new Promise((resolveStart, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${String(ready)} within 50 s:\n${out}`)), 50_000);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const match = ready.exec(out);
      if (match) {
        clearTimeout(timer);
        resolveStart({ child, match, output });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before ${String(ready)}:\n${out}`));
    });
  });
}

describe('lookalike demo', () => {
  // With its quick audit (APGD-20, five budgets, both towers) the run takes over a minute on two busy cores.
  it('ingests the sample catalog and prints lookalikes, then exits with --no-serve', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cli-demo-'));
    dirs.push(dir);
    const res = await cliEnv({ MODELS_DIR: MODELS }, 'demo', '--data', dir, '--count', '6', '--no-serve');
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/Ingested 6 new images/);
    expect(res.stdout).toMatch(/of 6 re-photographed parts, \d+ joined the group of their own original/);
    // A defective part, its labels, each tower's lookalikes with theirs, and how many share its defect — counts
    // checked against the hits printed above them (6 items and a re-render of each: the query's top 10 of the other 11).
    const query = /Lookalikes of \S+, part (.+?), defect (.+?) \("[^"]+"\):/.exec(res.stdout);
    expect(query, res.stdout).not.toBeNull();
    const [, part, defect] = query!;
    expect(defect).not.toBe('none');
    for (const tower of ['robust', 'clean']) {
      const block = new RegExp(`  ${tower} tower:\\n((?:    .*\\n)+)  (${tower} tower: .*)`).exec(res.stdout);
      expect(block, res.stdout).not.toBeNull();
      const hits = block![1]!
        .trimEnd()
        .split('\n')
        .map((line) => /^ {4} ?-?\d\.\d{3} {2}(.+?) \/ (.+?) {2}/.exec(line)!.slice(1));
      expect(hits).toHaveLength(10);
      const same = hits.filter(([, d]) => d === defect).length;
      const both = hits.filter(([p, d]) => p === part && d === defect).length;
      expect(block![2]).toBe(
        `${tower} tower: ${same} of 10 share its defect (${defect}), ${both} of 10 share part+defect (${part} / ${defect}).`,
      );
    }
    // The quick audit, so the audits page has one.
    expect(res.stdout).toMatch(/A quick robustness audit of both towers/);
    expect(res.stdout).toMatch(/Under APGD-20 at ε = 4\/255 \(ℓ∞\), the robust tower keeps [\d.]+ % of its top-10/);
    expect(res.stdout).toMatch(/Report: \S+report\.html/);
    expect(res.stdout).not.toMatch(/is running at/);
  }, 180_000);

  it('serves the web UI and the API until SIGTERM, then exits cleanly', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cli-demo-'));
    dirs.push(dir);
    const { child, match, output } = await startUntil(
      { MODELS_DIR: MODELS },
      /Lookalike is running at (http:\/\/127\.0\.0\.1:\d+\/)/,
      'demo',
      '--data',
      dir,
      '--count',
      '6',
      '--port',
      '0',
      '--no-audit',
    );
    const base = match[1]!;
    const search = await fetch(new URL('/v1/search', base), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'a gear with a crack', k: 3 }),
    });
    expect(search.status).toBe(200);
    const body = (await search.json()) as { hits: { thumbnailUrl: string }[] };
    expect(body.hits).toHaveLength(3);
    expect((await fetch(new URL(body.hits[0]!.thumbnailUrl, base))).headers.get('content-type')).toBe('image/jpeg');
    const page = await fetch(base);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await exited, output()).toBe(0);
    expect(output()).toMatch(/Received SIGTERM; finishing in-flight requests[^]*Lookalike stopped\./);
  });
});

describe('lookalike serve', () => {
  it('serves the configured store and refuses a port that is taken with a clear message', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cli-serve-'));
    dirs.push(dir);
    const env = { DATA_DIR: dir, MODELS_DIR: MODELS, LOG_LEVEL: 'warn' };
    const { child, match, output } = await startUntil(
      env,
      /running at http:\/\/127\.0\.0\.1:(\d+)\//,
      'serve',
      '--port',
      '0',
    );
    const port = match[1]!;
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect(ready.status).toBe(200);
    const taken = await cliEnv(env, 'serve', '--port', port);
    expect(taken.code).toBe(2);
    expect(taken.stderr).toMatch(/cannot listen on 127\.0\.0\.1:\d+ \(EADDRINUSE\)/);
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGINT');
    expect(await exited, output()).toBe(0);
  });
});
