/**
 * Thresholds that turn a tower's `1 − cos` distance into a verdict — `same item`, `same kind`, `different` — fitted
 * on labelled pairs of the synthetic catalog, where the generator knows the truth, and the file they are kept in
 * beside the model (`distance-calibration.json`).
 *
 * Each threshold is the boundary of one yes/no question: "the same item?" (a re-render of the same spec against
 * everything else) and "at least the same kind?" (same part and same kind of defect against different ones). It is
 * the distance that maximises balanced accuracy, with each side's recall the mean over the kinds of pair on that
 * side, so that the answer does not depend on how many pairs of each kind the calibration happened to draw: an
 * edited twin counts as much as a random other item, however rare it is in a catalog.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import writeFileAtomic from 'write-file-atomic';

/** What two images are to each other, from the closest relation to the farthest; also the verdicts. */
export const RELATIONS = ['same item', 'same kind', 'different'] as const;
export type Relation = (typeof RELATIONS)[number];

/**
 * The kinds of labelled pair the catalog gives, each with its relation: a re-render is the same item photographed
 * again; a twin whose colour changed or whose defect moved, and another item of the same part with the same defect,
 * are the same kind; a twin with a defect added or removed, another item of the part with another defect, and an
 * item of another part are different.
 */
export const PAIR_KINDS = {
  rerender: 'same item',
  'twin, colour changed': 'same kind',
  'twin, defect moved': 'same kind',
  'same part and defect': 'same kind',
  'twin, defect added': 'different',
  'twin, defect removed': 'different',
  'same part, other defect': 'different',
  'other part': 'different',
} as const satisfies Record<string, Relation>;
export type PairKind = keyof typeof PAIR_KINDS;

/** One measured pair. */
export interface LabelledDistance {
  kind: PairKind;
  distance: number;
}

/** The name of the calibration file in a model's folder. */
export const CALIBRATION_FILE = 'distance-calibration.json';

/** How well one threshold answers its question on a set of pairs. */
const boundarySchema = z.object({
  threshold: z.number(),
  /** Mean over the positive side's kinds of the share at or under the threshold. */
  recall: z.number(),
  /** Mean over the negative side's kinds of the share above it. */
  specificity: z.number(),
  balancedAccuracy: z.number(),
});
export type BoundaryFit = z.infer<typeof boundarySchema>;

const kindStatsSchema = z.object({
  pairs: z.number().int(),
  medianDistance: z.number(),
  /** Share of the kind's pairs given each verdict. */
  verdicts: z.object({ 'same item': z.number(), 'same kind': z.number(), different: z.number() }),
});
export type KindStats = z.infer<typeof kindStatsSchema>;

const evaluationSchema = z.object({
  seed: z.number().int(),
  items: z.number().int(),
  sameItem: boundarySchema.omit({ threshold: true }),
  sameKind: boundarySchema.omit({ threshold: true }),
  /** Share of pairs whose verdict is their relation, the mean over kinds. */
  accuracy: z.number(),
  kinds: z.record(z.string(), kindStatsSchema),
});
export type Evaluation = z.infer<typeof evaluationSchema>;

export const calibrationSchema = z.object({
  schemaVersion: z.literal(1),
  metric: z.literal('1 - cos'),
  /** The tower the thresholds belong to: its id and the sha256 of its model file. */
  model: z.object({ id: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/) }),
  /** The preprocessing the distances were measured with (PREPROCESS). */
  preprocess: z.enum(['fast', 'exact']),
  thresholds: z.object({ sameItem: z.number(), sameKind: z.number() }),
  /**
   * False when the "same kind" boundary, fitted alone, fell under the "same item" one: the tower cannot tell the
   * same kind from the same item, and `sameKind` is raised to `sameItem` (no pair is then called `same kind`).
   */
  sameKindSeparable: z.boolean(),
  generator: z.string(),
  /** The catalog the thresholds were fitted on, and how they did there. */
  fit: evaluationSchema,
  /** A catalog of another seed, never used to fit: the numbers to quote. */
  heldOut: evaluationSchema,
  createdAt: z.string(),
});
export type Calibration = z.infer<typeof calibrationSchema>;

/** The verdict of a distance under a tower's thresholds. */
export function verdictOf(distance: number, thresholds: Calibration['thresholds']): Relation {
  if (distance <= thresholds.sameItem) return 'same item';
  if (distance <= thresholds.sameKind) return 'same kind';
  return 'different';
}

/** Pairs grouped by kind, each group's distances sorted ascending. */
function byKind(pairs: readonly LabelledDistance[]): Map<PairKind, Float64Array> {
  const groups = new Map<PairKind, number[]>();
  for (const p of pairs) {
    if (!Number.isFinite(p.distance)) throw new RangeError(`a ${p.kind} pair has distance ${p.distance}`);
    let list = groups.get(p.kind);
    if (!list) groups.set(p.kind, (list = []));
    list.push(p.distance);
  }
  return new Map([...groups].map(([k, v]) => [k, Float64Array.from(v).sort()]));
}

/** Number of sorted values ≤ t (binary search). */
function countAtMost(sorted: Float64Array, t: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Recall and specificity of "distance ≤ t means positive", each the mean over its side's kinds. */
function rates(groups: Map<PairKind, Float64Array>, positive: (k: PairKind) => boolean, t: number) {
  let recall = 0;
  let specificity = 0;
  let nPos = 0;
  let nNeg = 0;
  for (const [kind, sorted] of groups) {
    const under = countAtMost(sorted, t) / sorted.length;
    if (positive(kind)) {
      recall += under;
      nPos++;
    } else {
      specificity += 1 - under;
      nNeg++;
    }
  }
  if (nPos === 0 || nNeg === 0) throw new RangeError('a boundary needs pairs on both of its sides');
  recall /= nPos;
  specificity /= nNeg;
  return { recall, specificity, balancedAccuracy: (recall + specificity) / 2 };
}

/**
 * The threshold that best separates the kinds `positive` accepts from the others: the maximiser of balanced
 * accuracy over the midpoints between consecutive distinct distances (ties: the middle of the best run, so the
 * threshold sits in the gap rather than against one side).
 */
export function fitBoundary(pairs: readonly LabelledDistance[], positive: (k: PairKind) => boolean): BoundaryFit {
  const groups = byKind(pairs);
  const values = Float64Array.from(pairs.map((p) => p.distance)).sort();
  const candidates: number[] = [values[0]! - 1e-6];
  for (let i = 1; i < values.length; i++)
    if (values[i]! > values[i - 1]!) candidates.push((values[i]! + values[i - 1]!) / 2);
  candidates.push(values[values.length - 1]! + 1e-6);
  let best = -1;
  let first = 0;
  let last = 0;
  for (const [i, t] of candidates.entries()) {
    const b = rates(groups, positive, t).balancedAccuracy;
    if (b > best + 1e-12) {
      best = b;
      first = last = i;
    } else if (Math.abs(b - best) <= 1e-12 && last === i - 1) last = i;
  }
  const threshold = candidates[(first + last) >> 1]!;
  return { threshold, ...rates(groups, positive, threshold) };
}

const isSameItem = (k: PairKind): boolean => PAIR_KINDS[k] === 'same item';
const isSameKindOrCloser = (k: PairKind): boolean => PAIR_KINDS[k] !== 'different';

/** The two thresholds fitted on `pairs`, and whether the second could be kept above the first. */
export function fitThresholds(pairs: readonly LabelledDistance[]): {
  thresholds: Calibration['thresholds'];
  sameKindSeparable: boolean;
} {
  const sameItem = fitBoundary(pairs, isSameItem).threshold;
  const sameKind = fitBoundary(pairs, isSameKindOrCloser).threshold;
  return { thresholds: { sameItem, sameKind: Math.max(sameItem, sameKind) }, sameKindSeparable: sameKind > sameItem };
}

function median(sorted: Float64Array): number {
  const n = sorted.length;
  return n % 2 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
}

/** How `thresholds` do on `pairs`: both questions, the three-way verdict, and every kind's distances. */
export function evaluate(
  pairs: readonly LabelledDistance[],
  thresholds: Calibration['thresholds'],
  catalog: { seed: number; items: number },
): Evaluation {
  const groups = byKind(pairs);
  const { balancedAccuracy: _a, ...sameItemRates } = rates(groups, isSameItem, thresholds.sameItem);
  const { balancedAccuracy: _b, ...sameKindRates } = rates(groups, isSameKindOrCloser, thresholds.sameKind);
  const kinds: Record<string, KindStats> = {};
  let accuracy = 0;
  const ordered = (Object.keys(PAIR_KINDS) as PairKind[]).filter((k) => groups.has(k));
  for (const kind of ordered) {
    const sorted = groups.get(kind)!;
    const counts = { 'same item': 0, 'same kind': 0, different: 0 };
    for (const d of sorted) counts[verdictOf(d, thresholds)]++;
    const share = (n: number): number => n / sorted.length;
    kinds[kind] = {
      pairs: sorted.length,
      medianDistance: median(sorted),
      verdicts: {
        'same item': share(counts['same item']),
        'same kind': share(counts['same kind']),
        different: share(counts.different),
      },
    };
    accuracy += share(counts[PAIR_KINDS[kind]]);
  }
  const balanced = (r: { recall: number; specificity: number }) => ({
    ...r,
    balancedAccuracy: (r.recall + r.specificity) / 2,
  });
  return {
    ...catalog,
    sameItem: balanced(sameItemRates),
    sameKind: balanced(sameKindRates),
    accuracy: accuracy / groups.size,
    kinds,
  };
}

/** What a tower's calibration file says for serving: the thresholds, or why there are none. */
export type CalibrationState =
  { status: 'calibrated'; calibration: Calibration } | { status: 'uncalibrated'; reason: string };

/**
 * Reads a tower's calibration and checks that it belongs to this model file and this preprocessing; a missing,
 * broken or stale file is `uncalibrated` with the reason (distances are still served, verdicts are not).
 */
export async function loadCalibration(
  file: string,
  model: { id: string; sha256: string },
  preprocess: 'fast' | 'exact',
): Promise<CalibrationState> {
  let raw: string;
  try {
    raw = await readFile(file, 'utf8');
  } catch {
    return {
      status: 'uncalibrated',
      reason: `model ${model.id} has no ${CALIBRATION_FILE}; run lookalike calibrate-distance`,
    };
  }
  let parsed;
  try {
    parsed = calibrationSchema.safeParse(JSON.parse(raw));
  } catch (error) {
    return { status: 'uncalibrated', reason: `${file} is not valid JSON: ${(error as Error).message}` };
  }
  if (!parsed.success)
    return { status: 'uncalibrated', reason: `${file} is not a calibration: ${parsed.error.issues[0]?.message ?? ''}` };
  const calibration = parsed.data;
  if (calibration.model.id !== model.id || calibration.model.sha256 !== model.sha256)
    return {
      status: 'uncalibrated',
      reason:
        `the calibration of ${model.id} was fitted on another model file (${calibration.model.id}, ` +
        `sha256 ${calibration.model.sha256.slice(0, 12)}…); run lookalike calibrate-distance`,
    };
  if (calibration.preprocess !== preprocess)
    return {
      status: 'uncalibrated',
      reason: `the calibration of ${model.id} was measured with PREPROCESS=${calibration.preprocess}, not ${preprocess}`,
    };
  return { status: 'calibrated', calibration };
}

/** Writes a calibration (validated first), whole or not at all. */
export async function saveCalibration(file: string, calibration: Calibration): Promise<void> {
  const valid = calibrationSchema.parse(calibration);
  await writeFileAtomic(file, JSON.stringify(valid, null, 2) + '\n');
}
