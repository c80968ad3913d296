import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { filterSchema } from '@lookalike/core';
import { contractPoint, describeVectorStoreContract } from '@lookalike/store-contract';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EmbeddedVectorStore } from './lance-store.js';
import { whereClause } from './where.js';

describeVectorStoreContract('EmbeddedVectorStore (LanceDB)', async (spec) => {
  const dir = await mkdtemp(join(tmpdir(), 'lance-contract-'));
  const stores: EmbeddedVectorStore[] = [await EmbeddedVectorStore.open(dir)];
  return {
    store: stores[0]!,
    reopen: async () => {
      const store = await EmbeddedVectorStore.open(dir);
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
      expect(await store.optimize()).toEqual({ indexed: true });
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
});
