/**
 * Generations of a vector store: one collection per set of towers. The collection named `COLLECTION` is the first;
 * when the configured towers change (model ids, preprocessing or dimension), their vectors go into a new collection
 * `COLLECTION--<fingerprint>`, filled by a re-index from the fullest other collection, and served once complete. The
 * old collection is left as it was until it is pruned, so a process still configured with the old towers keeps
 * serving it, a crash never leaves a half-converted collection behind, and no search compares vectors of two models.
 *
 * What a collection holds is recorded in its metadata (a sidecar file beside a LanceDB table, the collection metadata
 * in Qdrant) under {@link RECORD_KEY}. A collection made before records existed is scanned once and recorded when its
 * points all come from one set of towers.
 *
 * One file over 400 lines on purpose: one state machine (a collection is recorded, filled, served, pruned) whose
 * transitions read the same records; the re-index that fills a generation lives in `reindex.ts`.
 */
import { hostname } from 'node:os';
import {
  ENCODER_ROLES,
  scrollPoints,
  type CollectionSpec,
  type EncoderRole,
  type PointPayload,
  type VectorStore,
} from '@lookalike/core';
import type { JobRunner, ReindexTotals } from '@lookalike/queue';
import { ReindexRequiredError } from './errors/reindex-required-error.js';
import { describeTowers, parseTowers, sameTowers, towersFingerprint, type Towers } from './towers.js';

/**
 * Port: the collections of one vector store backend, as plain collections with JSON metadata. The embedded store
 * (`EmbeddedCollections`, LanceDB tables in a folder) and Qdrant (`QdrantCollections`) implement it.
 */
export interface StoreCollections {
  /** Where the collections live, for messages: `the embedded store in /data/store`, `Qdrant at http://qdrant:6333`. */
  readonly where: string;
  /** Every collection there. */
  names(): Promise<string[]>;
  /** The vector size of each role in collection `name`; undefined when it does not exist. */
  dims(name: string): Promise<Record<EncoderRole, number> | undefined>;
  /** Points in collection `name` (0 when it does not exist). */
  points(name: string): Promise<number>;
  /** The metadata of collection `name`; undefined when it has none. */
  metadata(name: string): Promise<Record<string, unknown> | undefined>;
  /** Sets top-level keys of the metadata of collection `name`, keeping the others. */
  setMetadata(name: string, metadata: Record<string, unknown>): Promise<void>;
  /** A new store handle on collection `name` (not yet ensured). */
  open(name: string): Promise<VectorStore>;
  /** Deletes collection `name` and everything kept beside it. */
  drop(name: string): Promise<void>;
  /** Releases what the collections hold open (not the handles from {@link open}). */
  close(): Promise<void>;
}

/** The metadata key Lookalike records a collection's generation under. */
export const RECORD_KEY = 'lookalike';

/** Where a re-index into a collection stands, recorded on that collection. */
export interface ReindexRecord {
  /** Runs started into this collection; the current one is `reindexRunId(name, run)`. */
  run: number;
  /** The page the current run last started. */
  page: number;
  startedAt: string;
  finishedAt?: string;
  /**
   * The process whose in-process runner runs it (no Redis): its jobs are in that process's memory alone, so another
   * process on the machine follows the run while that process lives instead of starting one beside it.
   */
  owner?: { host: string; pid: number };
  /** What the last finished run did. */
  totals?: ReindexTotals;
}

/** What a collection holds, as recorded in its metadata. */
export interface GenerationRecord {
  schemaVersion: 1;
  /** The towers every vector of the collection was made by. */
  towers: Towers;
  /** `building` while a re-index fills it; `ready` once it holds every point (it is then served). */
  state: 'building' | 'ready';
  createdAt: string;
  readyAt?: string;
  /** The collection it was re-embedded from. */
  from?: string;
  /** Recorded from the points of a collection made before records existed. */
  inferred?: boolean;
  reindex?: ReindexRecord;
}

/** How far a re-index run into a collection is, for messages. */
export interface ReindexStatus {
  runId: string;
  /** Points the target holds now. */
  done: number;
  /** Points of the source. */
  total: number;
  /** The run ended (ready, or with images it could not re-embed). */
  finished: boolean;
  totals?: ReindexTotals;
}

/** One collection of the store under the configured name. */
export interface Generation {
  name: string;
  dims: Record<EncoderRole, number> | undefined;
  record: GenerationRecord | undefined;
}

/** Which collection serves and takes the writes of a set of towers, and what re-index that still needs. */
export interface GenerationPlan {
  towers: Towers;
  /** The collection holding (or to hold) the vectors of `towers`: written to always, served once ready. */
  target: { name: string; exists: boolean; ready: boolean };
  /**
   * The collection a pending re-index reads from (the fullest other one), with the towers its vectors come from
   * (undefined when they are mixed); absent when the target is ready.
   */
  source?: { name: string; towers: Towers | undefined; points: number };
}

/** Whether `owner` is another live process on this machine. */
function ownedElsewhere(owner: ReindexRecord['owner']): boolean {
  if (!owner || owner.host !== hostname() || owner.pid === process.pid) return false;
  try {
    process.kill(owner.pid, 0);
    return true;
  } catch (error) {
    // EPERM: it lives, under another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The id of run `run` of the re-index into `to`: its page jobs are `<id>.p<k>`, its batches `<id>.b<n>`. */
export function reindexRunId(to: string, run: number): string {
  return `reindex.${to}.${run}`;
}

/** The job of page `page` of re-index run `runId`. */
export function reindexPageJobId(runId: string, page: number): string {
  return `${runId}.p${page}`;
}

function parseRecord(metadata: Record<string, unknown> | undefined): GenerationRecord | undefined {
  const raw = metadata?.[RECORD_KEY] as Partial<GenerationRecord> | undefined;
  if (!raw || typeof raw !== 'object' || raw.schemaVersion !== 1) return undefined;
  const towers = parseTowers(raw.towers);
  if (!towers || (raw.state !== 'building' && raw.state !== 'ready') || typeof raw.createdAt !== 'string')
    return undefined;
  return { ...raw, towers, state: raw.state, createdAt: raw.createdAt, schemaVersion: 1 };
}

/** The towers of a point's provenance, with the collection's dimensions. */
function towersFrom(embeddings: PointPayload['embeddings'] | undefined, dims: Record<EncoderRole, number>) {
  if (!embeddings) return undefined;
  return parseTowers(
    Object.fromEntries(ENCODER_ROLES.map((r) => [r, embeddings[r] ? { ...embeddings[r], dim: dims[r] } : undefined])),
  );
}

/**
 * The generations of one store under one collection name: reads and writes their records, resolves which one a set
 * of towers uses, opens one store handle per collection for this process, and starts or finds re-index runs.
 */
export class Generations {
  private readonly handles = new Map<string, Promise<VectorStore>>();

  constructor(
    readonly collections: StoreCollections,
    /** The configured collection name (`COLLECTION`). */
    readonly base: string,
    private readonly indexedFields: CollectionSpec['indexedFields'],
    private readonly options: { log?: (line: string) => void; now?: () => Date } = {},
  ) {}

  private now(): string {
    return (this.options.now?.() ?? new Date()).toISOString();
  }

  /** Whether `name` is one of this store's generations. */
  owns(name: string): boolean {
    return name === this.base || name.startsWith(`${this.base}--`);
  }

  /** The name of the generation for `towers` when it is not the first one. */
  nameFor(towers: Towers): string {
    return `${this.base}--${towersFingerprint(towers)}`;
  }

  /** Every collection of this store's generations, with its dimensions and record. */
  async list(): Promise<Generation[]> {
    const names = (await this.collections.names()).filter((n) => this.owns(n)).sort();
    return Promise.all(
      names.map(async (name) => ({
        name,
        dims: await this.collections.dims(name),
        record: parseRecord(await this.collections.metadata(name)),
      })),
    );
  }

  /** The record of collection `name`, read now. */
  async read(name: string): Promise<GenerationRecord | undefined> {
    return parseRecord(await this.collections.metadata(name));
  }

  /** Changes the record of collection `name` (read now, `change` applied, written back). */
  async update(name: string, change: (record: GenerationRecord) => GenerationRecord): Promise<GenerationRecord> {
    const record = await this.read(name);
    if (!record) throw new Error(`collection ${name} has no generation record`);
    const next = change(record);
    await this.collections.setMetadata(name, { [RECORD_KEY]: next });
    return next;
  }

  private async write(name: string, record: GenerationRecord): Promise<void> {
    await this.collections.setMetadata(name, { [RECORD_KEY]: record });
  }

  /**
   * This process's store handle on collection `name`, created with `dims` when missing. One handle per collection
   * and process, shared by everything here that reads or writes it (the embedded store wants one writer).
   */
  store(name: string, dims: Record<EncoderRole, number>): Promise<VectorStore> {
    let handle = this.handles.get(name);
    if (!handle) {
      handle = (async () => {
        const store = await this.collections.open(name);
        await store.ensureCollection({ name, dims, indexedFields: this.indexedFields });
        return store;
      })();
      this.handles.set(name, handle);
      handle.catch(() => this.handles.delete(name));
    }
    return handle;
  }

  /** The handle on an existing collection, with its own dimensions. */
  async existing(name: string): Promise<VectorStore> {
    const open = this.handles.get(name);
    if (open) return open;
    const dims = await this.collections.dims(name);
    if (!dims) throw new Error(`collection ${name} does not exist in ${this.collections.where}`);
    return this.store(name, dims);
  }

  /**
   * Reads every point of a collection that has no record yet and records what it holds when all its points come
   * from one set of towers (an empty one is recorded as `towers`' when its dimensions fit them): `COLLECTION` as
   * ready (it is from before records), a later generation as still building (its record was lost, so it may be
   * partial; a re-index completes it). Runs once per such collection: a mixed one is read again at the next start,
   * up to its first point of other towers.
   */
  private async learn(g: Generation, towers: Towers): Promise<GenerationRecord | undefined> {
    if (!g.dims) return undefined;
    const dims = g.dims;
    const points = await this.collections.points(g.name);
    let found: Towers | undefined;
    if (points === 0) {
      if (!ENCODER_ROLES.every((r) => dims[r] === towers[r].dim)) return undefined;
      found = towers;
    } else {
      this.options.log?.(
        `Collection ${g.name} in ${this.collections.where} has no record of its towers; reading the provenance of its ` +
          `${points} points once.`,
      );
      const store = await this.store(g.name, dims);
      let mixed = false;
      for await (const p of scrollPoints(store, { pageSize: 1000 })) {
        const t = towersFrom(p.payload.embeddings, dims);
        if (!t || (found && !sameTowers(found, t))) {
          mixed = true;
          break;
        }
        found ??= t;
      }
      if (mixed || !found) return undefined;
    }
    // Only `COLLECTION` can come from before records: a later generation without one lost it, and may be partial.
    const first = g.name === this.base;
    const record: GenerationRecord = {
      schemaVersion: 1,
      towers: found,
      state: first ? 'ready' : 'building',
      createdAt: this.now(),
      ...(first ? { readyAt: this.now() } : {}),
      inferred: true,
    };
    await this.write(g.name, record);
    return record;
  }

  /**
   * Works out which collection holds the vectors of `towers`: a ready one (served and written), or the one a
   * re-index fills (existing, partly filled, or still to be made) and the collection it re-embeds from. Collections
   * without a record are learnt first (see above). Creates nothing.
   */
  async resolve(towers: Towers): Promise<GenerationPlan> {
    const generations = await this.list();
    for (const g of generations) if (!g.record) g.record = await this.learn(g, towers);
    const mine = generations.filter((g) => sameTowers(g.record?.towers, towers));
    const ready = mine.find((g) => g.record?.state === 'ready');
    if (ready) return { towers, target: { name: ready.name, exists: true, ready: true } };
    const building = mine[0];
    const others = generations.filter((g) => g !== building && g.dims && g.record?.state !== 'building');
    const counted = await Promise.all(others.map(async (g) => ({ g, points: await this.collections.points(g.name) })));
    // The fullest other collection; between equals, the one that became ready last.
    const best = counted
      .filter((c) => c.points > 0)
      .sort(
        (a, b) => b.points - a.points || (b.g.record?.readyAt ?? '').localeCompare(a.g.record?.readyAt ?? '') || 0,
      )[0];
    const name = building?.name ?? (generations.some((g) => g.name === this.base) ? this.nameFor(towers) : this.base);
    return {
      towers,
      target: { name, exists: !!building, ready: false },
      ...(best ? { source: { name: best.g.name, towers: best.g.record?.towers, points: best.points } } : {}),
    };
  }

  /**
   * The target of `plan`, created with its towers' dimensions when missing and recorded: `building` from the
   * source while a re-index is pending, else `ready` (a fresh store, or a re-index whose source is gone).
   */
  async target(plan: GenerationPlan): Promise<VectorStore> {
    const dims = Object.fromEntries(ENCODER_ROLES.map((r) => [r, plan.towers[r].dim])) as Record<EncoderRole, number>;
    const store = await this.store(plan.target.name, dims);
    if (!plan.target.ready) {
      const record = await this.read(plan.target.name);
      if (!record)
        await this.write(plan.target.name, {
          schemaVersion: 1,
          towers: plan.towers,
          state: plan.source ? 'building' : 'ready',
          createdAt: this.now(),
          ...(plan.source ? { from: plan.source.name } : { readyAt: this.now() }),
        });
      else if (!plan.source && record.state !== 'ready') {
        this.options.log?.(
          `Collection ${plan.target.name} was being re-indexed but no other collection is left to re-index from; ` +
            'serving what it holds.',
        );
        await this.update(plan.target.name, (r) => ({ ...r, state: 'ready', readyAt: this.now() }));
      }
    }
    return store;
  }

  /**
   * Starts a re-index run into the plan's target, or finds the one that is running (in this runner). Processes
   * that start at once agree on the run's id, so the runner takes one job: a run goes on from where the target is
   * (points already there are skipped), so starting one after a crash resumes.
   */
  async startReindex(
    runner: Pick<JobRunner, 'enqueue' | 'getJob'>,
    plan: GenerationPlan,
    options: {
      batchSize: number;
      pageBatches?: number;
      acceptFailures?: boolean;
      /** The runner is this process's in-process runner (recorded, see {@link ReindexRecord.owner}). */
      local?: boolean;
    },
  ): Promise<{ runId: string; attached: boolean }> {
    if (!plan.source) throw new Error(`collection ${plan.target.name} needs no re-index`);
    const record = await this.read(plan.target.name);
    if (!record) throw new Error(`collection ${plan.target.name} has no generation record; create it first`);
    const current = record.reindex;
    if (current && current.run > 0 && !current.finishedAt) {
      const runId = reindexRunId(plan.target.name, current.run);
      if (ownedElsewhere(current.owner) || (await this.running(runner, runId, current.page)))
        return { runId, attached: true };
    }
    const run = (current?.run ?? 0) + 1;
    const runId = reindexRunId(plan.target.name, run);
    await this.update(plan.target.name, (r) => ({
      ...r,
      from: plan.source!.name,
      reindex: {
        run,
        page: 0,
        startedAt: this.now(),
        ...(options.local ? { owner: { host: hostname(), pid: process.pid } } : {}),
      },
    }));
    await runner.enqueue(
      'reindex-run',
      {
        runId,
        from: plan.source.name,
        to: plan.target.name,
        towers: towersFingerprint(plan.towers),
        batchSize: options.batchSize,
        ...(options.pageBatches === undefined ? {} : { pageBatches: options.pageBatches }),
        acceptFailures: options.acceptFailures ?? false,
      },
      { jobId: reindexPageJobId(runId, 0) },
    );
    return { runId, attached: false };
  }

  /** Whether run `runId` still has a page job waiting or running (page `page` or the next one). */
  async running(runner: Pick<JobRunner, 'getJob'>, runId: string, page: number): Promise<boolean> {
    for (const k of [page + 1, page]) {
      const job = await runner.getJob(reindexPageJobId(runId, k));
      if (!job || job.state === 'unknown') continue;
      // A later page exists only once this one completed: it decides.
      return job.state !== 'failed' && (job.state !== 'completed' || k === page + 1);
    }
    return false;
  }

  /**
   * The error for a store whose points need a re-index before the configured towers can search them: what the store
   * holds, what is configured, and `command`; with `status` when a run was started (running, or finished with
   * images it could not re-embed). `forClients`: for API responses, which never name server paths: the store is
   * not located, failures are counted but not named, and the command is given without its folder.
   */
  reindexRequired(
    plan: GenerationPlan,
    command: string,
    status?: ReindexStatus,
    options: { forClients?: boolean } = {},
  ): ReindexRequiredError {
    const source = plan.source;
    const clients = options.forClients ?? false;
    const cmd = clients ? 'npx lookalike reindex' : command;
    const where = clients ? 'the store' : this.collections.where;
    const shown =
      status && clients && status.totals ? { ...status, totals: { ...status.totals, failures: [] } } : status;
    const details = {
      ...(clients ? {} : { store: this.collections.where }),
      collection: plan.target.name,
      configured: plan.towers,
      ...(source ? { stored: { collection: source.name, towers: source.towers ?? null, points: source.points } } : {}),
      ...(shown ? { reindex: shown } : {}),
    };
    if (status && !status.finished)
      return new ReindexRequiredError(
        `Search is paused while the images of ${where} are re-embedded with the configured towers ` +
          `${describeTowers(plan.towers)}: ${status.done} of ${status.total} done (re-index ${status.runId} into ` +
          `collection ${plan.target.name})` +
          (source?.towers
            ? '; until it completes, only searches from a stored image answer, with the old vectors'
            : '') +
          `. \`${cmd}\` follows it.`,
        { command: cmd, details },
      );
    if (status?.totals && status.totals.failed > 0) {
      const first = clients ? undefined : status.totals.failures[0];
      return new ReindexRequiredError(
        `The re-index ${status.runId} into collection ${plan.target.name} could not re-embed ` +
          `${status.totals.failed} images` +
          (first ? ` (the first: ${first.location}: ${first.reason} [${first.code}])` : '') +
          `, so search is not switched to it: put the originals back (or fix INGEST_ROOTS, URL_ALLOWLIST) and run ` +
          `\`${cmd}\` again, or run \`${cmd} --accept-failures\` to switch without those images (the old ` +
          'collection keeps them).',
        { command: cmd, details },
      );
    }
    const held = source
      ? `${source.points} images embedded by ${source.towers ? describeTowers(source.towers) : 'several sets of towers'} in collection ${source.name}`
      : 'no images';
    return new ReindexRequiredError(
      `${where[0]!.toUpperCase()}${where.slice(1)} holds ${held}, but the configured towers are ` +
        `${describeTowers(plan.towers)}: vectors of other towers cannot be searched with them. Run \`${cmd}\` to ` +
        're-embed the images from their originals into a new collection (it resumes where it stopped and skips what ' +
        'is done).',
      { command: cmd, details },
    );
  }

  /** Closes and forgets this process's handle on collection `name`, if it has one. */
  async release(name: string): Promise<void> {
    const handle = this.handles.get(name);
    this.handles.delete(name);
    if (handle) await (await handle.catch(() => undefined))?.close();
  }

  /**
   * Deletes every other generation once `keep` is ready, closing this process's handles on them first. Returns the
   * names dropped.
   */
  async prune(keep: string): Promise<string[]> {
    const record = await this.read(keep);
    if (record?.state !== 'ready') throw new Error(`collection ${keep} is not ready; nothing is pruned`);
    const dropped: string[] = [];
    for (const g of await this.list()) {
      if (g.name === keep) continue;
      await this.release(g.name);
      await this.collections.drop(g.name);
      dropped.push(g.name);
    }
    return dropped;
  }

  /** Closes every handle this process opened, then the collections. */
  async close(): Promise<void> {
    const handles = [...this.handles.values()];
    this.handles.clear();
    await Promise.all(handles.map(async (h) => (await h.catch(() => undefined))?.close()));
    await this.collections.close();
  }
}
