import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { AuditResult } from '@lookalike/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_MAIN as main, MODELS, runCli } from './testing.js';

// `lookalike audit` as users run it: the built entry point on a small catalog ingested by `lookalike ingest`.
const run = promisify(execFile);
let dir: string;

const cli = (...args: string[]) =>
  runCli({ MODELS_DIR: MODELS, REDIS_URL: '', QDRANT_URL: '', LOG_LEVEL: 'silent' }, ...args);

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

/**
 * Recomputes the stored audit's label precisions from the catalog itself: each image's labels from the manifest,
 * keyed by the sha256 of its file (the store's id), and each outcome's top-k ids. Precision is the share of the k
 * hits with the query's defect (and part), the means over queries and over the defective ones.
 */
async function checkLabelPrecision(auditJson: string): Promise<void> {
  const audit = JSON.parse(await readFile(auditJson, 'utf8')) as AuditResult;
  const labels = new Map<string, { part: string; defect: string }>();
  for (const line of (await readFile(join(dir, 'catalog', 'manifest.jsonl'), 'utf8')).trim().split('\n')) {
    const item = JSON.parse(line) as { file: string; labels: { part: string; defect: string } };
    const bytes = await readFile(join(dir, 'catalog', item.file));
    labels.set(createHash('sha256').update(bytes).digest('hex'), item.labels);
  }
  const share = (q: { part: string; defect: string }, ids: string[], both: boolean) =>
    ids.filter((id) => labels.get(id)!.defect === q.defect && (!both || labels.get(id)!.part === q.part)).length /
    audit.k;
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  for (const m of audit.metrics) {
    const group = audit.perQuery.filter((o) => o.encoder === m.encoder && o.epsilon === m.epsilon);
    for (const o of group) {
      const q = labels.get(o.queryId)!;
      expect(o.labels).toEqual({ part: q.part, defect: q.defect });
      expect(o.defectPrecisionClean).toBeCloseTo(share(q, o.cleanTopK, false), 12);
      expect(o.defectPrecisionAttacked).toBeCloseTo(share(q, o.attackedTopK, false), 12);
      expect(o.precisionAttacked).toBeCloseTo(share(q, o.attackedTopK, true), 12);
    }
    const defective = group.filter((o) => labels.get(o.queryId)!.defect !== 'none');
    expect(m.labelCounts).toEqual({
      labelled: 6,
      defective: defective.length,
      unlabelled: 0,
      unlabelledHits: { clean: 0, attacked: 0 },
    });
    const at = (os: typeof group, ids: (o: (typeof group)[number]) => string[], both: boolean) =>
      mean(os.map((o) => share(labels.get(o.queryId)!, ids(o), both)));
    expect(m.defectPrecisionAtK!.clean).toBeCloseTo(
      at(group, (o) => o.cleanTopK, false),
      12,
    );
    expect(m.defectPrecisionAtK!.attacked).toBeCloseTo(
      at(group, (o) => o.attackedTopK, false),
      12,
    );
    expect(m.precisionAtK!.attacked).toBeCloseTo(
      at(group, (o) => o.attackedTopK, true),
      12,
    );
    if (defective.length)
      expect(m.defectivePrecisionAtK!.attacked).toBeCloseTo(
        at(defective, (o) => o.attackedTopK, false),
        12,
      );
  }
}

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
      '--triplets',
      '2',
    );
    expect(stderr).not.toMatch(/Error/);
    expect(code).toBe(0);
    expect(stdout).toMatch(
      /Under APGD-10 at ε = 4\/255 \(ℓ∞\), the robust tower keeps [\d.]+ % of its top-10 neighbours/,
    );
    expect(stdout).toMatch(/overlap@10\s+robust\s+100\.0%\s+[\d.]+%/);
    expect(stdout).toMatch(/6 queries/);
    expect(stdout).toMatch(/2AFC on 2 rendered triplets \(seed 33; 1 twin, 1 same part\)/);
    expect(stdout).toMatch(/robust ℓ∞ ε=4\/255 +clean +[\d.]+% +attacked +[\d.]+%/);
    expect(stdout).toMatch(/robust duplicate decision \(≤ 0\.\d{4}\) at ℓ∞ 4\/255: hidden \d+ of \d+ duplicates/);
    expect(stdout).toMatch(/same defect @10\s+robust\s+[\d.]+%\s+[\d.]+%/);
    expect(stdout).toMatch(/same part\+defect @10\s+robust\s+[\d.]+%/);
    expect(stdout).toMatch(/over 6 labelled queries \(\d+ with a defect\); 0 without part and defect labels left out/);
    expect(stdout).toMatch(/At ε = 4\/255, [\d.]+ % of the robust tower's top-10 neighbours share the query's defect/);
    const report = /Report: (\S+report\.html)/.exec(stdout)?.[1];
    expect(report).toBeDefined();
    await access(report!);
    await checkLabelPrecision(join(dirname(report!), 'audit.json'));
  }, 180_000);

  it('refuses a budget that is not one, with a clear message and no audit', async () => {
    const { code, stderr } = await cli('audit', '--data', dir, '--eps', '0,four/255');
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/--eps takes budgets such as 0,1\/255,4\/255 in \[0,1\]; "four\/255" is not one\./);
  });
});
