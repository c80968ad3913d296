import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  evaluate,
  fitBoundary,
  fitThresholds,
  loadCalibration,
  saveCalibration,
  verdictOf,
  type Calibration,
  type LabelledDistance,
  type PairKind,
} from './calibration.js';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

const many = (kind: PairKind, ...distances: number[]): LabelledDistance[] =>
  distances.map((distance) => ({ kind, distance }));
const sameItem = (k: PairKind) => k === 'rerender';

describe(fitBoundary.name, () => {
  it('puts the threshold in the middle of the gap of a separable set, with perfect rates', () => {
    const pairs = [...many('rerender', 0.01, 0.02, 0.03), ...many('other part', 0.5, 0.7)];
    const fit = fitBoundary(pairs, sameItem);
    expect(fit.threshold).toBeCloseTo(0.265, 9);
    expect(fit).toMatchObject({ recall: 1, specificity: 1, balancedAccuracy: 1 });
  });

  it('weighs every kind of pair alike, however many pairs it has', () => {
    // Ten re-renders spread to 0.1, a hundred easy negatives far away and two hard ones (twins) among the positives.
    const positives = many('rerender', 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1);
    const easy = many('other part', ...Array.from({ length: 100 }, (_, i) => 0.8 + i / 1000));
    const twins = many('twin, colour changed', 0.045, 0.048);
    const fit = fitBoundary([...positives, ...easy, ...twins], sameItem);
    // Under 0.045: 4 of 10 re-renders, every negative kind rejected, (0.4 + 1) / 2 = 0.7; past 0.1: all re-renders,
    // the twins accepted, (1 + (0 + 1) / 2) / 2 = 0.75. The twins are half the negative side, not 2 % of it.
    expect(fit.balancedAccuracy).toBeCloseTo(0.75, 9);
    expect(fit.specificity).toBeCloseTo(0.5, 9);
    expect(fit.threshold).toBeCloseTo(0.45, 9);
    // A hundred times as many twins, or a tenth of the easy negatives, leave the answer where it is.
    const moreTwins = many('twin, colour changed', ...Array.from({ length: 100 }, (_, i) => (i % 2 ? 0.045 : 0.048)));
    expect(fitBoundary([...positives, ...easy, ...moreTwins], sameItem)).toEqual(fit);
    expect(fitBoundary([...positives, ...easy.slice(0, 10), ...twins], sameItem).balancedAccuracy).toBeCloseTo(0.75, 9);
  });

  it('refuses a boundary with an empty side and a distance that is not a number', () => {
    expect(() => fitBoundary(many('rerender', 0.1, 0.2), sameItem)).toThrow(/both of its sides/);
    expect(() => fitBoundary([...many('rerender', Number.NaN), ...many('other part', 1)], sameItem)).toThrow(
      RangeError,
    );
  });
});

describe(fitThresholds.name, () => {
  const base = [
    ...many('rerender', 0.01, 0.02),
    ...many('same part and defect', 0.1, 0.12),
    ...many('other part', 0.6, 0.9),
  ];

  it('fits one threshold per question, the same-item one under the same-kind one', () => {
    const { thresholds, sameKindSeparable } = fitThresholds(base);
    expect(thresholds.sameItem).toBeCloseTo(0.06, 9);
    expect(thresholds.sameKind).toBeCloseTo(0.36, 9);
    expect(sameKindSeparable).toBe(true);
    expect(verdictOf(0.015, thresholds)).toBe('same item');
    expect(verdictOf(0.11, thresholds)).toBe('same kind');
    expect(verdictOf(0.7, thresholds)).toBe('different');
    expect(verdictOf(thresholds.sameItem, thresholds)).toBe('same item');
  });

  it('raises the same-kind threshold to the same-item one when the tower cannot tell them apart, and says so', () => {
    // Same-kind pairs as close as re-renders: both questions find the same gap, and "same kind" is never said.
    const pairs = [
      ...many('rerender', 0.02, 0.03),
      ...many('same part and defect', 0.01, 0.015),
      ...many('other part', 0.5),
    ];
    const { thresholds, sameKindSeparable } = fitThresholds(pairs);
    expect(sameKindSeparable).toBe(false);
    expect(thresholds.sameKind).toBe(thresholds.sameItem);
  });
});

describe(evaluate.name, () => {
  it("counts each kind's verdicts and the three-way accuracy as the mean over kinds", () => {
    const pairs = [
      ...many('rerender', 0.01, 0.02, 0.2, 0.03),
      ...many('twin, defect removed', 0.02, 0.9),
      ...many('other part', 0.8),
    ];
    const e = evaluate(pairs, { sameItem: 0.05, sameKind: 0.3 }, { seed: 9, items: 3 });
    expect(e.kinds.rerender).toEqual({
      pairs: 4,
      medianDistance: 0.025,
      verdicts: { 'same item': 0.75, 'same kind': 0.25, different: 0 },
    });
    expect(e.kinds['twin, defect removed']!.verdicts).toEqual({ 'same item': 0.5, 'same kind': 0, different: 0.5 });
    expect(e.accuracy).toBeCloseTo((0.75 + 0.5 + 1) / 3, 9);
    expect(e.sameItem.recall).toBe(0.75);
    expect(e.sameItem.specificity).toBeCloseTo((0.5 + 1) / 2, 9);
    expect(Object.keys(e.kinds)).toEqual(['rerender', 'twin, defect removed', 'other part']);
  });
});

describe(loadCalibration.name, () => {
  const sha = 'a'.repeat(64);
  const calibration = (): Calibration => {
    const pairs = [...many('rerender', 0.01, 0.02), ...many('same part and defect', 0.1), ...many('other part', 0.9)];
    const { thresholds, sameKindSeparable } = fitThresholds(pairs);
    const e = evaluate(pairs, thresholds, { seed: 31, items: 2 });
    return {
      schemaVersion: 1,
      metric: '1 - cos',
      model: { id: 'tower', sha256: sha },
      preprocess: 'fast',
      thresholds,
      sameKindSeparable,
      generator: '@lookalike/synth/1',
      fit: e,
      heldOut: { ...e, seed: 32 },
      createdAt: new Date(0).toISOString(),
    };
  };

  it('loads what it saved, and refuses a missing, broken, foreign or differently preprocessed one with a reason', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'calibration-'));
    dirs.push(dir);
    const file = join(dir, 'distance-calibration.json');
    const model = { id: 'tower', sha256: sha };
    await expect(loadCalibration(file, model, 'fast')).resolves.toMatchObject({
      status: 'uncalibrated',
      reason: expect.stringMatching(/has no distance-calibration.json/),
    });
    await saveCalibration(file, calibration());
    await expect(loadCalibration(file, model, 'fast')).resolves.toEqual({
      status: 'calibrated',
      calibration: calibration(),
    });
    await expect(loadCalibration(file, { id: 'tower', sha256: 'b'.repeat(64) }, 'fast')).resolves.toMatchObject({
      status: 'uncalibrated',
      reason: expect.stringMatching(/fitted on another model file/),
    });
    await expect(loadCalibration(file, model, 'exact')).resolves.toMatchObject({
      reason: expect.stringMatching(/PREPROCESS=fast, not exact/),
    });
    await writeFile(file, '{ not json');
    await expect(loadCalibration(file, model, 'fast')).resolves.toMatchObject({
      reason: expect.stringMatching(/not valid JSON/),
    });
    await writeFile(file, JSON.stringify({ ...calibration(), thresholds: { sameItem: 'x' } }));
    await expect(loadCalibration(file, model, 'fast')).resolves.toMatchObject({
      reason: expect.stringMatching(/not a calibration/),
    });
    await expect(saveCalibration(file, { ...calibration(), metric: 'l2' } as unknown as Calibration)).rejects.toThrow();
    expect(await readFile(file, 'utf8')).toContain('"sameItem":"x"');
  });
});
