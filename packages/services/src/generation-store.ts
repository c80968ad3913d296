import {
  ENCODER_ROLES,
  type CollectionSpec,
  type Filter,
  type Point,
  type SearchHit,
  type SearchQuery,
  type StoredPoint,
  type VectorStore,
} from '@lookalike/core';
import {
  reindexRunId,
  type GenerationPlan,
  type Generations,
  type ReindexRequiredError,
  type Towers,
} from '@lookalike/ingest';

/** How often, at most, a store waiting for its re-index reads the target's record to see whether it completed. */
const REFRESH_MS = 2000;

/** How long the source's handle stays open after the switch, for the requests that were already using it. */
const RELEASE_MS = 30_000;

/** Options of {@link GenerationStore.open}. */
export interface GenerationStoreOptions {
  /** The command that re-embeds this store, for errors (`npx lookalike reindex --data data/demo`). */
  command: string;
  /** Told when the store switches to its re-indexed collection. */
  log?: (line: string) => void;
  /**
   * Load the served collection's search index now (the embedded store's), so that the first search is as fast as
   * the next. Default true; a process that rarely searches (a worker) leaves it to the first search.
   */
  warm?: boolean;
}

/**
 * The `VectorStore` the apps use: the collection of the configured towers (see `Generations` in
 * `@lookalike/ingest`). Normally that collection serves and takes every call. While it waits for a re-index (the
 * towers changed), writes still go to it, but reads come from the collection it is re-embedded from, with the old
 * vectors, and vector search answers only for a query vector read from that collection (a search from a stored
 * image) in the same role: any other query would compare vectors of two models, so it is refused with a
 * {@link ReindexRequiredError} saying how far the re-index is. The store switches to the new collection by itself
 * once the re-index completes (in this or any other process), within {@link REFRESH_MS} of a call.
 */
export class GenerationStore implements VectorStore {
  /** Compacts and indexes the collection of the configured towers; only the embedded store has it. */
  readonly optimize?: () => Promise<{ indexed: boolean }>;
  /** Where each vector this store handed out came from: `<collection>:<role>`. */
  private readonly origins = new WeakMap<Float32Array, string>();
  private checked = 0;
  private checking: Promise<void> | undefined;

  private constructor(
    private readonly generations: Generations,
    private plan: GenerationPlan,
    private readonly target: VectorStore,
    private source: VectorStore | undefined,
    private readonly options: GenerationStoreOptions,
  ) {
    const optimizable = target as VectorStore & { optimize?: () => Promise<{ indexed: boolean }> };
    if (optimizable.optimize) this.optimize = () => optimizable.optimize!();
  }

  /**
   * Opens the store for `plan` (from `generations.resolve(towers)`): the target collection, created and recorded if
   * missing, and while a re-index is pending, the collection it reads from.
   */
  static async open(
    generations: Generations,
    plan: GenerationPlan,
    options: GenerationStoreOptions,
  ): Promise<GenerationStore> {
    const target = await generations.target(plan);
    const source = plan.source ? await generations.existing(plan.source.name) : undefined;
    const served = (source ?? target) as VectorStore & { loadIndex?: () => Promise<void> };
    if (options.warm ?? true) await served.loadIndex?.();
    return new GenerationStore(generations, plan, target, source, options);
  }

  /** The plan the store follows now (it changes when the re-index completes). */
  get current(): GenerationPlan {
    return this.plan;
  }

  /** The configured towers. */
  get towers(): Towers {
    return this.plan.towers;
  }

  /** True while the collection of the configured towers waits for its re-index. */
  get pending(): boolean {
    return !this.plan.target.ready && this.source !== undefined;
  }

  /**
   * Reads the target's record and switches to it once it is ready. Cheap (one metadata read); calls within
   * {@link REFRESH_MS} of the last share its answer unless `force`.
   */
  async refresh(force = false): Promise<void> {
    if (!this.pending) return;
    if (!force && Date.now() - this.checked < REFRESH_MS) return;
    this.checking ??= (async () => {
      try {
        const record = await this.generations.read(this.plan.target.name);
        this.checked = Date.now();
        if (record?.state !== 'ready') return;
        const from = this.plan.source?.name;
        this.plan = { towers: this.plan.towers, target: { ...this.plan.target, exists: true, ready: true } };
        this.source = undefined;
        this.options.log?.(
          `The re-index into collection ${this.plan.target.name} completed; search now uses its vectors` +
            `${from ? ` (collection ${from} is kept until it is pruned)` : ''}.`,
        );
        if (from) setTimeout(() => void this.generations.release(from), RELEASE_MS).unref();
      } finally {
        this.checking = undefined;
      }
    })();
    await this.checking;
  }

  /**
   * The error a refused search gets now: what is stored, what is configured, how far the re-index is. For clients
   * (API responses; the default) without server paths; for operators with them and the exact command.
   */
  async reindexRequired(audience: 'clients' | 'operators' = 'clients'): Promise<ReindexRequiredError> {
    const { target } = this.plan;
    const record = await this.generations.read(target.name);
    const run = record?.reindex;
    const total = this.plan.source ? await this.generations.collections.points(this.plan.source.name) : 0;
    const done = await this.generations.collections.points(target.name);
    const status = !run
      ? undefined
      : run.finishedAt
        ? { runId: reindexRunId(target.name, run.run), done, total, finished: true, totals: run.totals }
        : { runId: reindexRunId(target.name, run.run), done, total, finished: false };
    return this.generations.reindexRequired(this.plan, this.options.command, status, {
      forClients: audience === 'clients',
    });
  }

  private tag(points: StoredPoint[], collection: string): StoredPoint[] {
    for (const p of points)
      if (p.vectors) for (const r of ENCODER_ROLES) this.origins.set(p.vectors[r], `${collection}:${r}`);
    return points;
  }

  ensureCollection(spec: CollectionSpec): Promise<void> {
    return this.target.ensureCollection(spec);
  }

  upsert(points: readonly Point[]): Promise<void> {
    return this.target.upsert(points);
  }

  async search(query: SearchQuery): Promise<SearchHit[]> {
    await this.refresh();
    const source = this.source;
    const from = this.plan.source;
    if (!this.pending || !source || !from) return this.target.search(query);
    if (from.towers && this.origins.get(query.vector) === `${from.name}:${query.using}`) return source.search(query);
    throw await this.reindexRequired();
  }

  async get(ids: readonly string[], options: { withVectors?: boolean } = {}): Promise<StoredPoint[]> {
    await this.refresh();
    const source = this.source;
    const { source: from, target: to } = this.plan;
    if (!this.pending || !source || !from) return this.target.get(ids, options);
    // Images ingested since the towers changed are only in the target; the rest are read from the source.
    const fresh = this.tag(await this.target.get(ids, options), to.name);
    const have = new Set(fresh.map((p) => p.id));
    const old = this.tag(
      await source.get(
        ids.filter((id) => !have.has(id)),
        options,
      ),
      from.name,
    );
    const byId = new Map([...old, ...fresh].map((p) => [p.id, p]));
    return ids.flatMap((id) => byId.get(id) ?? []);
  }

  async delete(ids: readonly string[]): Promise<void> {
    await this.target.delete(ids);
    // Also from the source, so that the re-index does not bring a deleted image back.
    if (this.pending) await this.source?.delete(ids);
  }

  async count(filter?: Filter): Promise<number> {
    await this.refresh();
    return (this.pending ? this.source! : this.target).count(filter);
  }

  async scroll(options: Parameters<VectorStore['scroll']>[0]): Promise<{ points: StoredPoint[]; next?: string }> {
    await this.refresh();
    const source = this.source;
    const from = this.plan.source;
    if (!this.pending || !source || !from) return this.target.scroll(options);
    const page = await source.scroll(options);
    return { ...page, points: this.tag(page.points, from.name) };
  }

  async ping(): Promise<void> {
    await this.target.ping();
    if (this.pending) await this.source?.ping();
  }

  /** Closes every collection handle of this process. */
  close(): Promise<void> {
    return this.generations.close();
  }
}
