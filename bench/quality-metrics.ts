/**
 * The pure part of bench:quality: label facets, precision@k per facet, the chance level of each facet, the two
 * pixel baselines' features and their exact kNN, and the issue #14 aims. No I/O.
 */
import { exactNearest, l2Normalize, precisionAtK } from '@lookalike/core';

/** The labels a facet compares (the synthetic catalog's ground truth). */
export interface FacetLabels {
  part: string;
  defect: string;
  color: string;
  background: string;
}

/** One column of the quality tables: which hits count as the same kind as the query. */
export interface Facet {
  key: string;
  title: string;
  /** The label value compared: a hit is of the same kind when its value is the query's. */
  value: (labels: FacetLabels) => string;
  /** Queries this facet is averaged over; default all. */
  applies?: (query: FacetLabels) => boolean;
}

/** The columns of issue #14's table, in its order. */
export const FACETS: readonly Facet[] = [
  { key: 'partDefect', title: 'part+defect', value: (l) => `${l.part}|${l.defect}` },
  { key: 'defect', title: 'defect', value: (l) => l.defect },
  {
    key: 'defectDefective',
    title: 'defect, defective queries only',
    value: (l) => l.defect,
    applies: (q) => q.defect !== 'none',
  },
  { key: 'part', title: 'part', value: (l) => l.part },
  { key: 'color', title: 'colour', value: (l) => l.color },
  { key: 'background', title: 'background', value: (l) => l.background },
];

/** Mean precision@k per facet key, as a fraction, and the number of queries each mean is over. */
export type FacetScores = Record<string, { value: number; queries: number }>;

/**
 * precision@k per facet: for each query, the share of its first `k` hits whose labels match the query's on the
 * facet (missing slots count as misses), averaged over the queries the facet applies to. `hits[i]` are the labels of
 * query i's hits, best first, the query itself already left out.
 */
export function facetPrecision(
  queries: readonly FacetLabels[],
  hits: readonly (readonly FacetLabels[])[],
  k: number,
): FacetScores {
  if (queries.length !== hits.length) throw new RangeError(`${queries.length} queries but ${hits.length} hit lists`);
  return Object.fromEntries(
    FACETS.map((facet) => {
      const values = queries.flatMap((q, i) => {
        if (facet.applies && !facet.applies(q)) return [];
        const wanted = facet.value(q);
        return [precisionAtK(hits[i]!, (h) => facet.value(h) === wanted, k)];
      });
      return [facet.key, { value: mean(values), queries: values.length }];
    }),
  );
}

/**
 * The chance level of each facet: for each query, the share of the other gallery items that match it on the facet
 * (the expected precision of hits drawn at random from the gallery without the query), averaged over the queries
 * the facet applies to. `queryIndex[i]` is query i's position in `gallery`.
 */
export function facetChance(gallery: readonly FacetLabels[], queryIndex: readonly number[]): FacetScores {
  if (gallery.length < 2) throw new RangeError('chance needs a gallery of at least two items');
  return Object.fromEntries(
    FACETS.map((facet) => {
      const counts = new Map<string, number>();
      for (const item of gallery) counts.set(facet.value(item), (counts.get(facet.value(item)) ?? 0) + 1);
      const values = queryIndex.flatMap((qi) => {
        const q = gallery[qi]!;
        if (facet.applies && !facet.applies(q)) return [];
        return [(counts.get(facet.value(q))! - 1) / (gallery.length - 1)];
      });
      return [facet.key, { value: mean(values), queries: values.length }];
    }),
  );
}

/** Arithmetic mean; NaN for no values (a facet no query applies to). */
export function mean(values: readonly number[]): number {
  return values.length ? values.reduce((s, v) => s + v, 0) / values.length : NaN;
}

/**
 * The raw-pixel baseline's feature: an RGB image already downsampled to side × side (interleaved bytes), flattened
 * and L2-normalised, so that cosine similarity is a dot product.
 */
export function rawPixelFeature(rgb: Uint8Array): Float32Array {
  return l2Normalize(rgb);
}

/**
 * The colour-histogram baseline's feature: an 8 × 8 × 8 joint RGB histogram (each channel in 8 bins of 32 levels)
 * of interleaved RGB bytes, normalised to sum 1 (then compared by cosine similarity).
 */
export function colourHistogram(rgb: Uint8Array, bins = 8): Float32Array {
  if (rgb.length % 3 !== 0) throw new RangeError(`${rgb.length} bytes are not RGB triples`);
  const shift = Math.log2(256 / bins);
  if (!Number.isInteger(shift)) throw new RangeError(`bins must divide 256 as a power of two, got ${bins}`);
  const hist = new Float32Array(bins ** 3);
  const pixels = rgb.length / 3;
  for (let p = 0; p < rgb.length; p += 3)
    hist[((rgb[p]! >> shift) * bins + (rgb[p + 1]! >> shift)) * bins + (rgb[p + 2]! >> shift)]! += 1;
  for (let i = 0; i < hist.length; i++) hist[i]! /= pixels;
  return hist;
}

/**
 * Exact cosine kNN of gallery row `query` among the rows of `gallery` (`[n, dim]`), the query's own row left out:
 * the indices of its `k` nearest other rows, best first.
 */
export function nearestOthers(gallery: Float32Array, dim: number, query: number, k: number): number[] {
  const row = gallery.subarray(query * dim, (query + 1) * dim);
  return exactNearest(row, gallery, dim, k + 1)
    .map((h) => h.index)
    .filter((i) => i !== query)
    .slice(0, k);
}

/** One of issue #14's aims, measured. */
export interface AimOutcome {
  aim: string;
  measured: string;
  met: boolean;
  /** What is missing to meet it (in percentage points), or by how much it is beaten. */
  gap: string;
}

/** An aim "value ≥ bound" (or ≤, <) on fractions, reported in percent with the gap in points. */
export function aim(
  text: string,
  value: number | undefined,
  op: '>=' | '<=' | '<',
  bound: number,
  boundText = `${pct(bound)} %`,
): AimOutcome {
  if (value === undefined || Number.isNaN(value))
    return { aim: text, measured: 'not measured', met: false, gap: 'not measured in this run' };
  const met = op === '>=' ? value >= bound : op === '<=' ? value <= bound : value < bound;
  const points = `${Math.abs(100 * (value - bound)).toFixed(1)} points`;
  const gap = met ? `met by ${points}` : `${points} ${op === '>=' ? 'short of' : 'above'} ${boundText}`;
  return { aim: text, measured: `${pct(value)} %`, met, gap };
}

/** A fraction as a percentage with one decimal ("–" when missing). */
export function pct(x: number | undefined): string {
  return x === undefined || Number.isNaN(x) ? '–' : (100 * x).toFixed(1);
}
