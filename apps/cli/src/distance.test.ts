import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ManifestRecord } from '@lookalike/synth';
import { MODELS, runCli } from './testing.js';

// `lookalike distance` and `lookalike calibrate-distance` as users run them: the built entry point in a child
// process, on the committed towers.

let dir: string;
let env: Record<string, string>;
let records: ManifestRecord[];

const cli = (...args: string[]) => runCli(env, ...args);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cli-distance-'));
  env = { DATA_DIR: join(dir, 'data'), INGEST_ROOTS: dir, MODELS_DIR: MODELS, LOG_LEVEL: 'silent' };
  const synth = await cli(
    'synth',
    '--count',
    '6',
    '--seed',
    '8',
    '--rerenders',
    '1',
    '--twins',
    '--size',
    '96',
    '--out',
    join(dir, 'catalog'),
  );
  expect(synth.stdout).toMatch(
    /Wrote 18 png images \(6 items with edited twins, 1 re-render each, the compressed ones as JPEG, 96×96, seed 8\)/,
  );
  records = (await readFile(join(dir, 'catalog', 'manifest.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as ManifestRecord);
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const file = (relative: string) => join(dir, 'catalog', relative);

describe('lookalike distance', () => {
  it("prints both towers' distances and verdicts of two files, and the same as JSON", async () => {
    const r = records[0]!;
    const text = await cli('distance', file(r.file), file(r.rerenders![0]!.file));
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^Verdict \(robust tower\): (same item|same kind|different)\n/);
    expect(text.stdout).toMatch(
      /robust defect-cnn-fare4 +distance 0\.\d{4} +(same item|same kind|different) +\(same item ≤/,
    );
    expect(text.stdout).toMatch(/clean +defect-cnn-clean +distance 0\.\d{4}/);
    const json = await cli('distance', '--json', file(r.file), file(r.file));
    const result = JSON.parse(json.stdout) as {
      verdict: string;
      towers: Record<string, { distance: number; calibration: unknown }>;
    };
    expect(result.verdict).toBe('same item');
    for (const tower of Object.values(result.towers)) {
      expect(tower.distance).toBeLessThan(1e-5);
      expect(tower.calibration).not.toBeNull();
    }
  });

  it('compares a stored image by id with a file once the catalog is ingested', async () => {
    expect((await cli('ingest', join(dir, 'catalog'))).code).toBe(0);
    const { createHash } = await import('node:crypto');
    const r = records[1]!;
    const id = createHash('sha256')
      .update(await readFile(file(r.file)))
      .digest('hex');
    const byId = JSON.parse((await cli('distance', '--json', id, file(r.twin!.file))).stdout) as {
      towers: Record<string, { distance: number }>;
    };
    const byFile = JSON.parse(
      (await cli('distance', '--json', file(r.file), file(r.twin!.file))).stdout,
    ) as typeof byId;
    for (const role of ['robust', 'clean'])
      expect(byId.towers[role]!.distance).toBeCloseTo(byFile.towers[role]!.distance, 5);
    const unknown = await cli('distance', 'f'.repeat(64), file(r.file));
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/image "f{64}"/);
  });

  it('refuses what is neither a file nor an id, with a clear message', async () => {
    const bad = await cli('distance', join(dir, 'missing.png'), file(records[0]!.file));
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/missing\.png is neither a readable image file nor an image id/);
  });
});

describe('lookalike calibrate-distance', () => {
  it('fits thresholds on one seed, reports them on another and writes them beside each tower', async () => {
    // A copy of the committed towers, so the test writes its calibration there and nowhere else.
    const models = join(dir, 'models');
    await cp(MODELS, models, { recursive: true, filter: (src) => !src.includes('/training') });
    const out = await runCli(
      { ...env, MODELS_DIR: models },
      'calibrate-distance',
      '--count',
      '24',
      '--seed',
      '41',
      '--held-out-seed',
      '42',
    );
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toMatch(/fitted on seed 41, reported on seed 42/);
    for (const model of ['defect-cnn-fare4', 'defect-cnn-clean']) {
      expect(out.stdout).toContain(`written to ${join(models, model, 'distance-calibration.json')}`);
      const written = JSON.parse(await readFile(join(models, model, 'distance-calibration.json'), 'utf8')) as {
        fit: { seed: number; items: number };
        heldOut: { seed: number };
      };
      expect(written.fit).toMatchObject({ seed: 41, items: 24 });
      expect(written.heldOut.seed).toBe(42);
    }
    // The towers now serve the new thresholds.
    const served = await runCli(
      { ...env, MODELS_DIR: models },
      'distance',
      '--json',
      file(records[0]!.file),
      file(records[2]!.file),
    );
    const result = JSON.parse(served.stdout) as { towers: { robust: { calibration: { fitSeed: number } } } };
    expect(result.towers.robust.calibration.fitSeed).toBe(41);
  });

  it('refuses a seed the towers were trained on, and equal seeds', async () => {
    const trained = await cli('calibrate-distance', '--seed', '7', '--no-write');
    expect(trained.code).not.toBe(0);
    expect(trained.stderr).toMatch(/seed 7 made the training data of defect-cnn-/);
    const same = await cli('calibrate-distance', '--seed', '40', '--held-out-seed', '40', '--no-write');
    expect(same.code).not.toBe(0);
    expect(same.stderr).toMatch(/--held-out-seed must differ from --seed/);
  });
});
