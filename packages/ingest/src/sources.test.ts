import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ValidationError } from '@lookalike/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { listDirectory, manifestFormat, readManifest, resolveInsideRoots, type ManifestEntry } from './sources.js';

let root: string;
let outside: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ingest-src-'));
  outside = await mkdtemp(join(tmpdir(), 'ingest-out-'));
  await mkdir(join(root, 'a/b'), { recursive: true });
  for (const f of ['one.png', 'a/two.JPG', 'a/b/three.webp', 'a/notes.txt', 'a/b/skip.png', '.hidden.png'])
    await writeFile(join(root, f), 'x');
  await writeFile(join(outside, 'secret.png'), 'x');
  await symlink(join(outside, 'secret.png'), join(root, 'link.png'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
  await rm(outside, { recursive: true, force: true });
});

describe(listDirectory.name, () => {
  it('lists images recursively, sorted, honouring include and exclude globs, without following links', async () => {
    const all = (await listDirectory(root)).map((i) => i.location.slice(root.length + 1));
    expect(all).toEqual(['a/b/skip.png', 'a/b/three.webp', 'a/two.JPG', 'one.png']);
    const some = await listDirectory(root, { include: ['**/*.png'], exclude: ['**/skip.*'] });
    expect(some.map((i) => i.location.slice(root.length + 1))).toEqual(['one.png']);
  });

  it('refuses include patterns that leave the root before walking, however they spell ..', async () => {
    const name = outside.slice(outside.lastIndexOf('/') + 1);
    for (const include of [
      [`../${name}/*`],
      ['../*/*.png'],
      [`${outside}/*`],
      ['/etc/**'],
      ['a/../../*'],
      [`\\.\\./${name}/*`],
      [`..\\/${name}/*`],
      ['{..,a}/*'],
      ['@(..)/*'],
      ['**/*.png', '../**'],
    ])
      await expect(listDirectory(root, { include }), JSON.stringify(include)).rejects.toThrow(/include pattern/);
    // Dots that are no parent step are fine.
    expect(await listDirectory(root, { include: ['**/*..png', '.hidden.png'] })).toEqual([
      { location: join(root, '.hidden.png') },
    ]);
  });
});

describe(resolveInsideRoots.name, () => {
  it('accepts paths inside a root and refuses traversal and symlinks out of it', async () => {
    expect(await resolveInsideRoots(join(root, 'a/two.JPG'), [root])).toMatch(/two\.JPG$/);
    await expect(resolveInsideRoots(join(root, 'a/../../', 'etc/passwd'), [root])).rejects.toBeInstanceOf(
      ValidationError,
    );
    await expect(resolveInsideRoots(join(root, 'link.png'), [root])).rejects.toThrow(/outside the folders/);
    await expect(resolveInsideRoots(join(root, 'nope.png'), [root])).rejects.toThrow(/does not exist/);
  });

  it('says the same of a path outside the roots whether or not it exists, naming neither it nor the roots', async () => {
    const refusal = (path: string) =>
      resolveInsideRoots(path, [root]).then(
        () => 'accepted',
        (error: Error) => error.message,
      );
    const exists = await refusal(join(outside, 'secret.png'));
    expect(exists).toMatch(/outside the folders ingest may read/);
    expect(await refusal(join(outside, 'missing.png'))).toBe(exists);
    expect(await refusal('/no/such/folder/at/all')).toBe(exists);
    // Through a link to a folder out of the roots, a missing file is outside too.
    await symlink(outside, join(root, 'out-dir')).catch(() => undefined);
    expect(await refusal(join(root, 'out-dir', 'secret.png'))).toBe(exists);
    expect(await refusal(join(root, 'out-dir', 'missing.png'))).toBe(exists);
    for (const message of [exists, await refusal(join(root, 'nope.png'))]) {
      expect(message).not.toContain(root);
      expect(message).not.toContain(outside);
    }
    await expect(resolveInsideRoots(join(outside, 'x'), [root], { label: '"x"' })).rejects.toThrow(/^"x" is outside/);
  });
});

/** The manifest's items and problems, read from a stream cut into chunks of `chunk` bytes (lines split across them). */
async function read(text: string, format: 'jsonl' | 'csv', baseDir: string, chunk = 7) {
  const bytes = Buffer.from(text);
  const chunks = Array.from({ length: Math.ceil(bytes.length / chunk) }, (_, i) =>
    bytes.subarray(i * chunk, (i + 1) * chunk),
  );
  const entries: ManifestEntry[] = [];
  for await (const entry of readManifest(Readable.from(chunks), format, baseDir)) entries.push(entry);
  return {
    items: entries.flatMap((e) => ('item' in e ? [e.item] : [])),
    problems: entries.flatMap((e) => ('problem' in e ? [e.problem] : [])),
  };
}

describe(readManifest.name, () => {
  it('reads JSONL, keeps good lines and reports bad ones with their line numbers', async () => {
    const text = [
      '{"path": "a/one.png", "caption": "a red gear", "labels": {"part": "gear"}, "line": 3, "pose": {"rotation": 3}}',
      '{"url": "https://example.com/x.jpg", "id": "sku-1"}',
      'not json',
      '{"caption": "no location"}',
      '',
      '[1, 2]',
    ].join('\n');
    const { items, problems } = await read(text, 'jsonl', '/data');
    expect(items).toEqual([
      { location: '/data/a/one.png', caption: 'a red gear', labels: { part: 'gear' }, metadata: { line: 3 } },
      { location: 'https://example.com/x.jpg', id: 'sku-1' },
    ]);
    expect(problems.map((p) => p.line)).toEqual([3, 4, 6]);
  });

  it('reads CSV with a header; extra columns become metadata', async () => {
    const { items, problems } = await read('path,caption,line\nx.png,"a bolt, rusty",7\n,missing,1\n', 'csv', '/d');
    expect(items).toEqual([{ location: '/d/x.png', caption: 'a bolt, rusty', metadata: { line: '7' } }]);
    expect(problems).toEqual([{ line: 3, reason: expect.stringMatching(/no location/) as string }]);
  });

  it('ends a CSV that stops parsing with a ValidationError, having given at most its good rows', async () => {
    const entries: ManifestEntry[] = [];
    const rows = readManifest(
      Readable.from(['path\na.png\n', 'b.png\n', '"c.png\n'].map((t) => Buffer.from(t))),
      'csv',
      '/d',
    );
    await expect(
      (async () => {
        for await (const entry of rows) entries.push(entry);
      })(),
    ).rejects.toThrow(/the CSV manifest cannot be parsed/);
    // Rows parsed in the chunk that failed may be dropped with it; none after it, and none made up, are given.
    const good = [{ item: { location: '/d/a.png' } }, { item: { location: '/d/b.png' } }];
    expect(entries).toEqual(good.slice(0, entries.length));
  });

  it('streams: the first entries come before the rest of the file is read', async () => {
    let pulled = 0;
    const source = Readable.from(
      (function* () {
        for (let i = 0; i < 10_000; i++) {
          pulled++;
          yield Buffer.from(`{"path": "${i}.png"}\n`);
        }
      })(),
    );
    const entries = readManifest(source, 'jsonl', '/d');
    expect((await entries.next()).value).toEqual({ item: { location: '/d/0.png' } });
    expect(pulled).toBeLessThan(10_000);
    await entries.return(undefined);
  });

  it('tells formats from names', () => {
    expect(manifestFormat('m.jsonl')).toBe('jsonl');
    expect(manifestFormat('m.CSV')).toBe('csv');
    expect(() => manifestFormat('m.txt')).toThrow(ValidationError);
  });
});
