import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { filterSchema, scrollPoints } from '@lookalike/core';
import { contractPoint, describeVectorStoreContract } from '@lookalike/store-contract';
import { connect } from '@lancedb/lancedb';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { EmbeddedVectorStore } from './lance-store.js';
import { whereClause } from './where.js';

// The contract with the vector index loaded by ensureCollection (the default), and by the first search.
for (const [label, options] of [
  ['EmbeddedVectorStore (LanceDB)', {}],
  ['EmbeddedVectorStore (LanceDB), vector index loaded lazily', { vectorIndex: 'lazy' }],
] as const)
  describeVectorStoreContract(label, async (spec) => {
    const dir = await mkdtemp(join(tmpdir(), 'lance-contract-'));
    const stores: EmbeddedVectorStore[] = [await EmbeddedVectorStore.open(dir, 'lookalike', options)];
    return {
      store: stores[0]!,
      reopen: async () => {
        const store = await EmbeddedVectorStore.open(dir, 'lookalike', options);
        await store.ensureCollection(spec);
        stores.push(store);
        return store;
      },
      dispose: async () => {
        for (const s of stores) await s.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  });

describe(whereClause.name, () => {
  const spec = {
    indexedFields: [
      { path: 'labels.part', type: 'keyword' as const },
      { path: 'width', type: 'integer' as const },
    ],
  };

  it('quotes every value and refuses fields that are not filterable', () => {
    expect(whereClause({ must: [{ field: 'labels.part', match: "o'brien" }] }, spec)).toBe(
      "(f_labels_part = 'o''brien')",
    );
    expect(() => whereClause({ must: [{ field: 'labels.color', match: 'red' }] }, spec)).toThrow(
      /cannot filter on labels.color/,
    );
  });

  it('keeps hostile strings inside one quoted literal', () => {
    fc.assert(
      fc.property(fc.string(), (value) => {
        const filter = filterSchema.parse({ must: [{ field: 'labels.part', match: value }] });
        const sql = whereClause(filter, spec)!;
        const literal = sql.slice('(f_labels_part = '.length, -1);
        // One literal: starts and ends with a quote, and every inner quote is doubled.
        expect(literal.startsWith("'") && literal.endsWith("'")).toBe(true);
        expect(literal.slice(1, -1).replace(/''/g, '')).not.toContain("'");
      }),
      { numRuns: 500 },
    );
  });
});

describe(`${EmbeddedVectorStore.name}.optimize`, () => {
  it('builds HNSW indexes above the threshold and keeps ANN recall@10 high against exact search', async () => {
    const { contractPoint } = await import('@lookalike/store-contract');
    const dir = await mkdtemp(join(tmpdir(), 'lance-ann-'));
    const store = await EmbeddedVectorStore.open(dir);
    try {
      const dim = 32;
      await store.ensureCollection({ name: 'ann', dims: { robust: dim, clean: dim }, indexedFields: [] });
      const points = Array.from({ length: 5000 }, (_, i) => contractPoint(i, dim));
      for (let i = 0; i < points.length; i += 1000) await store.upsert(points.slice(i, i + 1000));
      expect(await store.optimize()).toMatchObject({ indexed: true, fragments: { before: 5, after: 1 } });
      let hits = 0;
      for (let q = 0; q < 20; q++) {
        const vector = contractPoint(100_000 + q, dim).vectors.robust;
        const exact = await store.search({ vector, using: 'robust', k: 10, exact: true });
        const ann = await store.search({ vector, using: 'robust', k: 10 });
        const truth = new Set(exact.map((h) => h.id));
        hits += ann.filter((h) => truth.has(h.id)).length;
      }
      expect(hits / 200).toBeGreaterThanOrEqual(0.9);
      // Every k the API allows (≤ 100) and the audit's depth + 1 work on the index (ef must cover refine × k).
      for (const k of [26, 100, 101]) {
        const ann = await store.search({ vector: points[7]!.vectors.robust, using: 'robust', k });
        expect(ann).toHaveLength(k);
        expect(ann[0]!.id).toBe(points[7]!.id);
      }
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe(EmbeddedVectorStore.name, () => {
  it('lets a reader that is already open see what another handle (another process) has written since', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lance-consistency-'));
    const spec = { name: 'lookalike', dims: { robust: 4, clean: 4 }, indexedFields: [] };
    const writer = await EmbeddedVectorStore.open(dir);
    const reader = await EmbeddedVectorStore.open(dir);
    try {
      await writer.ensureCollection(spec);
      await reader.ensureCollection(spec);
      expect(await reader.count()).toBe(0);
      const points = [contractPoint(1, 4), contractPoint(2, 4)];
      await writer.upsert(points);
      expect(await reader.count()).toBe(2);
      expect((await reader.get([points[1]!.id])).map((p) => p.id)).toEqual([points[1]!.id]);
    } finally {
      await writer.close();
      await reader.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('adds the filter columns of fields indexed since the table was made, filled from the stored payloads', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lance-new-fields-'));
    const before = { name: 'lookalike', dims: { robust: 4, clean: 4 }, indexedFields: [] };
    const after = {
      ...before,
      indexedFields: [
        { path: 'metadata.line', type: 'integer' as const },
        { path: 'labels.part', type: 'keyword' as const },
      ],
    };
    const points = [1, 2, 3, 4, 5, 6].map((i) => contractPoint(i, 4));
    const old = await EmbeddedVectorStore.open(dir);
    await old.ensureCollection(before);
    await old.upsert(points);
    await old.close();
    const store = await EmbeddedVectorStore.open(dir);
    try {
      await store.ensureCollection(after);
      const part = points[0]!.payload.labels!.part!;
      const expected = points.filter((p) => p.payload.labels!.part === part).length;
      expect(await store.count({ must: [{ field: 'labels.part', match: part }] })).toBe(expected);
      expect(await store.count({ must: [{ field: 'metadata.line', range: { gte: 3 } }] })).toBe(
        points.filter((p) => Number(p.payload.metadata!.line) >= 3).length,
      );
      const hits = await store.search({
        vector: points[1]!.vectors.robust,
        using: 'robust',
        k: 2,
        filter: { must: [{ field: 'labels.part', match: points[1]!.payload.labels!.part! }] },
      });
      expect(hits[0]!.id).toBe(points[1]!.id);
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('answers a search of an empty store with no hits', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lance-empty-'));
    const store = await EmbeddedVectorStore.open(dir);
    try {
      await store.ensureCollection({ name: 'lookalike', dims: { robust: 4, clean: 4 }, indexedFields: [] });
      expect(await store.search({ vector: new Float32Array([1, 0, 0, 0]), using: 'robust', k: 3 })).toEqual([]);
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('with a lazy vector index, writes rows alone until a search loads the index, which then has them all', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lance-lazy-'));
    const spec = { name: 'lookalike', dims: { robust: 4, clean: 4 }, indexedFields: [] };
    const searcher = await EmbeddedVectorStore.open(dir);
    const lazy = await EmbeddedVectorStore.open(dir, 'lookalike', { vectorIndex: 'lazy' });
    try {
      await searcher.ensureCollection(spec);
      await searcher.upsert([contractPoint(1, 4)]);
      await searcher.close();
      await lazy.ensureCollection(spec);
      await lazy.upsert([contractPoint(2, 4), contractPoint(3, 4)]);
      await lazy.delete([contractPoint(1, 4).id]);
      expect((await lazy.optimize()).indexed).toBe(false);
      // Another handle (a server) sees the rows the lazy one wrote, from the snapshot plus its catch-up.
      const server = await EmbeddedVectorStore.open(dir);
      await server.ensureCollection(spec);
      const query = { vector: contractPoint(3, 4).vectors.robust, using: 'robust' as const, k: 5 };
      expect((await server.search(query)).map((h) => h.id)).toEqual([3, 2].map((i) => contractPoint(i, 4).id));
      await server.close();
      expect((await lazy.search(query)).map((h) => h.id)).toEqual([3, 2].map((i) => contractPoint(i, 4).id));
      expect((await lazy.optimize()).indexed).toBe(true);
    } finally {
      await lazy.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe(`${EmbeddedVectorStore.name} maintenance`, () => {
  const spec = { name: 'lookalike', dims: { robust: 8, clean: 8 }, indexedFields: [] };

  async function withStore(
    options: Parameters<typeof EmbeddedVectorStore.open>[2],
    body: (store: EmbeddedVectorStore, dir: string) => Promise<void>,
  ): Promise<void> {
    const dir = await mkdtemp(join(tmpdir(), 'lance-maint-'));
    const store = await EmbeddedVectorStore.open(dir, 'lookalike', options);
    try {
      await store.ensureCollection(spec);
      await body(store, dir);
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  }

  it('compacts its data files and indexes ids on demand, below the ANN threshold too', async () => {
    await withStore({ optimizeEvery: 0, optimizeIdleMs: 0 }, async (store, dir) => {
      for (let i = 0; i < 6; i++) await store.upsert([contractPoint(i, 8)]);
      const result = await store.optimize();
      expect(result).toMatchObject({ indexed: true, saved: true });
      expect(result.fragments.before).toBe(6);
      expect(result.fragments.after).toBe(1);
      const table = await (await connect(dir)).openTable('lookalike');
      expect((await table.listIndices()).map((i) => [i.columns.join(','), i.indexType]).sort()).toEqual([
        ['id', 'BTree'],
        ['seq', 'BTree'],
      ]);
      // Lookups and upserts by id read the index and still find every point.
      await store.upsert([{ ...contractPoint(3, 8), payload: { ...contractPoint(3, 8).payload, caption: 'moved' } }]);
      expect((await store.get([contractPoint(3, 8).id]))[0]!.payload.caption).toBe('moved');
      expect(await store.count()).toBe(6);
      table.close();
    });
  });

  it('optimizes itself in the background every N writes, and writes racing it lose nothing', async () => {
    const outcomes: { fragments: { before: number; after: number } }[] = [];
    const errors: Error[] = [];
    await withStore(
      {
        optimizeEvery: 4,
        optimizeIdleMs: 0,
        onOptimize: (o) => ('error' in o ? errors.push(o.error) : outcomes.push(o.result)),
      },
      async (store) => {
        // 40 writes of one point each, all started at once: they queue behind each other and the optimizes.
        await Promise.all(Array.from({ length: 40 }, (_, i) => store.upsert([contractPoint(i, 8)])));
        await store.optimize();
        expect(errors).toEqual([]);
        expect(outcomes.length).toBeGreaterThanOrEqual(1);
        expect(outcomes[0]!.fragments.before).toBeGreaterThanOrEqual(4);
        expect(outcomes[0]!.fragments.after).toBe(1);
        expect(await store.count()).toBe(40);
        const ids = new Set<string>();
        for await (const p of scrollPoints(store, { pageSize: 7 })) ids.add(p.id);
        expect(ids.size).toBe(40);
        const hit = await store.search({ vector: contractPoint(17, 8).vectors.robust, using: 'robust', k: 1 });
        expect(hit[0]!.id).toBe(contractPoint(17, 8).id);
      },
    );
  });

  it('optimizes what was written once writes pause', async () => {
    const outcomes: { fragments: { before: number; after: number } }[] = [];
    await withStore(
      { optimizeEvery: 0, optimizeIdleMs: 1500, onOptimize: (o) => 'result' in o && outcomes.push(o.result) },
      async (store) => {
        for (let i = 0; i < 5; i++) await store.upsert([contractPoint(i, 8)]);
        expect(outcomes).toEqual([]);
        await vi.waitFor(() => expect(outcomes).toHaveLength(1), { timeout: 10_000, interval: 50 });
        expect(outcomes[0]!.fragments).toEqual({ before: 5, after: 1 });
        // Nothing written since: no second optimize.
        await new Promise((r) => setTimeout(r, 1800));
        expect(outcomes).toHaveLength(1);
      },
    );
  });

  it('never optimizes by itself when told not to', async () => {
    const seen: unknown[] = [];
    await withStore({ optimizeEvery: 0, optimizeIdleMs: 0, onOptimize: (o) => seen.push(o) }, async (store) => {
      for (let i = 0; i < 10; i++) await store.upsert([contractPoint(i, 8)]);
      await store.close();
      expect(seen).toEqual([]);
    });
  });

  it('refuses a nonsensical optimizeEvery', async () => {
    await expect(EmbeddedVectorStore.open(tmpdir(), 'x', { optimizeEvery: -1 })).rejects.toThrow(RangeError);
    await expect(EmbeddedVectorStore.open(tmpdir(), 'x', { optimizeIdleMs: Number.NaN })).rejects.toThrow(RangeError);
  });
});
