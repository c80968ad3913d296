import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import * as lancedb from '@lancedb/lancedb';
import writeFileAtomic from 'write-file-atomic';
import { ENCODER_ROLES, UnavailableError, type EncoderRole } from '@lookalike/core';
import { openCommittedTable, storeCall } from './lance-rows.js';
import { EmbeddedVectorStore, type EmbeddedStoreOptions } from './lance-store.js';

/**
 * The tables of the embedded store's folder as collections with JSON metadata, for keeping several generations of
 * the store side by side (a re-index to other towers builds a new table and switches to it once complete). A
 * table's metadata is a small JSON file beside it, `<name>.meta.json`, replaced whole (written aside, then renamed),
 * so a reader sees the old or the new one and never half of one. The table and its metadata are dropped together
 * with its vector index snapshot.
 */
export class EmbeddedCollections {
  /** For messages. */
  readonly where: string;
  private db: Promise<lancedb.Connection> | undefined;

  constructor(
    private readonly dir: string,
    private readonly options: EmbeddedStoreOptions = {},
  ) {
    this.where = `the embedded store in ${dir}`;
  }

  private connection(): Promise<lancedb.Connection> {
    this.db ??= lancedb.connect(this.dir, { readConsistencyInterval: 0 });
    return this.db;
  }

  private call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return storeCall(what, fn);
  }

  private metaFile(name: string): string {
    return join(this.dir, `${name}.meta.json`);
  }

  /** Every table in the folder. */
  async names(): Promise<string[]> {
    const db = await this.connection();
    return this.call('list tables', () => db.tableNames());
  }

  private async table(name: string): Promise<lancedb.Table | undefined> {
    return openCommittedTable(await this.connection(), name);
  }

  /** The vector size of each role in table `name`; undefined when there is no such table. */
  async dims(name: string): Promise<Record<EncoderRole, number> | undefined> {
    const table = await this.table(name);
    if (!table) return undefined;
    try {
      const schema = await this.call(`read the schema of ${name}`, () => table.schema());
      const dims: Partial<Record<EncoderRole, number>> = {};
      for (const role of ENCODER_ROLES) {
        // Duck-typed: the schema may come from LanceDB's own copy of apache-arrow.
        const size = (schema.fields.find((f) => f.name === role)?.type as { listSize?: number } | undefined)?.listSize;
        if (typeof size !== 'number') return undefined;
        dims[role] = size;
      }
      return dims as Record<EncoderRole, number>;
    } finally {
      table.close();
    }
  }

  /** Rows of table `name`; 0 when there is no such table. */
  async points(name: string): Promise<number> {
    const table = await this.table(name);
    if (!table) return 0;
    try {
      return await this.call(`count the rows of ${name}`, () => table.countRows());
    } finally {
      table.close();
    }
  }

  /** The metadata recorded beside table `name`; undefined when there is none (or no table). */
  async metadata(name: string): Promise<Record<string, unknown> | undefined> {
    if (!(await this.names()).includes(name)) return undefined;
    let text: string;
    try {
      text = await readFile(this.metaFile(name), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new UnavailableError('store', `the embedded store could not read ${this.metaFile(name)}`, { cause: error });
    }
    try {
      const value = JSON.parse(text) as unknown;
      return value && typeof value === 'object' && !Array.isArray(value)
        ? (value as Record<string, unknown>)
        : undefined;
    } catch {
      // A file that is not JSON records nothing; the next write replaces it.
      return undefined;
    }
  }

  /** Sets top-level keys of the metadata of table `name`, keeping the others. */
  async setMetadata(name: string, metadata: Record<string, unknown>): Promise<void> {
    const merged = { ...((await this.metadata(name)) ?? {}), ...metadata };
    const file = this.metaFile(name);
    await this.call(`record what table ${name} holds`, async () => {
      await mkdir(this.dir, { recursive: true });
      await writeFileAtomic(file, `${JSON.stringify(merged, null, 2)}\n`);
    });
  }

  /**
   * A new store handle on table `name`, with the options these collections were made with and its vector index
   * loaded by its first search (or `loadIndex()`): a handle that only moves rows never holds the vectors in memory.
   */
  open(name: string): Promise<EmbeddedVectorStore> {
    return EmbeddedVectorStore.open(this.dir, name, { ...this.options, vectorIndex: 'lazy' });
  }

  /** Drops table `name`, its metadata and its vector index snapshot. Close its handles first. */
  async drop(name: string): Promise<void> {
    const db = await this.connection();
    if ((await this.names()).includes(name)) await this.call(`drop table ${name}`, () => db.dropTable(name));
    await rm(join(this.dir, `${name}.vindex`), { recursive: true, force: true });
    await rm(this.metaFile(name), { force: true });
  }

  /** Closes the folder's connection (handles from {@link open} are closed by their owners). */
  async close(): Promise<void> {
    const db = this.db;
    this.db = undefined;
    (await db?.catch(() => undefined))?.close();
  }
}
