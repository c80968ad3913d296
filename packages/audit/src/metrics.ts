/**
 * Retrieval metrics of an audit: per query (overlap@k, top-1 retention, rank of the clean top-1, label precision@k
 * of same part+defect and same-defect neighbours) and their means per encoder and budget; and the perceptual
 * part's 2AFC accuracy and duplicate-attack rates.
 */
import {
  ENCODER_ROLES,
  type AuditMetrics,
  type DuplicateAttackMetrics,
  type DuplicateAttackOutcome,
  type EncoderRole,
  type FieldValue,
  type PartDefect,
  type QueryOutcome,
  type TripletKind,
  type TwoAfcMetrics,
  type TwoAfcOutcome,
} from '@lookalike/core';

/** |A ∩ B| / k over the first k ids of each ranking. */
export function overlapAtK(a: readonly string[], b: readonly string[], k: number): number {
  if (k < 1) throw new RangeError(`k must be ≥ 1, got ${k}`);
  const top = new Set(a.slice(0, k));
  let shared = 0;
  for (const id of b.slice(0, k)) if (top.has(id)) shared++;
  return shared / k;
}

/** 1-based rank of `id` in `ranking`; `ranking.length + 1` when absent (the search depth caps it). */
export function rankOf(id: string | undefined, ranking: readonly string[]): number {
  const i = id === undefined ? -1 : ranking.indexOf(id);
  return i < 0 ? ranking.length + 1 : i + 1;
}

/** The class of an image for precision@k: its part and defect labels (the synthetic catalog's ground truth). */
export function classOf(labels: Record<string, FieldValue | null> | undefined): string | undefined {
  const l = partDefectOf(labels);
  return l && partDefectKey(l);
}

const partDefectKey = (l: PartDefect): string => `${l.part}|${l.defect}`;

/** Fraction of the first k neighbours whose class is the query's; undefined when the query has no class. */
export function precisionAtK(
  queryClass: string | undefined,
  neighbours: readonly (string | undefined)[],
  k: number,
): number | undefined {
  if (queryClass === undefined) return undefined;
  let same = 0;
  for (const c of neighbours.slice(0, k)) if (c === queryClass) same++;
  return same / k;
}

/** An image's part and defect labels; undefined unless it has both (`defect` is `none` on a flawless part). */
export function partDefectOf(labels: Record<string, FieldValue | null> | undefined): PartDefect | undefined {
  const part = labels?.['part'];
  const defect = labels?.['defect'];
  if (part === undefined || part === null || defect === undefined || defect === null) return undefined;
  return { part: String(part), defect: String(defect) };
}

/** How a query's top-k share its labels: see {@link labelPrecision}. */
export interface LabelPrecision {
  /** Share of the first k hits with the query's defect. */
  defect: number;
  /** Share of the first k hits with the query's part and defect. */
  partDefect: number;
  /** Hits among the first k without part/defect labels (counted as not sharing). */
  unlabelledHits: number;
}

/**
 * Label precision@k of one ranking: of the first k hits (the query itself already left out), the share whose
 * defect, and whose part and defect, equal the query's. The denominator is k, as for {@link precisionAtK}: a hit
 * without labels, or a ranking shorter than k, counts as not sharing.
 */
export function labelPrecision(
  query: PartDefect,
  hits: readonly (PartDefect | undefined)[],
  k: number,
): LabelPrecision {
  const top = hits.slice(0, k);
  return {
    defect: precisionAtK(
      query.defect,
      top.map((h) => h?.defect),
      k,
    )!,
    partDefect: precisionAtK(
      partDefectKey(query),
      top.map((h) => h && partDefectKey(h)),
      k,
    )!,
    unlabelledHits: top.filter((h) => h === undefined).length,
  };
}

const mean = (xs: readonly number[]): number => (xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : NaN);

/** Means of the per-query outcomes for each encoder and budget, sorted by encoder then ε. */
export function summarize(outcomes: readonly QueryOutcome[], k: number): AuditMetrics[] {
  const groups = new Map<string, QueryOutcome[]>();
  for (const o of outcomes) {
    const key = `${o.encoder}@${o.epsilon}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push(o);
  }
  const metrics: AuditMetrics[] = [];
  for (const group of groups.values()) {
    const { encoder, epsilon } = group[0]!;
    const labelled = group.filter((o) => o.precisionClean !== undefined && o.precisionAttacked !== undefined);
    const withDefect = group.filter(
      (o) => o.labels && o.defectPrecisionClean !== undefined && o.defectPrecisionAttacked !== undefined,
    );
    const defective = withDefect.filter((o) => o.labels!.defect !== 'none');
    const defectPair = (os: QueryOutcome[]) => ({
      clean: mean(os.map((o) => o.defectPrecisionClean!)),
      attacked: mean(os.map((o) => o.defectPrecisionAttacked!)),
    });
    const unlabelledHits = (which: 'clean' | 'attacked') =>
      withDefect.reduce((s, o) => s + (o.unlabelledHits?.[which] ?? 0), 0);
    const targeted = group.filter((o) => o.targeted);
    metrics.push({
      encoder,
      epsilon,
      k,
      overlapAtK: mean(group.map((o) => o.overlapAtK)),
      top1Retention: mean(group.map((o) => (o.top1Retained ? 1 : 0))),
      meanRankOfCleanTop1: mean(group.map((o) => o.rankOfCleanTop1)),
      cosineDrift: mean(group.map((o) => o.cosineDrift)),
      ...(labelled.length
        ? {
            precisionAtK: {
              clean: mean(labelled.map((o) => o.precisionClean!)),
              attacked: mean(labelled.map((o) => o.precisionAttacked!)),
            },
          }
        : {}),
      ...(withDefect.length ? { defectPrecisionAtK: defectPair(withDefect) } : {}),
      ...(defective.length ? { defectivePrecisionAtK: defectPair(defective) } : {}),
      labelCounts: {
        labelled: withDefect.length,
        defective: defective.length,
        unlabelled: group.length - withDefect.length,
        unlabelledHits: { clean: unlabelledHits('clean'), attacked: unlabelledHits('attacked') },
      },
      ...(targeted.length ? { targetedSuccessAtK: mean(targeted.map((o) => (o.targeted!.success ? 1 : 0))) } : {}),
    });
  }
  const order: Record<EncoderRole, number> = { robust: 0, clean: 1 };
  return metrics.sort((a, b) => order[a.encoder] - order[b.encoder] || a.epsilon - b.epsilon);
}

const TRIPLET_KINDS: readonly TripletKind[] = ['twin', 'same part'];

/** Share of `xs` that satisfy `ok` (0 for none). */
const share = <T>(xs: readonly T[], ok: (x: T) => boolean): number =>
  xs.length ? xs.filter(ok).length / xs.length : 0;

/** A decision is right when the reference is strictly closer to its re-render. */
const right = (margin: number): boolean => margin < 0;

/** 2AFC accuracy per tower and budget, overall and by kind of triplet. */
export function summarizeTwoAfc(outcomes: readonly TwoAfcOutcome[]): TwoAfcMetrics[] {
  const groups = new Map<string, TwoAfcOutcome[]>();
  for (const o of outcomes) {
    const key = `${o.encoder}|${o.norm}|${o.epsilon}`;
    const list = groups.get(key) ?? [];
    list.push(o);
    groups.set(key, list);
  }
  return [...groups.values()].map((list) => {
    const { encoder, norm, epsilon } = list[0]!;
    const byKind: TwoAfcMetrics['byKind'] = {};
    for (const kind of TRIPLET_KINDS) {
      const of = list.filter((o) => o.kind === kind);
      if (of.length)
        byKind[kind] = {
          triplets: of.length,
          clean: share(of, (o) => right(o.cleanMargin)),
          attacked: share(of, (o) => right(o.attackedMargin)),
        };
    }
    return {
      encoder,
      norm,
      epsilon,
      triplets: list.length,
      clean: share(list, (o) => right(o.cleanMargin)),
      attacked: share(list, (o) => right(o.attackedMargin)),
      byKind,
    };
  });
}

/** How often the attacks changed each tower's duplicate decision. */
export function summarizeDuplicates(outcomes: readonly DuplicateAttackOutcome[]): DuplicateAttackMetrics[] {
  return ENCODER_ROLES.flatMap((encoder) => {
    const list = outcomes.filter((o) => o.encoder === encoder);
    if (!list.length) return [];
    const threshold = list[0]!.threshold;
    const hidable = list.filter((o) => o.duplicate.clean <= threshold);
    const forgeable = list.filter((o) => o.impostor.clean > threshold);
    return [
      {
        encoder,
        epsilon: 4 / 255,
        threshold,
        hide: { eligible: hidable.length, succeeded: hidable.filter((o) => o.duplicate.attacked > threshold).length },
        forge: {
          eligible: forgeable.length,
          succeeded: forgeable.filter((o) => o.impostor.attacked <= threshold).length,
        },
      },
    ];
  });
}
