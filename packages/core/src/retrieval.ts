/**
 * Pure retrieval math. Vectors are plain `ArrayLike<number>` so `Float32Array`s from the encoders and numbers from
 * JSON both work; accumulation is in float64.
 */

function assertSameLength(a: ArrayLike<number>, b: ArrayLike<number>): void {
  if (a.length !== b.length) throw new RangeError(`vectors differ in length: ${a.length} vs ${b.length}`);
}

/** Inner product ⟨a, b⟩. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assertSameLength(a, b);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!;
  return sum;
}

/** Euclidean norm ‖v‖₂. */
export function l2Norm(v: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < v.length; i++) sum += v[i]! * v[i]!;
  return Math.sqrt(sum);
}

/** A new `Float32Array` with `v / ‖v‖₂`; the zero vector stays zero. */
export function l2Normalize(v: ArrayLike<number>): Float32Array {
  const norm = l2Norm(v);
  const out = new Float32Array(v.length);
  if (norm === 0) return out;
  for (let i = 0; i < v.length; i++) out[i] = v[i]! / norm;
  return out;
}

/** Cosine similarity in [-1, 1]; 0 when either vector is zero (it has no direction). */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const denominator = l2Norm(a) * l2Norm(b);
  if (denominator === 0) return 0;
  return Math.max(-1, Math.min(1, dot(a, b) / denominator));
}

/**
 * Indices of the `k` largest scores, best first; ties go to the lower index so results are deterministic.
 * O(n log k) with a bounded min-heap; NaN scores are never selected.
 */
export function topK(scores: ArrayLike<number>, k: number): number[] {
  if (!Number.isInteger(k) || k < 0) throw new RangeError(`k must be a non-negative integer, got ${k}`);
  if (k === 0) return [];
  // heap[0] is the worst kept entry: lowest score, and among equal scores the highest index.
  const heap: number[] = [];
  const worse = (i: number, j: number): boolean => {
    const si = scores[i]!;
    const sj = scores[j]!;
    return si < sj || (si === sj && i > j);
  };
  const siftDown = (start: number): void => {
    let p = start;
    for (;;) {
      const l = 2 * p + 1;
      const r = l + 1;
      let m = p;
      if (l < heap.length && worse(heap[l]!, heap[m]!)) m = l;
      if (r < heap.length && worse(heap[r]!, heap[m]!)) m = r;
      if (m === p) return;
      [heap[p], heap[m]] = [heap[m]!, heap[p]!];
      p = m;
    }
  };
  for (let i = 0; i < scores.length; i++) {
    if (Number.isNaN(scores[i])) continue;
    if (heap.length < k) {
      heap.push(i);
      let c = heap.length - 1;
      while (c > 0) {
        const p = (c - 1) >> 1;
        if (!worse(heap[c]!, heap[p]!)) break;
        [heap[c], heap[p]] = [heap[p]!, heap[c]!];
        c = p;
      }
    } else if (worse(heap[0]!, i)) {
      heap[0] = i;
      siftDown(0);
    }
  }
  return heap.sort((i, j) => (worse(i, j) ? 1 : worse(j, i) ? -1 : 0));
}

/**
 * Exact nearest neighbours of `query` among `vectors` by cosine similarity, best first.
 * `vectors` is a flat row-major `[n, dim]` matrix.
 */
export function exactNearest(
  query: ArrayLike<number>,
  vectors: ArrayLike<number>,
  dim: number,
  k: number,
): { index: number; score: number }[] {
  if (vectors.length % dim !== 0)
    throw new RangeError(`matrix of ${vectors.length} values is not a multiple of ${dim}`);
  if (query.length !== dim) throw new RangeError(`query has ${query.length} values, expected ${dim}`);
  const n = vectors.length / dim;
  const qn = l2Norm(query);
  const scores = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    let d = 0;
    let nn = 0;
    const o = r * dim;
    for (let c = 0; c < dim; c++) {
      const x = vectors[o + c]!;
      d += query[c]! * x;
      nn += x * x;
    }
    const denominator = qn * Math.sqrt(nn);
    scores[r] = denominator === 0 ? 0 : d / denominator;
  }
  return topK(scores, k).map((index) => ({ index, score: scores[index]! }));
}

function checkK(k: number): void {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`k must be a positive integer, got ${k}`);
}

/**
 * recall@k: the fraction of the relevant items found in the first `k` retrieved.
 * Throws when nothing is relevant (recall is undefined then; callers skip such queries).
 */
export function recallAtK<T>(retrieved: readonly T[], relevant: Iterable<T>, k: number): number {
  checkK(k);
  const wanted = new Set(relevant);
  if (wanted.size === 0) throw new RangeError('recall@k is undefined when no item is relevant');
  let found = 0;
  for (const item of new Set(retrieved.slice(0, k))) if (wanted.has(item)) found++;
  return found / wanted.size;
}

/**
 * overlap@k: |first k of `a` ∩ first k of `b`| / k. 1 when both rankings agree on their top k as sets, 0 when
 * disjoint. Used for clean-vs-attacked rankings and for ANN-vs-exact search (where it equals recall@k of the ANN).
 */
export function overlapAtK<T>(a: readonly T[], b: readonly T[], k: number): number {
  checkK(k);
  const top = new Set(a.slice(0, k));
  let shared = 0;
  for (const item of new Set(b.slice(0, k))) if (top.has(item)) shared++;
  return shared / k;
}

/** precision@k: the fraction of the first `k` retrieved items that are relevant; missing slots count as misses. */
export function precisionAtK<T>(retrieved: readonly T[], isRelevant: (item: T) => boolean, k: number): number {
  checkK(k);
  let hits = 0;
  for (const item of retrieved.slice(0, k)) if (isRelevant(item)) hits++;
  return hits / k;
}

/** 1-based rank of `item` in `ranking`, or `undefined` when it is absent. */
export function rankOf<T>(ranking: readonly T[], item: T): number | undefined {
  const index = ranking.indexOf(item);
  return index < 0 ? undefined : index + 1;
}
