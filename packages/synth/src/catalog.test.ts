import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { CatalogOptionsError, generateCatalog, renderImage, type ManifestRecord } from './catalog.js';
import { makeTwin, sampleSpec } from './spec.js';
import type { ItemSpec } from './spec.js';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'synth-test-'));
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function digest(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    out[path.slice(dir.length)] = createHash('sha256')
      .update(await readFile(path))
      .digest('hex');
  }
  return out;
}

async function raw(bytes: Buffer): Promise<Buffer> {
  return sharp(bytes).raw().toBuffer();
}

describe(generateCatalog.name, () => {
  it('writes byte-identical catalogs for the same seed, and different ones for another seed', async () => {
    const [a, b, c] = [await tempDir(), await tempDir(), await tempDir()];
    await generateCatalog({ count: 6, seed: 5, outDir: a, twins: true, size: 64 });
    await generateCatalog({ count: 6, seed: 5, outDir: b, twins: true, size: 64, concurrency: 1 });
    await generateCatalog({ count: 6, seed: 6, outDir: c, twins: true, size: 64 });
    const [da, db, dc] = [await digest(a), await digest(b), await digest(c)];
    expect(Object.keys(da)).toHaveLength(6 * 2 + 2);
    expect(da).toEqual(db);
    expect(dc['/manifest.jsonl']).not.toBe(da['/manifest.jsonl']);
  });

  it('writes a manifest whose records, captions, twins and files agree', async () => {
    const dir = await tempDir();
    const progress: number[] = [];
    const info = await generateCatalog({
      count: 5,
      seed: 9,
      outDir: dir,
      twins: true,
      format: 'jpeg',
      size: 80,
      onProgress: (done) => progress.push(done),
    });
    expect(info).toMatchObject({ count: 5, images: 10, format: 'jpeg', size: 80, twins: true });
    expect(progress.sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5]);
    const lines = (await readFile(join(dir, 'manifest.jsonl'), 'utf8')).trim().split('\n');
    const records = lines.map((l) => JSON.parse(l) as ManifestRecord);
    expect(records.map((r) => r.id)).toEqual(['s9-000000', 's9-000001', 's9-000002', 's9-000003', 's9-000004']);
    for (const r of records) {
      expect(r.twin).toBeDefined();
      for (const file of [r.file, r.twin!.file]) {
        const meta = await sharp(join(dir, file)).metadata();
        expect(meta).toMatchObject({ format: 'jpeg', width: 80, height: 80, channels: 3 });
      }
      expect(r.caption).toContain(r.labels.part);
      expect(r.twin!.caption).not.toBe(r.caption);
    }
    const catalog = JSON.parse(await readFile(join(dir, 'catalog.json'), 'utf8')) as { vocabulary: object };
    expect(Object.keys(catalog.vocabulary)).toEqual(['part', 'color', 'material', 'defect', 'position']);
  });

  it('writes re-renders of each item beside it, in JPEG at their quality when they have one', async () => {
    const [dir, plain] = [await tempDir(), await tempDir()];
    const info = await generateCatalog({ count: 4, seed: 12, outDir: dir, rerenders: 2, size: 64 });
    expect(info).toMatchObject({ count: 4, images: 12, rerenders: 2 });
    const records = (await readFile(join(dir, 'manifest.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as ManifestRecord);
    const files = new Set(Object.keys(await digest(dir)));
    for (const r of records) {
      expect(r.rerenders!.map((x) => x.id)).toEqual([`${r.id}-r1`, `${r.id}-r2`]);
      for (const again of r.rerenders!) {
        expect(files.has(`/${again.file}`)).toBe(true);
        expect(again.labels.part).toBe(r.labels.part);
        expect(again.labels.defect).toBe(r.labels.defect);
        const meta = await sharp(join(dir, again.file)).metadata();
        expect(meta.format).toBe(again.changes.jpegQuality === undefined ? 'png' : 'jpeg');
        expect(again.file.endsWith(again.changes.jpegQuality === undefined ? '.png' : '.jpg')).toBe(true);
      }
    }
    // Without re-renders the catalog keeps the bytes it always had: no rerenders key anywhere.
    await generateCatalog({ count: 4, seed: 12, outDir: plain, size: 64 });
    expect(await readFile(join(plain, 'catalog.json'), 'utf8')).not.toContain('rerenders');
    expect(await readFile(join(plain, 'manifest.jsonl'), 'utf8')).not.toContain('rerenders');
    await expect(generateCatalog({ count: 1, seed: 1, outDir: plain, overwrite: true, rerenders: 5 })).rejects.toThrow(
      /rerenders/,
    );
  });

  it('refuses a non-empty folder unless asked to overwrite, and rejects bad options', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'keep.txt'), 'x');
    await expect(generateCatalog({ count: 1, seed: 1, outDir: dir })).rejects.toBeInstanceOf(CatalogOptionsError);
    await generateCatalog({ count: 1, seed: 1, outDir: dir, overwrite: true, size: 48 });
    expect(await readFile(join(dir, 'keep.txt'), 'utf8')).toBe('x');
    await expect(generateCatalog({ count: 0, seed: 1, outDir: dir })).rejects.toThrow(/count/);
    await expect(generateCatalog({ count: 1, seed: -1, outDir: dir })).rejects.toThrow(/seed/);
    await expect(generateCatalog({ count: 1, seed: 1, outDir: dir, size: 7 })).rejects.toThrow(/size/);
  });
});

describe(renderImage.name, () => {
  /** Mean absolute difference per pixel inside a window of the image, and outside it. */
  async function diffInside(a: ItemSpec, b: ItemSpec, size = 128) {
    const [x, y] = [await raw(await renderImage(a, size, 'png')), await raw(await renderImage(b, size, 'png'))];
    let total = 0;
    for (let i = 0; i < x.length; i++) total += Math.abs((x[i] as number) - (y[i] as number));
    return total / x.length;
  }

  it('renders a visible change for every twin edit and none for an identical spec', async () => {
    let seen = 0;
    for (let i = 0; i < 24; i++) {
      const spec = sampleSpec(3, i);
      const { spec: twin } = makeTwin(spec, 3, i);
      expect(await diffInside(spec, twin)).toBeGreaterThan(0.05);
      seen++;
    }
    expect(seen).toBe(24);
    expect(await diffInside(sampleSpec(3, 0), sampleSpec(3, 0))).toBe(0);
  });

  it('puts a defect where its position says, in image space', async () => {
    // Find an image with a defect at the top left and remove it: the change concentrates in the top-left quadrant.
    let checked = 0;
    for (let i = 0; i < 400 && checked < 4; i++) {
      const spec = sampleSpec(21, i);
      if (spec.labels.position !== 'top left' && spec.labels.position !== 'bottom right') continue;
      const clean: ItemSpec = { ...spec, labels: { ...spec.labels, defect: 'none', position: null } };
      const size = 96;
      const [x, y] = [
        await raw(await renderImage(spec, size, 'png')),
        await raw(await renderImage(clean, size, 'png')),
      ];
      const quadrant = [0, 0, 0, 0];
      for (let p = 0; p < size * size; p++) {
        const q = (Math.floor(p / size) < size / 2 ? 0 : 2) + (p % size < size / 2 ? 0 : 1);
        for (let ch = 0; ch < 3; ch++) quadrant[q]! += Math.abs(x[p * 3 + ch]! - y[p * 3 + ch]!);
      }
      const expected = spec.labels.position === 'top left' ? 0 : 3;
      expect(quadrant.indexOf(Math.max(...quadrant))).toBe(expected);
      checked++;
    }
    expect(checked).toBe(4);
  });
});
