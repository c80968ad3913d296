import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { contractPoint } from '@lookalike/store-contract';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedCollections } from './collections.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lance-collections-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const spec = (name: string, dim: number) => ({
  name,
  dims: { robust: dim, clean: dim },
  indexedFields: [{ path: 'labels.part', type: 'keyword' as const }],
});

describe(EmbeddedCollections.name, () => {
  it('lists tables side by side with their dimensions, points and metadata, and drops one with what lies beside it', async () => {
    const collections = new EmbeddedCollections(dir);
    expect(await collections.names()).toEqual([]);
    expect(await collections.dims('a')).toBeUndefined();
    expect(await collections.metadata('a')).toBeUndefined();
    expect(await collections.points('a')).toBe(0);

    const a = await collections.open('a');
    await a.ensureCollection(spec('a', 8));
    await a.upsert([contractPoint(1, 8), contractPoint(2, 8)]);
    const b = await collections.open('a--0123456789ab');
    await b.ensureCollection(spec('a--0123456789ab', 16));
    await b.upsert([contractPoint(3, 16)]);
    expect((await collections.names()).sort()).toEqual(['a', 'a--0123456789ab']);
    expect(await collections.dims('a')).toEqual({ robust: 8, clean: 8 });
    expect(await collections.dims('a--0123456789ab')).toEqual({ robust: 16, clean: 16 });
    expect(await collections.points('a')).toBe(2);

    // Metadata keys are merged; a file that is not JSON reads as none.
    await collections.setMetadata('a', { lookalike: { state: 'building' }, other: 1 });
    await collections.setMetadata('a', { lookalike: { state: 'ready' } });
    expect(await collections.metadata('a')).toEqual({ lookalike: { state: 'ready' }, other: 1 });
    await writeFile(join(dir, 'a--0123456789ab.meta.json'), '{ torn');
    expect(await collections.metadata('a--0123456789ab')).toBeUndefined();

    // Handles of collections load their vector index lazily; load it, so closing writes its snapshot beside the table.
    await a.loadIndex();
    await a.upsert([contractPoint(4, 8)]);
    await a.close();
    expect(await readdir(dir)).toEqual(expect.arrayContaining(['a.lance', 'a.meta.json', 'a.vindex']));
    await collections.drop('a');
    expect(await collections.names()).toEqual(['a--0123456789ab']);
    expect((await readdir(dir)).filter((f) => f.startsWith('a.'))).toEqual([]);
    expect(await b.count()).toBe(1);
    await b.close();
    await collections.close();
  });

  it('reads a table another process is still creating (listed, no version committed yet) as no table', async () => {
    const collections = new EmbeddedCollections(dir);
    await mkdir(join(dir, 'creating.lance'), { recursive: true });
    expect(await collections.names()).toContain('creating');
    expect(await collections.dims('creating')).toBeUndefined();
    expect(await collections.points('creating')).toBe(0);
    // Creating it then works: the half-made folder does not block the store.
    const store = await collections.open('creating');
    await store.ensureCollection(spec('creating', 4));
    await store.upsert([contractPoint(9, 4)]);
    expect(await collections.points('creating')).toBe(1);
    await store.close();
  });
});
