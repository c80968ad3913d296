import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '@lookalike/core';
import type { AppDeps } from '@lookalike/http';
import { createServices, type Services } from '@lookalike/services';
import { captionOf, generateCatalog, renderImage, sampleSpec, type ItemLabels } from '@lookalike/synth';
import { launchChromium } from '@lookalike/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { formatScore } from '../../public/js/format.js';
import { TestPages, ingestManifest, serveApp, stopServer, type Browser, type Page } from './harness.js';

// The caption screening page as people use it: the real API (embedded store, the committed tiny towers and text
// tower, in-process jobs, screening on the robust tower from 20 captioned images on) over a 24-item catalog with its
// true captions, then three uploads whose captions name another part with another defect, driven in the system
// Chromium (`@lookalike/testkit`). Screenshots land in test-artifacts/ui/ for review.
const MODELS = fileURLToPath(new URL('../../../../models/', import.meta.url));
const ARTIFACTS = fileURLToPath(new URL('../../../../test-artifacts/ui/', import.meta.url));
const CATALOG = 24;

interface Screened {
  id: string;
  payload: {
    caption?: string;
    screening: {
      similarity: { robust: number; clean: number };
      tower: 'robust' | 'clean';
      verdict: string;
      boundary?: number;
      review?: string;
      withdrawnCaption?: string;
    };
  };
}
interface Listing {
  model: { tower: string; boundary: number | null; separates: boolean; threshold: number } | null;
  counts: Record<'pending' | 'trusted' | 'suspicious' | 'withdrawn', number>;
  total: number;
  images: Screened[];
}

let dir: string;
let services: Services | undefined;
const servers: Server[] = [];
let browser: Browser | undefined;
let base: string;
let env: Record<string, string>;
/** The uploads with swapped captions, in upload order. */
const swapped: { id: string; caption: string }[] = [];
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

beforeAll(async () => {
  // First, so a machine without Chromium fails at once and says why (never a silent skip); `npm test` installs it.
  browser = await launchChromium(process.env);
  dir = await mkdtemp(join(tmpdir(), 'ui-screening-'));
  await mkdir(ARTIFACTS, { recursive: true });
  await generateCatalog({ count: CATALOG, seed: 5, outDir: join(dir, 'catalog'), size: 96 });
  env = { DATA_DIR: dir, INGEST_ROOTS: dir, MODELS_DIR: MODELS, LOG_LEVEL: 'silent', SCREENING_MIN_COUNT: '20' };
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
const ingest = () => ingestManifest(services!, join(dir, 'catalog', 'manifest.jsonl'), CATALOG);

/** Uploads item `i` of seed 6 with the caption of another part with another defect, as a person could. */
async function uploadSwapped(i: number): Promise<void> {
  const spec = sampleSpec(6, i);
  const other: ItemLabels = {
    ...spec.labels,
    part: spec.labels.part === 'gear' ? 'bracket' : 'gear',
    defect: spec.labels.defect === 'crack' ? 'scratch' : 'crack',
  };
  const caption = captionOf(other);
  const form = new FormData();
  form.set('caption', caption);
  form.set(
    'image',
    new Blob([new Uint8Array(await renderImage(spec, 96, 'png'))], { type: 'image/png' }),
    `swapped-${i}.png`,
  );
  const response = await fetch(`${base}/v1/images?wait=true`, { method: 'POST', body: form });
  const body = (await response.json()) as Screened;
  expect(response.status, JSON.stringify(body)).toBe(201);
  swapped.push({ id: body.id, caption });
}

const api = async <T>(path: string, origin = base): Promise<T> => {
  const response = await fetch(origin + path);
  expect(response.status, path).toBe(200);
  return (await response.json()) as T;
};

// One page per test; every console error (CSP violations and failed loads included) fails the test.
const pages = new TestPages(() => browser!);

/** Opens the search page and goes to the captions page through the main navigation, as a person would. */
async function openCaptions(origin = base): Promise<Page> {
  const opened = await pages.open(`${origin}/`);
  await opened.getByRole('link', { name: 'Captions' }).click();
  expect(new URL(opened.url()).pathname).toBe('/screening');
  await loaded(opened);
  return opened;
}

afterEach(() => pages.close());

const shot = (p: Page, name: string) => p.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
/** The results once they have loaded. */
const loaded = (p: Page) => p.locator('.screening-results:not([aria-busy])').waitFor();
const item = (p: Page, id: string) => p.locator(`.screening-item[data-id="${id}"]`);
const listedIds = (p: Page) =>
  p.locator('.screening-item').evaluateAll((items) => items.map((i) => i.getAttribute('data-id')));
/** Whether every thumbnail on the page has loaded (a broken one has no natural width). */
const thumbnailsLoaded = (p: Page) =>
  p.evaluate("[...document.querySelectorAll('.screening-item img')].every((i) => i.complete && i.naturalWidth > 0)");

describe('caption screening page', () => {
  it('says no mixture is fitted before the collection holds enough captions', async () => {
    const p = await openCaptions();
    await expect(p.title()).resolves.toBe('Captions · Lookalike');
    await expect(p.locator('nav a[aria-current="page"]').textContent()).resolves.toBe('Captions');
    await expect(p.locator('h1').textContent()).resolves.toBe('Captions');
    await expect(p.locator('.screening-page .lede').first().textContent()).resolves.toContain('Nothing is deleted');
    await expect(p.locator('.screening-model').textContent()).resolves.toBe(
      'No mixture yet: captions stay pending until the collection holds 20 captioned images ' +
        '(0 trusted, 0 suspicious, 0 pending, 0 withdrawn).',
    );
    await expect(p.locator('.screening-page .empty h2').textContent()).resolves.toBe('No suspicious captions');
    await expect(p.getByRole('radio', { name: 'Suspicious (0)' }).isChecked()).resolves.toBe(true);
    await expect(p.locator('.screening-status').textContent()).resolves.toBe('0 suspicious captions');
    await shot(p, 'screening-empty');
  });

  it('lists the swapped captions, withdraws a rejected one, trusts an accepted one, and lists each by verdict', async () => {
    await ingest();
    for (const i of [0, 1, 2]) await uploadSwapped(i);
    // A refit judges the stored pairs again with the swapped ones in the mixture.
    await services!.screening!.refit();
    const before = await api<Listing>('/v1/screening?limit=200');
    expect(before.model).toMatchObject({ tower: 'robust', separates: true });
    expect(before.images.map((i) => i.id)).toEqual(expect.arrayContaining(swapped.map((s) => s.id)));
    // At most one of the true captions is flagged with them.
    expect(before.total).toBeLessThanOrEqual(swapped.length + 1);
    const boundary = before.model!.boundary!;

    const p = await openCaptions();
    // Every suspicious image, the most suspect first, as the API lists them.
    await expect(listedIds(p)).resolves.toEqual(before.images.map((i) => i.id));
    await expect.poll(() => thumbnailsLoaded(p)).toBe(true);
    const { trusted, suspicious } = before.counts;
    expect(trusted + suspicious).toBe(CATALOG + swapped.length);
    const summary = await p.locator('.screening-model').textContent();
    expect(summary).toMatch(
      new RegExp(
        `^Screened by the robust tower: ${trusted} trusted, ${suspicious} suspicious, 0 pending, 0 withdrawn\\. ` +
          `Suspicious below similarity ${formatScore(boundary).replace('.', '\\.')} ` +
          `\\(clean-component probability < 0\\.9\\)\\. Fitted on ${CATALOG + swapped.length} captions, `,
      ),
    );
    await expect(p.getByRole('radio', { name: `Suspicious (${suspicious})` }).isChecked()).resolves.toBe(true);
    await expect(p.locator('.screening-status').textContent()).resolves.toBe(
      `${suspicious} suspicious caption${suspicious === 1 ? '' : 's'}`,
    );
    for (const s of swapped) {
      const listed = before.images.find((i) => i.id === s.id)!;
      await expect(item(p, s.id).locator('.screening-caption').textContent()).resolves.toBe(s.caption);
      await expect(item(p, s.id).locator('.source').textContent()).resolves.toBe(`upload:${s.id}.png`);
      await expect(item(p, s.id).locator('.screening-similarity').textContent()).resolves.toMatch(
        new RegExp(
          `^Similarity ${formatScore(listed.payload.screening.similarity.robust)} in the robust tower · ` +
            `boundary ${formatScore(boundary)} · clean-component probability 0\\.\\d{3}$`,
        ),
      );
      await expect(item(p, s.id).locator('.screening-reason').textContent()).resolves.toContain('below the trust');
      await expect(item(p, s.id).locator('.review-state').allTextContents()).resolves.toEqual([
        'Suspicious',
        'Not reviewed',
      ]);
    }
    await shot(p, 'screening-suspicious');

    // Reject the first: the POST goes through the page's own fetch, the image leaves the list, the page says so.
    const [rejected, accepted] = [swapped[0]!, swapped[1]!];
    const answered = p.waitForResponse((r) => r.url().endsWith(`/v1/screening/${rejected.id}/review`));
    await item(p, rejected.id).getByRole('button', { name: 'Reject caption' }).click();
    const response = await answered;
    expect(response.status()).toBe(200);
    expect(response.request().postDataJSON()).toEqual({ review: 'rejected' });
    await expect.poll(() => item(p, rejected.id).count()).toBe(0);
    await loaded(p);
    await expect(p.locator('.screening-announce').textContent()).resolves.toBe(
      `Rejected “${rejected.caption}”: the caption is withdrawn from the image and kept as its withdrawn caption. ` +
        'Nothing was deleted.',
    );
    await expect(p.getByRole('radio', { name: 'Withdrawn (1)' }).count()).resolves.toBe(1);
    await expect(p.locator('.screening-model').textContent()).resolves.toContain(
      `${suspicious - 1} suspicious, 0 pending, 1 withdrawn.`,
    );
    // Stored: withdrawn from the payload, kept in the screening record, listed as withdrawn.
    const withdrawn = await api<Listing>('/v1/screening?verdict=withdrawn');
    expect(withdrawn.images.map((i) => i.id)).toEqual([rejected.id]);
    const stored = await api<Screened>(`/v1/images/${rejected.id}`);
    expect(stored.payload.caption).toBeUndefined();
    expect(stored.payload.screening).toMatchObject({
      verdict: 'withdrawn',
      review: 'rejected',
      withdrawnCaption: rejected.caption,
    });

    // Accept the second: it leaves the suspicious list and is trusted, its caption kept.
    await item(p, accepted.id).getByRole('button', { name: 'Accept caption' }).click();
    await expect.poll(() => item(p, accepted.id).count()).toBe(0);
    await loaded(p);
    await expect(p.locator('.screening-announce').textContent()).resolves.toBe(
      `Accepted “${accepted.caption}”: the caption is trusted, and text search uses it.`,
    );
    const trustedNow = await api<Screened>(`/v1/images/${accepted.id}`);
    expect(trustedNow.payload.caption).toBe(accepted.caption);
    expect(trustedNow.payload.screening).toMatchObject({ verdict: 'trusted', review: 'accepted' });
    await expect(listedIds(p)).resolves.toEqual(
      before.images.map((i) => i.id).filter((id) => id !== rejected.id && id !== accepted.id),
    );
    await shot(p, 'screening-reviewed');

    // The withdrawn list, through the selector: the URL says so, the caption is shown struck through.
    await p.getByRole('radio', { name: 'Withdrawn (1)' }).check();
    await p.waitForURL(`${base}/screening?verdict=withdrawn`);
    await loaded(p);
    await expect(listedIds(p)).resolves.toEqual([rejected.id]);
    await expect(item(p, rejected.id).locator('.screening-caption del').textContent()).resolves.toBe(rejected.caption);
    await expect(item(p, rejected.id).locator('.screening-caption').textContent()).resolves.toBe(
      `${rejected.caption} withdrawn`,
    );
    await expect(item(p, rejected.id).locator('.review-state').allTextContents()).resolves.toEqual([
      'Withdrawn',
      expect.stringMatching(/^Rejected · \d{4}-\d\d-\d\d \d\d:\d\d$/),
    ]);
    await expect(item(p, rejected.id).getByRole('button', { name: 'Reject caption' }).count()).resolves.toBe(0);
    await shot(p, 'screening-withdrawn');
    // The URL is the page: reloading it (the server answers /screening with the UI) shows the same list.
    await p.reload();
    await loaded(p);
    await expect(listedIds(p)).resolves.toEqual([rejected.id]);
    await expect(p.getByRole('radio', { name: 'Withdrawn (1)' }).isChecked()).resolves.toBe(true);

    // The trusted list holds the accepted one, marked as accepted, with no Accept button left.
    await p.getByRole('radio', { name: /^Trusted/ }).check();
    await p.waitForURL(`${base}/screening?verdict=trusted`);
    await loaded(p);
    await expect(item(p, accepted.id).locator('.review-state').allTextContents()).resolves.toEqual([
      'Trusted',
      expect.stringMatching(/^Accepted · /),
    ]);
    await expect(item(p, accepted.id).getByRole('button', { name: 'Accept caption' }).count()).resolves.toBe(0);
    await expect(item(p, accepted.id).getByRole('button', { name: 'Reject caption' }).count()).resolves.toBe(1);

    // Back goes to the withdrawn list; accepting there restores the caption.
    await p.goBack();
    await p.waitForURL(`${base}/screening?verdict=withdrawn`);
    await loaded(p);
    await expect(p.getByRole('radio', { name: 'Withdrawn (1)' }).isChecked()).resolves.toBe(true);
    await item(p, rejected.id).getByRole('button', { name: 'Accept caption' }).click();
    await expect.poll(() => item(p, rejected.id).count()).toBe(0);
    await loaded(p);
    await expect(p.locator('.screening-page .empty h2').textContent()).resolves.toBe('No withdrawn captions');
    await expect(p.locator('.screening-announce').textContent()).resolves.toBe(
      `Accepted “${rejected.caption}”: the caption is trusted and restored to the image, and text search uses it.`,
    );
    const restored = await api<Screened>(`/v1/images/${rejected.id}`);
    expect(restored.payload.caption).toBe(rejected.caption);
    expect(restored.payload.screening).toMatchObject({ verdict: 'trusted', review: 'accepted' });
    await expect(services!.store.count()).resolves.toBe(CATALOG + swapped.length);
  });

  it('shows a refused review like the other pages show errors, and reviews once a write key is set', async () => {
    const key = 'ui-screening-write-key';
    const guarded = await serve({ ...env, API_KEYS: `write:${sha256(Buffer.from(key))}` });
    const target = swapped[2]!;
    const p = await openCaptions(guarded);
    const reject = item(p, target.id).getByRole('button', { name: 'Reject caption' });
    await reject.click();
    const alert = item(p, target.id).locator('.alert');
    await alert.waitFor();
    await expect(alert.locator('.alert-title').textContent()).resolves.toBe(
      'Could not save the review: API key required',
    );
    await expect(reject.isEnabled()).resolves.toBe(true);
    await expect(p.locator('.screening-announce').textContent()).resolves.toBe('');
    await shot(p, 'screening-api-key-required');

    await p.getByRole('button', { name: 'API key' }).click();
    await p.getByLabel('Key', { exact: true }).fill(key);
    await p.getByRole('button', { name: 'Save' }).click();
    await p.getByRole('button', { name: 'API key set' }).waitFor();
    await loaded(p);
    await reject.click();
    await expect.poll(() => item(p, target.id).count()).toBe(0);
    const stored = await api<Screened>(`/v1/images/${target.id}`);
    expect(stored.payload.screening).toMatchObject({ verdict: 'withdrawn', withdrawnCaption: target.caption });
    // The refused request before the key was set is expected; the browser logs it.
    pages.problems = pages.problems.filter((m) => !m.includes('the server responded with a status of 401'));
  });

  it('says so when caption screening is off on the server', async () => {
    const off = await serve(env, { screening: undefined });
    const response = await fetch(`${off}/v1/screening`);
    expect(response.status).toBe(409);
    const p = await openCaptions(off);
    await expect(p.locator('.screening-off h2').textContent()).resolves.toBe('Caption screening is off on this server');
    await expect(p.locator('.screening-off').textContent()).resolves.toContain(
      'Caption screening is off (SCREENING=off',
    );
    await expect(p.locator('.screening-toolbar').isVisible()).resolves.toBe(false);
    await expect(p.locator('.screening-model').isVisible()).resolves.toBe(false);
    await expect(p.locator('.screening-item').count()).resolves.toBe(0);
    await shot(p, 'screening-off');
    pages.problems = pages.problems.filter((m) => !m.includes('the server responded with a status of 409'));
  });
});
