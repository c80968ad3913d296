import { createHash } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PointPayload } from '@lookalike/core';
import { MainThreadPreparer } from '@lookalike/imaging';
import type { IngestItem } from '@lookalike/queue';
import { EmbeddedVectorStore } from '@lookalike/store-embedded';
import { renderImage, sampleSpec } from '@lookalike/synth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDispatch, type Seen } from './dispatch.js';

// The first stage alone, on real files, a real embedded store and the real preparer: what it reads, skips, fails
// and hands over, chunk by chunk, with the batch's `seen` carried between chunks as the batch handler does.
const CURRENT = { modelId: 'current', preprocessHash: 'h' };
let dir: string;
let store: EmbeddedVectorStore;
const files: Record<'a' | 'copyOfA' | 'stored' | 'broken' | 'copyOfBroken' | 'missing' | 'later', string> = {
  a: '',
  copyOfA: '',
  stored: '',
  broken: '',
  copyOfBroken: '',
  missing: '',
  later: '',
};
let storedId = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dispatch-'));
  for (const k of Object.keys(files) as (keyof typeof files)[]) files[k] = join(dir, `${k}.png`);
  await writeFile(files.a, await renderImage(sampleSpec(3, 0), 64, 'png'));
  await copyFile(files.a, files.copyOfA);
  await writeFile(files.stored, await renderImage(sampleSpec(3, 1), 64, 'png'));
  await writeFile(files.later, await renderImage(sampleSpec(3, 2), 64, 'png'));
  await writeFile(files.broken, 'not a png');
  await copyFile(files.broken, files.copyOfBroken);
  store = await EmbeddedVectorStore.open(join(dir, 'store'));
  await store.ensureCollection({ name: 'lookalike', dims: { robust: 4, clean: 4 }, indexedFields: [] });
  // The stored image, with vectors of the current towers: the stage must skip it, not prepare it again.
  storedId = createHash('sha256')
    .update(await readFile(files.stored))
    .digest('hex');
  const payload: PointPayload = {
    id: storedId,
    source: files.stored,
    format: 'png',
    width: 64,
    height: 64,
    bytes: 1,
    ingestedAt: new Date(0).toISOString(),
    embeddings: { robust: CURRENT, clean: CURRENT },
  };
  const v = Float32Array.from([1, 0, 0, 0]);
  await store.upsert([{ id: storedId, vectors: { robust: v, clean: v }, payload }]);
});

afterAll(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

describe(createDispatch.name, () => {
  it('hands over each fresh id once, skips stored ones and copies, and fails unreadable and undecodable files', async () => {
    let prepared = 0;
    const preparer = new MainThreadPreparer();
    const dispatch = createDispatch({
      store,
      roots: [dir],
      fetch: { maxBytes: 1 << 20, timeoutMs: 1000 },
      upToDate: (e) => e?.robust.modelId === CURRENT.modelId && e.clean.modelId === CURRENT.modelId,
      preparer: () => ({
        prepare: (images, ...rest) => {
          prepared += images.length;
          return preparer.prepare(images, ...rest);
        },
      }),
      specs: [{ size: 32, interpolation: 'bicubic' }],
      mode: 'fast',
    });
    const seen: Seen = new Map();
    const item = (location: string): IngestItem => ({ location });

    const first = await (
      await dispatch([files.a, files.copyOfA, files.stored, files.broken, files.missing].map(item), seen)
    ).ready;
    // a and the broken file are prepared (one each); the copy of a and the stored image are not.
    expect(prepared).toBe(2);
    expect(first.fresh.map((f) => f.item.location)).toEqual([files.a]);
    expect(first.fresh[0]!.image.width).toBe(64);
    expect(first.skipped).toBe(2);
    expect(first.failed.map((f) => f.location).sort()).toEqual([files.broken, files.missing].sort());
    expect(first.failed.find((f) => f.location === files.broken)?.code).toBe('IMAGE_NOT_AN_IMAGE');
    expect(first.failed.find((f) => f.location === files.missing)?.reason).toMatch(/no such file|not found|exist/i);
    expect(first.ids).toEqual([first.fresh[0]!.id, first.fresh[0]!.id, storedId]);

    // The next chunk of the same batch: a copy of the failed file fails with it, a copy of a is skipped, neither is
    // prepared again; a new image is.
    const second = await (await dispatch([files.copyOfBroken, files.copyOfA, files.later].map(item), seen)).ready;
    expect(prepared).toBe(3);
    expect(second.fresh.map((f) => f.item.location)).toEqual([files.later]);
    expect(second.skipped).toBe(1);
    expect(second.failed).toEqual([
      expect.objectContaining({ location: files.copyOfBroken, code: 'IMAGE_NOT_AN_IMAGE' }),
    ]);
  });

  it('fails the chunk, not a file, when the preparer cannot take work (the batch is retried)', async () => {
    const dispatch = createDispatch({
      store,
      roots: [dir],
      fetch: { maxBytes: 1 << 20, timeoutMs: 1000 },
      upToDate: () => false,
      preparer: () => ({ prepare: () => Promise.reject(new Error('the preprocessing pool is gone')) }),
      specs: [{ size: 32, interpolation: 'bicubic' }],
      mode: 'fast',
    });
    const { ready } = await dispatch([{ location: files.a }], new Map());
    await expect(ready).rejects.toThrow('the preprocessing pool is gone');
  });
});
