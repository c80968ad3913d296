import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PublicPaths } from './public-paths.js';

let dir: string;
let paths: PublicPaths;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'public-paths-'));
  await symlink(dir, `${dir}-link`);
  // Uploads under DATA_DIR, the default ingest root; a second root reached through a link.
  paths = new PublicPaths({ roots: [dir, `${dir}-link`], uploadsDir: join(dir, 'uploads'), dataDir: dir });
});
afterAll(async () => {
  await rm(`${dir}-link`, { force: true });
  await rm(dir, { recursive: true, force: true });
});

describe(PublicPaths.name, () => {
  it('names sources relative to their root, uploads by file, URLs as they are, anything else by its name', () => {
    expect(paths.source(join(dir, 'catalog', 'a.png'))).toBe('catalog/a.png');
    expect(paths.source(join(dir, 'uploads', 'ab.png'))).toBe('upload:ab.png');
    expect(paths.source(join(`${dir}-link`, 'b.png'))).toBe('b.png');
    expect(paths.source('https://example.com/x.png')).toBe('https://example.com/x.png');
    expect(paths.source('/etc/passwd')).toBe('passwd');
    expect(paths.source('catalog/a.png')).toBe('catalog/a.png');
  });

  it('frees job statuses of server paths, and leaves results that are not ingest batches alone', () => {
    const failure = { location: join(dir, 'x.png'), code: 'READ_FAILED', reason: `cannot open ${dir}/x.png` };
    const batch = paths.jobStatus({
      id: 'j',
      name: 'ingest-batch',
      state: 'completed',
      progress: {},
      result: { done: 0, failed: [failure] },
      failedReason: `lance: ${dir}/store is locked`,
    });
    expect(batch).toMatchObject({
      result: { done: 0, failed: [{ location: 'x.png', code: 'READ_FAILED', reason: 'cannot open x.png' }] },
      failedReason: 'lance: store is locked',
    });
    const other = { id: 'a', name: 'audit-run', state: 'completed' as const, progress: {}, result: { failed: [1] } };
    expect(paths.jobStatus(other)).toEqual(other);
  });
});
