import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '@lookalike/core';
import type { AppDeps } from '@lookalike/http';
import { createServices, type Services } from '@lookalike/services';
import { renderImage, sampleSpec } from '@lookalike/synth';
import { launchChromium } from '@lookalike/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { formatDistance } from '../../public/js/format.js';
import { TestPages, ingestManifest, serveApp, stopServer, type Browser, type Page } from './harness.js';

// The near-duplicates page as people use it: the real API (embedded store, the committed tiny towers, in-process
// jobs, grouping on the robust tower at a fixed threshold) over a five-image catalog holding one item stored twice
// (a PNG and a JPEG of it), driven in the system Chromium (`@lookalike/testkit`). Screenshots land in
// test-artifacts/ui/ for review.
const MODELS = fileURLToPath(new URL('../../../../models/', import.meta.url));
const ARTIFACTS = fileURLToPath(new URL('../../../../test-artifacts/ui/', import.meta.url));
const THRESHOLD = 0.02;

interface Member {
  id: string;
  payload: { caption?: string; duplicates: { group: string; distance: number; review?: string } };
}
interface Group {
  id: string;
  size: number;
  kept?: string;
  unreviewed: number;
  members: Member[];
}

let dir: string;
let services: Services | undefined;
const servers: Server[] = [];
let browser: Browser | undefined;
let base: string;
let env: Record<string, string>;
/** The catalog: the PNG of item 5 (the group's first image), its JPEG (the near-duplicate), three other items. */
let catalog: { file: string; caption: string; id: string }[];
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const original = () => catalog[0]!;
const copy = () => catalog[1]!;

beforeAll(async () => {
  // First, so a machine without Chromium fails at once and says why (never a silent skip); `npm test` installs it.
  browser = await launchChromium(process.env);
  dir = await mkdtemp(join(tmpdir(), 'ui-duplicates-'));
  await mkdir(ARTIFACTS, { recursive: true });
  await mkdir(join(dir, 'catalog'));
  const images: [string, string, Buffer][] = [
    ['item-5.png', 'item 5, the original', await renderImage(sampleSpec(5, 0), 128, 'png')],
    ['item-5.jpg', 'item 5, a JPEG copy', await renderImage(sampleSpec(5, 0), 128, 'jpeg', 97)],
    ...(await Promise.all(
      [1, 2, 3].map(
        async (i) =>
          [`item-${i}.png`, `item ${i}`, await renderImage(sampleSpec(5, i), 128, 'png')] as [string, string, Buffer],
      ),
    )),
  ];
  catalog = [];
  for (const [file, caption, bytes] of images) {
    await writeFile(join(dir, 'catalog', file), bytes);
    catalog.push({ file, caption, id: sha256(bytes) });
  }
  await writeFile(
    join(dir, 'catalog', 'manifest.jsonl'),
    catalog.map(({ file, caption }) => JSON.stringify({ file, caption })).join('\n') + '\n',
  );

  env = {
    DATA_DIR: dir,
    INGEST_ROOTS: dir,
    MODELS_DIR: MODELS,
    LOG_LEVEL: 'silent',
    DUPLICATES: 'robust',
    DUPLICATE_THRESHOLD: String(THRESHOLD),
  };
  services = await createServices(parseConfig(env));
  base = await serve(env);
});

afterAll(async () => {
  await browser?.close();
  await Promise.all(servers.map(stopServer));
  await services?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Serves a real app over the shared services on a free port; its base URL. */
const serve = (vars: Record<string, string>, extra: Partial<AppDeps> = {}) => serveApp(services!, vars, servers, extra);
const ingest = () => ingestManifest(services!, join(dir, 'catalog', 'manifest.jsonl'), catalog.length);

// One page per test; every console error (CSP violations and failed loads included) fails the test.
const pages = new TestPages(() => browser!);

const open = (path: string, origin = base): Promise<Page> => pages.open(origin + path);

afterEach(() => pages.close());

const shot = (p: Page, name: string) => p.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
/** The list once it has loaded. */
const loaded = (p: Page) => p.locator('.duplicate-list:not([aria-busy])').waitFor();
const member = (p: Page, id: string) => p.locator(`.duplicate-member[data-id="${id}"]`);
/** Whether every thumbnail on the page has loaded (a broken one has no natural width). */
const thumbnailsLoaded = (p: Page) =>
  p.evaluate("[...document.querySelectorAll('.duplicate-member img')].every((i) => i.complete && i.naturalWidth > 0)");

describe('near-duplicates page', () => {
  it('says there are none before anything is ingested, and how grouping works', async () => {
    const p = await open('/');
    await p.getByRole('link', { name: 'Duplicates' }).click();
    expect(new URL(p.url()).pathname).toBe('/duplicates');
    await loaded(p);
    await expect(p.title()).resolves.toBe('Duplicates · Lookalike');
    await expect(p.locator('nav a[aria-current="page"]').textContent()).resolves.toBe('Duplicates');
    await expect(p.locator('.duplicates-page .empty h2').textContent()).resolves.toBe('No near-duplicates found');
    const note = await p.locator('.grouping-note').textContent();
    expect(note).toContain('robust tower is at most 0.0200');
    expect(note).toContain('Nothing is deleted');
    await expect(p.locator('.duplicates-status').textContent()).resolves.toBe('0 groups · 0 images');
    await shot(p, 'duplicates-empty');
  });

  it('lists the group ingest found, and keeping one member marks the other, in the page and in the store', async () => {
    await ingest();
    const p = await open('/duplicates');
    await loaded(p);
    const card = p.locator(`article.duplicate-group[data-group-id="${original().id}"]`);
    await expect(p.locator('article.duplicate-group').count()).resolves.toBe(1);
    await expect(p.locator('.duplicates-status').textContent()).resolves.toBe('1 group · 2 images');
    // The first image first, then its copy with the distance it joined at.
    const ids = await card
      .locator('.duplicate-member')
      .evaluateAll((items) => items.map((i) => i.getAttribute('data-id')));
    expect(ids).toEqual([original().id, copy().id]);
    await expect.poll(() => thumbnailsLoaded(p)).toBe(true);
    await expect(member(p, original().id).locator('.member-caption').textContent()).resolves.toBe(original().caption);
    await expect(member(p, original().id).locator('.source').textContent()).resolves.toMatch(/item-5\.png$/);
    await expect(member(p, original().id).locator('.member-distance').textContent()).resolves.toBe(
      'First image of the group',
    );
    const listed = (await (await p.request.get(`${base}/v1/duplicates`)).json()) as { groups: Group[] };
    const distance = listed.groups[0]!.members[1]!.payload.duplicates.distance;
    expect(distance).toBeLessThanOrEqual(THRESHOLD);
    await expect(member(p, copy().id).locator('.member-distance').textContent()).resolves.toBe(
      `Distance ${formatDistance(distance)} to the first image`,
    );
    await expect(card.locator('.review-state').allTextContents()).resolves.toEqual(['Not reviewed', 'Not reviewed']);
    await expect(card.locator('.group-review').textContent()).resolves.toBe('Not reviewed');

    // Only unreviewed: the group has members nobody reviewed, so it stays, and the URL says so.
    await p.getByLabel('Only unreviewed').check();
    await p.waitForURL(`${base}/duplicates?unreviewed=true`);
    await loaded(p);
    await expect(card.count()).resolves.toBe(1);
    await shot(p, 'duplicates-group');

    // Keep the JPEG: the POST goes through the page's own fetch, and the group is drawn from its answer.
    const answered = p.waitForResponse((r) => r.url().endsWith(`/v1/duplicates/${original().id}/review`));
    await member(p, copy().id).getByRole('button', { name: 'Keep this one' }).click();
    const response = await answered;
    expect(response.status()).toBe(200);
    expect(response.request().postDataJSON()).toEqual({ keep: copy().id });
    await p.locator(`article.duplicate-group[data-group-id="${original().id}"]:not([aria-busy])`).waitFor();
    await expect(card.locator('.review-state').allTextContents()).resolves.toEqual([
      expect.stringMatching(/^Marked duplicate · \d{4}-\d\d-\d\d \d\d:\d\d$/),
      expect.stringMatching(/^Kept · /),
    ]);
    await expect(member(p, copy().id).getAttribute('data-review')).resolves.toBe('kept');
    await expect(member(p, original().id).getAttribute('data-review')).resolves.toBe('duplicate');
    await expect(member(p, copy().id).getByRole('button', { name: 'Keep this one' }).isDisabled()).resolves.toBe(true);
    await expect(member(p, original().id).getByRole('button', { name: 'Keep this one' }).isEnabled()).resolves.toBe(
      true,
    );
    await expect(card.locator('.group-status').textContent()).resolves.toBe(
      `Kept ${copy().caption}; 1 other image marked as duplicate. Nothing was deleted.`,
    );
    await expect(card.locator('.group-review').textContent()).resolves.toBe(
      `Reviewed: kept ${copy().caption}, 1 other marked duplicate`,
    );
    await shot(p, 'duplicates-reviewed');

    // Stored: the API's own answer says the same, and both images are still there.
    const stored = (await (await p.request.get(`${base}/v1/duplicates/${original().id}`)).json()) as Group;
    expect(stored).toMatchObject({ id: original().id, size: 2, kept: copy().id, unreviewed: 0 });
    expect(Object.fromEntries(stored.members.map((m) => [m.id, m.payload.duplicates.review]))).toEqual({
      [original().id]: 'duplicate',
      [copy().id]: 'kept',
    });
    await expect(services!.store.count()).resolves.toBe(catalog.length);

    // Reviewed now, the group leaves the unreviewed list.
    await p.reload();
    await loaded(p);
    await expect(p.locator('.duplicates-page .empty h2').textContent()).resolves.toBe('Nothing left to review');
    await p.getByRole('button', { name: 'Show all groups' }).click();
    await p.waitForURL(`${base}/duplicates`);
    await loaded(p);
    await expect(p.getByLabel('Only unreviewed').isChecked()).resolves.toBe(false);
    await expect(card.locator('.review-state').allTextContents()).resolves.toEqual([
      expect.stringMatching(/^Marked duplicate/),
      expect.stringMatching(/^Kept/),
    ]);
  });

  it('shows a refused review like the other pages show errors, and reviews once a write key is set', async () => {
    const key = 'ui-duplicates-write-key';
    // Only a write key: reads stay open, the review needs the key.
    const guarded = await serve({ ...env, API_KEYS: `write:${sha256(Buffer.from(key))}` });
    const p = await open('/duplicates', guarded);
    await loaded(p);
    const keepOriginal = member(p, original().id).getByRole('button', { name: 'Keep this one' });
    await keepOriginal.click();
    const alert = p.locator('.duplicate-group .alert');
    await alert.waitFor();
    await expect(alert.locator('.alert-title').textContent()).resolves.toBe(
      'Could not save the review: API key required',
    );
    await expect(keepOriginal.isEnabled()).resolves.toBe(true);
    await shot(p, 'duplicates-api-key-required');

    await p.getByRole('button', { name: 'API key' }).click();
    await p.getByLabel('Key', { exact: true }).fill(key);
    await p.getByRole('button', { name: 'Save' }).click();
    // The key is kept when the dialog closes, which also reloads the list.
    await p.getByRole('button', { name: 'API key set' }).waitFor();
    await loaded(p);
    const answered = p.waitForResponse((r) => r.url().endsWith('/review'));
    await keepOriginal.click();
    expect((await answered).status()).toBe(200);
    await expect.poll(() => member(p, original().id).getAttribute('data-review')).toBe('kept');
    await expect(member(p, copy().id).getAttribute('data-review')).resolves.toBe('duplicate');
    await expect(alert.count()).resolves.toBe(0);
    // The refused request before the key was set is expected; the browser logs it.
    pages.problems = pages.problems.filter((m) => !m.includes('the server responded with a status of 401'));
  });
});
