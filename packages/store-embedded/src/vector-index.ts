/**
 * The in-memory search side of the embedded store: per tower a usearch HNSW graph (cosine, i8-quantised) and the
 * full float32 vectors (re-ranking, exact and filtered brute force), plus each point's payload and its filterable
 * field values with posting lists for keyword and bool fields. Points live in slots; a slot's usearch key is its
 * number. The LanceDB table stays the source of truth: this index is persisted beside it as a snapshot that records
 * the write sequence number it covers, and the store catches it up from the table (see `EmbeddedVectorStore`).
 *
 * One file over 400 lines on purpose: one data structure (slots, the usearch graphs, the float32 rows, payloads
 * and posting lists) whose invariants every method keeps together; splitting it would spread them over files.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import usearch, { type Index as UsearchIndex } from 'usearch';
import {
  ENCODER_ROLES,
  type CollectionSpec,
  type Condition,
  type EncoderRole,
  type FieldValue,
  type Filter,
  type PointPayload,
} from '@lookalike/core';
import writeFileAtomic from 'write-file-atomic';

/** Graph degree; 16 is usearch's and hnswlib's usual default (recall@10 ≥ 0.97 at 100k; bench/search.ts). */
const CONNECTIVITY = 16;
/** Beam width while inserting. */
const EXPANSION_ADD = 128;
/**
 * Beam width while searching (usearch widens it to the candidates asked for). ef 64 on i8 gave recall@10 0.998 at
 * 100k clustered points (bench:search-scale). ef 32 was faster there (0.065 against 0.106 ms, recall 0.993) but fell
 * under 0.95 on this package's test of 20k random 32-dim vectors, so the graph keeps 64.
 */
const EXPANSION_SEARCH = 64;
/** Candidates taken from the quantised graph per result, re-ranked on the float32 vectors. */
const RERANK = 2;
/**
 * The unfiltered walk's beam grows with the archive, because a fixed beam finds less of the true top 10 in a bigger
 * graph: asking usearch for more candidates widens its beam to that many (and they are all re-ranked exactly). At 1M
 * clustered points, 50 per cluster (bench:search-scale --seeds 20000), candidates 32 → recall@10 0.895, 48 → 0.956,
 * 64 → 0.972, 96 → 0.989, 128 → 1.000; at 100k, 32 gave 0.993. So 32 × (points / 100k)^0.4 (61 at 500k, 81 at 1M),
 * never under the graph's own {@link EXPANSION_SEARCH}.
 */
function unfilteredBeam(points: number): number {
  return Math.min(512, Math.ceil(32 * Math.max(1, points / 100_000) ** 0.4));
}
/**
 * Candidates passing the filter a filtered walk asks the graph for, per result: its candidates are the graph's
 * approximate nearest of all points, so it needs more of them than an unfiltered walk to find the filtered nearest
 * (at 100k clustered points, 10 % passing: recall@10 0.930 with 2 in 1.2 ms, 0.958 with 4, 0.973 with 8 in 6.3 ms;
 * the exact scan: 1.000 in 9.4 ms; bench/search-scale.ts).
 */
const FILTERED_RERANK = 8;
/**
 * What a graph walk costs per candidate asked for, in exact dot products over scattered float32 rows: a filtered
 * search scans its candidates exactly when that is cheaper than the walk it would need. Measured on this project's
 * 2-core machine at 100k points, 128 dims (bench/search-scale.ts): a walk costs 4–8 µs per candidate beyond
 * `EXPANSION_SEARCH`, a scattered row 0.5–1 µs (memory-bound, so much the same in JavaScript or native code).
 */
const WALK_COST_PER_CANDIDATE = 8;
/** The share of points a filter without a posting list (a range) is assumed to pass, for its first walk. */
const GUESSED_SELECTIVITY = 0.1;
/** The snapshot format; another number means rebuild from the table. (2: the vectors' norms are kept.) */
const FORMAT = 2;

/** A point as the index holds it. */
export interface IndexedPoint {
  id: string;
  /** The payload as stored in the table (JSON, with `id`). */
  payload: string;
  vectors: Record<EncoderRole, ArrayLike<number>>;
}

/** One hit of the index: the slot's id, cosine similarity and payload JSON. */
export interface IndexHit {
  id: string;
  score: number;
  payload: string;
}

type Column =
  | { kind: 'keyword' | 'bool'; values: (string | boolean | null)[]; postings: Map<string | boolean, Set<number>> }
  | { kind: 'number'; values: Float64Array };

/** What the snapshot's manifest says it holds. */
interface Manifest {
  format: number;
  generation: number;
  /** The highest write sequence number applied; every table row with a higher `seq` is caught up at open. */
  seq: number;
  slots: number;
  live: number;
  dims: Record<EncoderRole, number>;
  fields: string;
  /** sha256 of the live ids in slot order, checked against what was loaded. */
  idsHash: string;
}

function fieldValue(payload: unknown, path: string): FieldValue | null {
  let v: unknown = payload;
  for (const key of path.split('.')) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[key] : undefined;
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? v : null;
}

/** The value a filter column holds for a payload, typed as the table's column (see `EmbeddedVectorStore.row`). */
export function columnValue(
  payload: unknown,
  field: CollectionSpec['indexedFields'][number],
): string | number | boolean | null {
  const v = fieldValue(payload, field.path);
  if (v === null) return null;
  if (field.type === 'keyword') return String(v);
  if (field.type === 'bool') return Boolean(v);
  return typeof v === 'number' ? v : null;
}

/** Keeps the `k` best (highest) scores seen, sorted descending. */
class TopK {
  readonly slots: number[] = [];
  readonly scores: number[] = [];
  constructor(private readonly k: number) {}
  get worst(): number {
    return this.slots.length < this.k ? -Infinity : this.scores[this.scores.length - 1]!;
  }
  push(slot: number, score: number): void {
    if (score <= this.worst) return;
    let i = this.scores.length;
    if (i === this.k) i--;
    while (i > 0 && this.scores[i - 1]! < score) {
      if (i < this.k) {
        this.scores[i] = this.scores[i - 1]!;
        this.slots[i] = this.slots[i - 1]!;
      }
      i--;
    }
    this.scores[i] = score;
    this.slots[i] = slot;
  }
}

/** The vector index of one collection; every method is synchronous except persisting. */
export class VectorIndex {
  private ids: (string | undefined)[] = [];
  private payloads: (string | undefined)[] = [];
  private readonly slotOf = new Map<string, number>();
  private readonly free: number[] = [];
  private graphs: Record<EncoderRole, UsearchIndex>;
  /** Unit-length vectors, slot-major: [capacity, dim] per tower. */
  private matrices: Record<EncoderRole, Float32Array>;
  /** Each slot's vector length before it was made unit-length, per tower, so that `get` returns what was stored. */
  private norms: Record<EncoderRole, Float32Array>;
  private columns = new Map<string, Column>();
  /** The highest write sequence number applied. */
  seq = -1;
  private generation = 0;
  /** Points changed since the last snapshot. */
  changedSinceSave = 0;

  constructor(
    private readonly spec: CollectionSpec,
    private readonly threads: number,
  ) {
    this.graphs = this.emptyGraphs();
    const none = () => Object.fromEntries(ENCODER_ROLES.map((r) => [r, new Float32Array(0)]));
    this.matrices = none() as Record<EncoderRole, Float32Array>;
    this.norms = none() as Record<EncoderRole, Float32Array>;
    this.resetColumns();
  }

  private emptyGraphs(): Record<EncoderRole, UsearchIndex> {
    return Object.fromEntries(
      ENCODER_ROLES.map((r) => [
        r,
        new usearch.Index({
          dimensions: this.spec.dims[r],
          metric: usearch.MetricKind.Cos,
          quantization: usearch.ScalarKind.I8,
          connectivity: CONNECTIVITY,
          expansion_add: EXPANSION_ADD,
          expansion_search: EXPANSION_SEARCH,
          multi: false,
        }),
      ]),
    ) as Record<EncoderRole, UsearchIndex>;
  }

  private resetColumns(): void {
    this.columns = new Map(
      this.spec.indexedFields.map((f): [string, Column] => [
        f.path,
        f.type === 'keyword' || f.type === 'bool'
          ? { kind: f.type, values: [], postings: new Map() }
          : { kind: 'number', values: new Float64Array(0) },
      ]),
    );
  }

  /** Live points. */
  get size(): number {
    return this.slotOf.size;
  }

  has(id: string): boolean {
    return this.slotOf.has(id);
  }

  /** Every live id (for reconciling with the table). */
  liveIds(): IterableIterator<string> {
    return this.slotOf.keys();
  }

  private ensureCapacity(slots: number): void {
    const have = this.matrices.robust.length / this.spec.dims.robust;
    if (slots <= have) return;
    const capacity = Math.max(slots, Math.ceil(have * 1.5), 1024);
    for (const r of ENCODER_ROLES) {
      const next = new Float32Array(capacity * this.spec.dims[r]);
      next.set(this.matrices[r]);
      this.matrices[r] = next;
      const norms = new Float32Array(capacity);
      norms.set(this.norms[r]);
      this.norms[r] = norms;
    }
    for (const c of this.columns.values())
      if (c.kind === 'number') {
        const next = new Float64Array(capacity).fill(Number.NaN);
        next.set(c.values);
        c.values = next;
      }
  }

  private setFields(slot: number, payload: unknown): void {
    for (const f of this.spec.indexedFields) {
      const c = this.columns.get(f.path)!;
      const v = payload === undefined ? null : columnValue(payload, f);
      if (c.kind === 'number') c.values[slot] = typeof v === 'number' ? v : Number.NaN;
      else {
        const old = c.values[slot];
        if (old !== undefined && old !== null) c.postings.get(old)?.delete(slot);
        c.values[slot] = v as string | boolean | null;
        if (v !== null) {
          const set = c.postings.get(v as string | boolean) ?? new Set<number>();
          set.add(slot);
          c.postings.set(v as string | boolean, set);
        }
      }
    }
  }

  /**
   * Adds or replaces points (the last of a repeated id wins). A point whose vectors are unchanged keeps its graph
   * node, so re-upserting the same points is cheap.
   */
  upsert(points: readonly IndexedPoint[]): void {
    const latest = new Map(points.map((p) => [p.id, p]));
    const added: number[] = [];
    for (const p of latest.values()) {
      let slot = this.slotOf.get(p.id);
      const fresh = slot === undefined;
      if (slot === undefined) {
        slot = this.free.pop() ?? this.ids.length;
        this.ensureCapacity(slot + 1);
        this.ids[slot] = p.id;
        this.slotOf.set(p.id, slot);
      }
      let moved = fresh;
      for (const r of ENCODER_ROLES) {
        const dim = this.spec.dims[r];
        const row = this.matrices[r].subarray(slot * dim, (slot + 1) * dim);
        let norm = 0;
        for (let i = 0; i < dim; i++) norm += p.vectors[r][i]! * p.vectors[r][i]!;
        norm = Math.sqrt(norm) || 1;
        this.norms[r][slot] = norm;
        for (let i = 0; i < dim; i++) {
          const x = p.vectors[r][i]! / norm;
          if (Math.abs(row[i]! - x) > 1e-7) moved = true;
          row[i] = x;
        }
      }
      if (moved) {
        if (!fresh) for (const r of ENCODER_ROLES) this.graphs[r].remove(BigInt(slot));
        added.push(slot);
      }
      this.payloads[slot] = p.payload;
      this.setFields(slot, JSON.parse(p.payload));
      this.changedSinceSave++;
    }
    if (added.length === 0) return;
    const keys = BigUint64Array.from(added, (s) => BigInt(s));
    for (const r of ENCODER_ROLES) {
      const dim = this.spec.dims[r];
      const block = new Float32Array(added.length * dim);
      added.forEach((s, i) => block.set(this.matrices[r].subarray(s * dim, (s + 1) * dim), i * dim));
      this.graphs[r].add(keys, block, this.threads);
    }
  }

  /** Removes points by id; unknown ids are ignored. */
  delete(ids: Iterable<string>): void {
    for (const id of ids) {
      const slot = this.slotOf.get(id);
      if (slot === undefined) continue;
      for (const r of ENCODER_ROLES) this.graphs[r].remove(BigInt(slot));
      this.slotOf.delete(id);
      this.ids[slot] = undefined;
      this.payloads[slot] = undefined;
      this.setFields(slot, undefined);
      this.free.push(slot);
      this.changedSinceSave++;
    }
  }

  /**
   * The points with these ids, in that order (unknown ids left out): the payload JSON and, when asked, each tower's
   * vector as it was stored (its unit vector times its norm; equal to the float32 input to about 1e-7 relative).
   */
  get(ids: readonly string[], withVectors: boolean): IndexedPoint[] {
    const found: IndexedPoint[] = [];
    for (const id of ids) {
      const slot = this.slotOf.get(id);
      if (slot === undefined) continue;
      const point: IndexedPoint = { id, payload: this.payloads[slot]!, vectors: {} as IndexedPoint['vectors'] };
      if (withVectors)
        for (const r of ENCODER_ROLES) {
          const dim = this.spec.dims[r];
          const norm = this.norms[r][slot]!;
          point.vectors[r] = Float32Array.from(
            this.matrices[r].subarray(slot * dim, (slot + 1) * dim),
            (x) => x * norm,
          );
        }
      found.push(point);
    }
    return found;
  }

  private unit(vector: Float32Array): Float32Array {
    let n = 0;
    for (const x of vector) n += x * x;
    n = Math.sqrt(n) || 1;
    return vector.map((x) => x / n);
  }

  private dot(q: Float32Array, role: EncoderRole, slot: number): number {
    const m = this.matrices[role];
    const dim = q.length;
    const o = slot * dim;
    let s = 0;
    for (let i = 0; i < dim; i++) s += q[i]! * m[o + i]!;
    return s;
  }

  private hits(top: TopK): IndexHit[] {
    return top.slots.map((slot, i) => ({ id: this.ids[slot]!, score: top.scores[i]!, payload: this.payloads[slot]! }));
  }

  /** The graph's `n` nearest slots, re-ranked exactly, optionally keeping only those `keep` accepts. */
  private walk(q: Float32Array, role: EncoderRole, k: number, n: number, keep?: (slot: number) => boolean): TopK {
    // usearch refuses to look for 0 neighbours: an empty index has none to give.
    if (this.size === 0) return new TopK(k);
    const found = this.graphs[role].search(q, Math.min(n, this.size), 1);
    const top = new TopK(k);
    for (const key of found.keys) {
      const slot = Number(key);
      if (keep && !keep(slot)) continue;
      top.push(slot, this.dot(q, role, slot));
    }
    return top;
  }

  private scan(q: Float32Array, role: EncoderRole, k: number, slots: Iterable<number>, keep?: (s: number) => boolean) {
    const top = new TopK(k);
    for (const slot of slots) if (!keep || keep(slot)) top.push(slot, this.dot(q, role, slot));
    return top;
  }

  /**
   * The `k` nearest points by cosine. Exact: a scan of every point (native) or of a filter's candidates. Unfiltered:
   * the graph, re-ranked. Filtered: whichever reads fewer rows ({@link WALK_COST_PER_CANDIDATE}) of a graph walk
   * asking for k × {@link FILTERED_RERANK} ÷ selectivity candidates (selectivity from the posting lists, or a guess)
   * that widens until k points pass the filter, and an exact scan of the candidates a posting list gives (or of every
   * point). So a filtered search costs about 8k ÷ selectivity walk steps or selectivity × points rows, the smaller;
   * the worst selectivity is √(640 ÷ points), where both cost about 10–20 µs × √(points) at 128 dims (3–6 ms at
   * 100k, 10–20 ms at 1M).
   */
  search(vector: Float32Array, role: EncoderRole, k: number, filter?: Filter, exact = false): IndexHit[] {
    const q = this.unit(vector);
    const unfilteredWalk = Math.max(k * RERANK, k + 10, unfilteredBeam(this.size));
    const f = filter && this.withoutVacuous(filter);
    if (!f) return this.hits(exact ? this.exactAll(q, role, k) : this.walk(q, role, k, unfilteredWalk));
    const keep = this.predicate(f);
    const candidates = this.candidates(f);
    const rows = candidates?.size ?? this.size;
    if (exact) return this.hits(this.scan(q, role, k, candidates ?? this.slotOf.values(), keep));
    // A filter that only excludes posted values (text search leaving out suspicious captions) keeps a known share:
    // the walk is the unfiltered one, widened by that share.
    const excluded = candidates ? undefined : this.excludedShare(f);
    const selectivity = candidates
      ? Math.max(candidates.size / this.size, 1e-6)
      : excluded === undefined
        ? GUESSED_SELECTIVITY
        : Math.max(1 - excluded, 1e-6);
    const start =
      excluded === undefined
        ? Math.ceil((k * FILTERED_RERANK) / selectivity) + 10
        : Math.ceil(unfilteredWalk / selectivity);
    for (let n = start; n * WALK_COST_PER_CANDIDATE < rows; n *= 4) {
      const top = this.walk(q, role, k, n, keep);
      if (top.slots.length >= k || n >= this.size) return this.hits(top);
    }
    return this.hits(this.scan(q, role, k, candidates ?? this.slotOf.values(), keep));
  }

  /**
   * The exact `k` nearest of every live point, by usearch's native (SIMD) scan of the slot matrix; freed slots still
   * hold their old rows, so as many more are asked for and skipped. Scores are recomputed as in every other path.
   */
  private exactAll(q: Float32Array, role: EncoderRole, k: number): TopK {
    const top = new TopK(k);
    const slots = this.ids.length;
    if (this.size === 0) return top;
    const dim = q.length;
    const data = this.matrices[role].subarray(0, slots * dim);
    const want = Math.min(slots, k + this.free.length);
    const found = usearch.exactSearch(data, q, dim, want, usearch.MetricKind.IP, 1);
    for (const key of found.keys) {
      const slot = Number(key);
      if (this.ids[slot] !== undefined) top.push(slot, this.dot(q, role, slot));
    }
    return top;
  }

  /** Posting list of a `match`/`any` condition on a keyword or bool column; undefined for any other condition. */
  private posted(c: Condition): Set<number> | undefined {
    const col = this.columns.get(c.field);
    if (!col || col.kind === 'number' || 'range' in c) return undefined;
    const values = 'match' in c ? [c.match] : c.any;
    if (values.length === 1) return col.postings.get(values[0] as string | boolean) ?? new Set();
    const union = new Set<number>();
    for (const v of values) for (const s of col.postings.get(v as string | boolean) ?? []) union.add(s);
    return union;
  }

  /**
   * `filter` without the `mustNot` conditions that match no point (they exclude nothing); undefined when nothing is
   * left, so that the search is the unfiltered one, with the same results.
   */
  private withoutVacuous(filter: Filter): Filter | undefined {
    const mustNot = (filter.mustNot ?? []).filter((c) => this.posted(c)?.size !== 0);
    const rest: Filter = {
      ...(filter.must?.length ? { must: filter.must } : {}),
      ...(filter.should?.length ? { should: filter.should } : {}),
      ...(mustNot.length ? { mustNot } : {}),
    };
    return Object.keys(rest).length ? rest : undefined;
  }

  /** For a filter of posted `mustNot` conditions alone: the share of points they exclude (at most); else undefined. */
  private excludedShare(filter: Filter): number | undefined {
    if (filter.must?.length || filter.should?.length || !filter.mustNot?.length || this.size === 0) return undefined;
    let excluded = 0;
    for (const c of filter.mustNot) {
      const set = this.posted(c);
      if (!set) return undefined;
      excluded += set.size;
    }
    return Math.min(1, excluded / this.size);
  }

  /** The slots that can match, from posting lists (the smallest `must` set, or the union of `should`), if any. */
  private candidates(filter: Filter): Set<number> | undefined {
    const posted = (c: Condition) => this.posted(c);
    let best: Set<number> | undefined;
    for (const c of filter.must ?? []) {
      const set = posted(c);
      if (set && (!best || set.size < best.size)) best = set;
    }
    if (filter.should?.length) {
      const sets = filter.should.map(posted);
      if (sets.every((s) => s !== undefined)) {
        const union = new Set<number>();
        for (const s of sets) for (const slot of s) union.add(slot);
        if (!best || union.size < best.size) best = union;
      }
    }
    return best;
  }

  /** The filter as a test on a slot, with the SQL predicate's semantics (comparisons with null are false). */
  private predicate(filter: Filter): (slot: number) => boolean {
    const test = (c: Condition): ((slot: number) => boolean | null) => {
      const col = this.columns.get(c.field)!;
      if (col.kind === 'number') {
        const values = col.values;
        if ('match' in c) return (s) => (Number.isNaN(values[s]!) ? null : values[s] === c.match);
        if ('any' in c) return (s) => (Number.isNaN(values[s]!) ? null : c.any.includes(values[s]!));
        const { gt, gte, lt, lte } = c.range;
        return (s) => {
          const v = values[s]!;
          if (Number.isNaN(v)) return null;
          return (
            (gt === undefined || v > gt) &&
            (gte === undefined || v >= gte) &&
            (lt === undefined || v < lt) &&
            (lte === undefined || v <= lte)
          );
        };
      }
      const values = col.values;
      if ('match' in c) return (s) => (values[s] == null ? null : values[s] === c.match);
      if ('any' in c) return (s) => (values[s] == null ? null : c.any.includes(values[s]));
      return () => null;
    };
    const must = (filter.must ?? []).map(test);
    const should = (filter.should ?? []).map(test);
    const mustNot = (filter.mustNot ?? []).map(test);
    return (s) =>
      must.every((t) => t(s) === true) &&
      (should.length === 0 || should.some((t) => t(s) === true)) &&
      mustNot.every((t) => t(s) !== true);
  }

  private idsHash(): string {
    const hash = createHash('sha256');
    for (const id of this.ids) hash.update(id ?? '').update('\n');
    return hash.digest('hex');
  }

  /**
   * Writes a snapshot into `dir`: the graphs, the vectors and the payloads under a new generation, then the manifest
   * (renamed into place, so a crash leaves the previous snapshot whole), then removes older generations.
   */
  async save(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    // Time-based, so that a snapshot never reuses the file names of one another handle may still be reading.
    const generation = Math.max(this.generation + 1, Date.now());
    const slots = this.ids.length;
    const prefix = join(dir, `g${generation}`);
    for (const r of ENCODER_ROLES) {
      this.graphs[r].save(`${prefix}.${r}.usearch`);
      const m = this.matrices[r].subarray(0, slots * this.spec.dims[r]);
      await writeFile(`${prefix}.${r}.f32`, new Uint8Array(m.buffer, m.byteOffset, m.byteLength));
      const n = this.norms[r].subarray(0, slots);
      await writeFile(`${prefix}.${r}.norm`, new Uint8Array(n.buffer, n.byteOffset, n.byteLength));
    }
    await writeFile(`${prefix}.points.jsonl`, this.payloads.map((p) => p ?? '').join('\n'));
    const manifest: Manifest = {
      format: FORMAT,
      generation,
      seq: this.seq,
      slots,
      live: this.size,
      dims: this.spec.dims,
      fields: JSON.stringify(this.spec.indexedFields),
      idsHash: this.idsHash(),
    };
    await writeFileAtomic(join(dir, 'manifest.json'), JSON.stringify(manifest));
    this.generation = generation;
    this.changedSinceSave = 0;
    for (const name of await readdir(dir))
      if (/^g\d+\./.test(name) && !name.startsWith(`g${generation}.`)) await rm(join(dir, name), { force: true });
  }

  /**
   * Loads the snapshot in `dir` if it is whole and was made for `spec`; otherwise an empty index (`seq` -1, so the
   * store rebuilds it from the table), with the reason.
   */
  static async load(
    dir: string,
    spec: CollectionSpec,
    threads: number,
  ): Promise<{ index: VectorIndex; loaded: boolean; reason?: string }> {
    const empty = (reason: string) => ({ index: new VectorIndex(spec, threads), loaded: false, reason });
    const path = join(dir, 'manifest.json');
    if (!existsSync(path)) return empty('no snapshot');
    try {
      const m = JSON.parse(await readFile(path, 'utf8')) as Manifest;
      if (m.format !== FORMAT) return empty(`snapshot format ${m.format}`);
      if (ENCODER_ROLES.some((r) => m.dims[r] !== spec.dims[r]) || m.fields !== JSON.stringify(spec.indexedFields))
        return empty('snapshot made for another collection layout');
      const index = new VectorIndex(spec, threads);
      const prefix = join(dir, `g${m.generation}`);
      const lines = m.slots === 0 ? [] : (await readFile(`${prefix}.points.jsonl`, 'utf8')).split('\n');
      if (lines.length !== m.slots) return empty('snapshot points file is incomplete');
      index.ensureCapacity(m.slots);
      for (const r of ENCODER_ROLES) {
        const bytes = await readFile(`${prefix}.${r}.f32`);
        if (bytes.byteLength !== m.slots * spec.dims[r] * 4) return empty(`snapshot ${r} vectors are incomplete`);
        index.matrices[r].set(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4));
        const norms = await readFile(`${prefix}.${r}.norm`);
        if (norms.byteLength !== m.slots * 4) return empty(`snapshot ${r} norms are incomplete`);
        index.norms[r].set(new Float32Array(norms.buffer, norms.byteOffset, norms.byteLength / 4));
        index.graphs[r].load(`${prefix}.${r}.usearch`);
      }
      lines.forEach((line, slot) => {
        if (!line) {
          index.ids.push(undefined);
          index.payloads.push(undefined);
          index.free.push(slot);
          index.setFields(slot, undefined);
          return;
        }
        const payload = JSON.parse(line) as PointPayload;
        index.ids.push(payload.id);
        index.payloads.push(line);
        index.slotOf.set(payload.id, slot);
        index.setFields(slot, payload);
      });
      const graphSizes = ENCODER_ROLES.map((r) => index.graphs[r].size());
      if (index.size !== m.live || graphSizes.some((s) => s !== m.live) || index.idsHash() !== m.idsHash)
        return empty('snapshot ids do not match its manifest');
      index.seq = m.seq;
      index.generation = m.generation;
      return { index, loaded: true };
    } catch (error) {
      return empty(`snapshot unreadable: ${(error as Error).message}`);
    }
  }
}
