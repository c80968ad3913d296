import { createHash, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { FileAuditStore } from '@lookalike/audit';
import { parseConfig, type AuditResult, type EncoderRole } from '@lookalike/core';
import { getRunStatus } from '@lookalike/ingest';
import type { InProcessJobRunner } from '@lookalike/queue';
import { createServices, type Services } from '@lookalike/services';
import { generateCatalog, makeRerender, renderImage, sampleSpec, type ManifestRecord } from '@lookalike/synth';
import { webRoot } from '@lookalike/web';
import { launchChromium } from '@lookalike/testkit';
import type { Browser, Page } from 'playwright-core';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.js';

// The web UI as people use it: the real API (embedded store, the committed tiny towers, in-process jobs) over a
// 40-image synthetic catalog, driven in the system Chromium (`@lookalike/testkit`). Screenshots land in test-artifacts/ui/ for review.
// Over 400 lines on purpose: one tour of the UI over one shared catalog and browser, page by page.
const MODELS = fileURLToPath(new URL('../../../models/', import.meta.url));
const ARTIFACTS = fileURLToPath(new URL('../../../test-artifacts/ui/', import.meta.url));
const K = 12;

let dir: string;
let services: Services | undefined;
/** Every server started, closed after the browser. */
const servers: Server[] = [];
let browser: Browser | undefined;
let base: string;
let audits: FileAuditStore;
let env: Record<string, string>;
let deps: Omit<Parameters<typeof createApp>[0], 'config'>;
let items: ManifestRecord[];
/** Store id (sha256 of the file) of each catalog item, by manifest id. */
const ids = new Map<string, string>();
const idOf = (item: ManifestRecord) => ids.get(item.id)!;
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

beforeAll(async () => {
  // First, so a machine without Chromium fails at once and says why (never a silent skip); `npm test` installs it.
  browser = await launchChromium(process.env);
  dir = await mkdtemp(join(tmpdir(), 'ui-e2e-'));
  await mkdir(ARTIFACTS, { recursive: true });
  const catalog = join(dir, 'catalog');
  await generateCatalog({ count: 40, seed: 21, outDir: catalog, size: 128 });
  const manifest = join(catalog, 'manifest.jsonl');
  items = (await readFile(manifest, 'utf8'))
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as ManifestRecord);
  for (const item of items) ids.set(item.id, sha256(await readFile(join(catalog, item.file))));

  env = { DATA_DIR: dir, INGEST_ROOTS: dir, MODELS_DIR: MODELS, LOG_LEVEL: 'silent' };
  services = await createServices(parseConfig(env));
  await ingest(services, manifest);

  audits = services.audits;
  deps = {
    logger: pino({ level: 'silent' }),
    store: services.store,
    encoders: services.encoders,
    text: services.text,
    runner: services.runner,
    calibrations: services.calibrations,
    audits,
    webRoot,
  };
  const main = await serve(parseConfig(env));
  servers.push(main.server);
  base = main.base;
});

afterAll(async () => {
  await browser?.close();
  await Promise.all(servers.map(stop));
  await services?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Serves a real app over the shared services on a free port. */
async function serve(config: ReturnType<typeof parseConfig>): Promise<{ server: Server; base: string }> {
  const listening = createApp({ ...deps, config }).listen(0, '127.0.0.1');
  await once(listening, 'listening');
  return { server: listening, base: `http://127.0.0.1:${(listening.address() as AddressInfo).port}` };
}

async function stop(s: Server): Promise<void> {
  s.closeAllConnections();
  await new Promise((resolve) => s.close(resolve));
}

/** Ingests the manifest through the job runner, as the CLI and the API do, and waits for every batch. */
async function ingest(s: Services, manifest: string): Promise<void> {
  const runId = randomUUID();
  const source = { kind: 'manifest', location: manifest } as const;
  await s.runner.enqueue('ingest-run', { runId, source, batchSize: 16 }, { jobId: runId });
  for (let waited = 0; waited < 45_000; waited += 100) {
    const status = await getRunStatus(s.runner, runId);
    if (status?.state === 'failed') throw new Error(`The ingest run failed: ${JSON.stringify(status)}`);
    if (status && 'done' in status && status.state === 'completed') {
      expect(status.done + status.skipped, JSON.stringify(status.failed)).toBe(40);
      await s.store.optimize?.();
      return;
    }
    await sleep(100);
  }
  throw new Error('The ingest run did not finish in 45 s.');
}

// One page per test; every console error (CSP violations and failed loads included) fails the test.
let page: Page;
let problems: string[];

async function open(path: string, origin = base): Promise<Page> {
  const context = await browser!.newContext({ viewport: { width: 1400, height: 900 } });
  page = await context.newPage();
  problems = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  await page.goto(origin + path);
  return page;
}

afterEach(async () => {
  if (!page) return;
  await page.context().close();
  expect(problems).toEqual([]);
});

/** Runs an action that starts a search and waits until its results are on the page, with no error shown. */
async function searched(action: () => Promise<unknown>): Promise<void> {
  const response = page.waitForResponse((r) => r.url().endsWith('/v1/search') && r.request().method() === 'POST');
  await Promise.all([response, action()]);
  // The page is busy from the request until every tower has answered and the results are drawn.
  await page.locator('.results[aria-busy="false"]').waitFor();
  await expect(page.locator('.results .alert').isHidden()).resolves.toBe(true);
}

const hitIds = async (scope = '.output') =>
  Promise.all((await page.locator(`${scope} .hit-button`).all()).map((hit) => hit.getAttribute('data-id')));
const scores = async (scope = '.output') => (await page.locator(`${scope} .hit .score`).allTextContents()).map(Number);
/** Whether every thumbnail on the page has loaded (a broken one has no natural width). */
const thumbnailsLoaded = () =>
  page.evaluate(
    "[...document.querySelectorAll('.output .hit img')].every((img) => img.complete && img.naturalWidth > 0)",
  );
const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

describe('web UI', () => {
  it('serves the page with a strict CSP and an empty search state', async () => {
    await open('/');
    const response = await page.request.get(`${base}/`);
    const csp = response.headers()['content-security-policy'] ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    await expect.poll(() => page.locator('#filter-defect option').count()).toBeGreaterThan(2);
    await expect(page.title()).resolves.toBe('Search · Lookalike');
    await expect(page.locator('.empty h2').textContent()).resolves.toBe('Find lookalikes in the archive');
    await shot('search-empty');
  });

  it('searches by an uploaded file: k hits with scores, the image itself first, and a shareable URL', async () => {
    await open('/');
    const item = items[7]!;
    const file = join(dir, 'catalog', item.file);
    const id = idOf(item);
    await searched(() => page.setInputFiles('#image-file', file));
    expect(await hitIds()).toHaveLength(K);
    expect((await hitIds())[0]).toBe(id);
    const ranked = await scores();
    expect(ranked[0]).toBeCloseTo(1, 2);
    expect(ranked).toEqual([...ranked].sort((a, b) => b - a));
    await expect(page.locator('.preview img').getAttribute('src')).resolves.toMatch(/^blob:/);
    // The file is in the archive, so the URL now names it and can be shared.
    await expect.poll(thumbnailsLoaded).toBe(true);
    await page.waitForURL(`${base}/?id=${id}`);
    await expect(page.locator('.archive-note').textContent()).resolves.toContain('Already in the archive');
    await shot('search-upload');
  });

  it('searches by an image dropped on the page or pasted from the clipboard', async () => {
    await open('/');
    // The browser builds the file itself (as a real drop or paste would), from the original the API serves.
    const deliver = (id: string, event: 'drop' | 'paste') => `(async () => {
      const blob = await (await fetch('/v1/images/${id}/original')).blob();
      const data = new DataTransfer();
      data.items.add(new File([blob], '${event}.png', { type: blob.type }));
      const init = { bubbles: true, cancelable: true };
      if ('${event}' === 'drop') document.body.dispatchEvent(new DragEvent('drop', { ...init, dataTransfer: data }));
      else document.dispatchEvent(new ClipboardEvent('paste', { ...init, clipboardData: data }));
    })()`;
    for (const [item, event] of [
      [items[11]!, 'drop'],
      [items[12]!, 'paste'],
    ] as const) {
      await searched(() => page.evaluate(deliver(idOf(item), event)));
      expect((await hitIds())[0]).toBe(idOf(item));
      await expect(page.locator('.preview .facts dd').first().textContent()).resolves.toBe(`${event}.png`);
    }
  });

  it('searches by text and restores a search from its URL', async () => {
    await open('/');
    await page.locator('#text-query').fill('a gear with a crack');
    await searched(() => page.locator('#text-query').press('Enter'));
    expect(await hitIds()).toHaveLength(K);
    expect(new URL(page.url()).searchParams.get('q')).toBe('a gear with a crack');
    await expect(page.locator('.text-query-preview').textContent()).resolves.toBe('a gear with a crack');
    await expect(page.locator('.status').textContent()).resolves.toMatch(/^12 lookalikes · robust [\d.]+ ms$/);
    await shot('search-text');

    await searched(() => page.goto(`${base}/?q=a+gear+with+a+crack&encoder=clean&k=8`));
    expect(await hitIds()).toHaveLength(8);
    await expect(page.locator('input[name="encoder"][value="clean"]').isChecked()).resolves.toBe(true);
    await expect(page.locator('#k').inputValue()).resolves.toBe('8');
    await searched(() => page.locator('#k').selectOption('4'));
    expect(await hitIds()).toHaveLength(4);
    expect(new URL(page.url()).searchParams.get('k')).toBe('4');
  });

  it('filters by defect: every hit carries the chosen label', async () => {
    await open('/?q=a+gear+with+a+crack');
    await page.locator('.results[aria-busy="false"]').waitFor();
    const defect = ['crack', 'scratch', 'dent', 'stain'].find(
      (d) => items.filter((i) => i.labels.defect === d).length >= 2,
    )!;
    const expected = Math.min(K, items.filter((i) => i.labels.defect === defect).length);
    await expect.poll(() => page.locator(`#filter-defect option[value="${defect}"]`).count()).toBe(1);
    await searched(() => page.locator('#filter-defect').selectOption(defect));
    const labels = await page.locator('.output .hit [data-label="defect"]').allTextContents();
    expect(labels).toHaveLength(expected);
    expect(new Set(labels)).toEqual(new Set([defect]));
    expect(new URL(page.url()).searchParams.get('defect')).toBe(defect);
    await shot('search-filter-defect');

    await searched(() => page.getByRole('button', { name: 'Clear filters' }).first().click());
    expect(await hitIds()).toHaveLength(K);
  });

  it('searches from a clicked hit, and the back button returns to the previous results', async () => {
    await open('/?q=a+bolt+with+corrosion');
    await page.locator('.results[aria-busy="false"]').waitFor();
    const before = await hitIds();
    const chosen = before[3]!;
    await searched(() => page.locator(`.hit-button[data-id="${chosen}"]`).click());
    expect(new URL(page.url()).searchParams.get('id')).toBe(chosen);
    // A stored image's lookalikes leave the image itself out; the preview shows it instead.
    const after = await hitIds();
    expect(after).toHaveLength(K);
    expect(after).not.toContain(chosen);
    expect(after).not.toEqual(before);
    await expect(page.locator('.preview-image').getAttribute('src')).resolves.toBe(`/v1/images/${chosen}/thumbnail`);
    await expect.poll(() => page.locator('.preview-caption').textContent()).toBeTruthy();
    await shot('search-from-hit');

    // Keyboard: the next hit is a button reached with focus and pressed with Enter.
    const next = after[2]!;
    await page.locator(`.hit-button[data-id="${next}"]`).focus();
    await searched(() => page.keyboard.press('Enter'));
    expect(new URL(page.url()).searchParams.get('id')).toBe(next);
    expect(await hitIds()).not.toContain(next);

    await searched(() => page.goBack());
    expect(new URL(page.url()).searchParams.get('id')).toBe(chosen);
    expect(await hitIds()).toEqual(after);
  });

  it('compares the robust and the clean tower side by side', async () => {
    const query = idOf(items[2]!);
    await open(`/?id=${query}`);
    await page.locator('.results[aria-busy="false"]').waitFor();
    await searched(() => page.getByRole('radio', { name: 'Side by side' }).check());
    expect(new URL(page.url()).searchParams.get('encoder')).toBe('both');
    for (const role of ['robust', 'clean'] satisfies EncoderRole[]) {
      const column = `.column[data-encoder="${role}"]`;
      const hits = await hitIds(column);
      expect(hits).toHaveLength(K);
      expect(hits).not.toContain(query);
      const columnScores = await scores(column);
      expect(columnScores).toEqual([...columnScores].sort((a, b) => b - a));
      await expect(page.locator(`${column} h2`).textContent()).resolves.toContain(
        role === 'robust' ? 'Robust' : 'Clean',
      );
    }
    await expect(page.locator('.agreement').textContent()).resolves.toMatch(/of 12 hits shared by both towers/);
    await shot('search-side-by-side');
  });

  it('compares two images: an upload against a stored one, then two stored ones from a shareable URL', async () => {
    // Item 4 photographed again (its re-render 1), uploaded, against item 4 itself, chosen by id.
    const original = idOf(items[4]!);
    const again = await renderImage(makeRerender(sampleSpec(21, 4), 21, 4, 1).spec, 128, 'png');
    await open(`/?id=${original}`);
    await page.locator('.results[aria-busy="false"]').waitFor();
    await page.getByRole('link', { name: 'Compare with…' }).click();
    await page.waitForURL(`**/compare?a=${original}`);
    await expect(page.locator('#compare-a-id').inputValue()).resolves.toBe(original);
    await expect(page.getByRole('button', { name: 'Compare' }).isDisabled()).resolves.toBe(true);
    await page.locator('#compare-b-file').setInputFiles({ name: 'again.png', mimeType: 'image/png', buffer: again });
    const answered = page.waitForResponse((r) => r.url().endsWith('/v1/distance'));
    await page.getByRole('button', { name: 'Compare' }).click();
    const response = await answered;
    expect(response.status()).toBe(200);
    const body = (await response.json()) as {
      verdict: string;
      towers: Record<EncoderRole, { distance: number; verdict: string; calibration: object | null }>;
    };
    await page.locator('.compare-table').waitFor();
    for (const role of ['robust', 'clean'] satisfies EncoderRole[]) {
      const row = page.locator(`.compare-table tr[data-encoder="${role}"]`);
      expect(body.towers[role].calibration).not.toBeNull();
      await expect(row.locator('.distance-value').textContent()).resolves.toBe(body.towers[role].distance.toFixed(4));
      await expect(row.locator('.verdict').textContent()).resolves.toBe(body.towers[role].verdict);
      await expect(row.textContent()).resolves.toMatch(/held out \(seed \d+\)/);
    }
    await expect(page.locator('.compare-verdict [data-verdict]').textContent()).resolves.toBe(body.verdict);
    await shot('compare-upload');

    // Two stored images of different parts: the URL names both, and opening it again compares them at once.
    const other = items.find((i) => i.labels.part !== items[4]!.labels.part)!;
    await page.locator('#compare-b-id').fill(idOf(other));
    await page.locator('#compare-b-id').press('Enter');
    await page.getByRole('button', { name: 'Compare' }).click();
    await page.waitForURL(`**/compare?a=${original}&b=${idOf(other)}`);
    await page.locator('.compare-table').waitFor();
    const url = page.url();
    await page.context().close();
    await open(new URL(url).pathname + new URL(url).search);
    await page.locator('.compare-table').waitFor();
    await expect(page.locator('.compare-verdict [data-verdict]').textContent()).resolves.toBe('different');
    // A malformed id is refused where it was typed, before any request.
    await page.locator('#compare-a-id').fill('not-an-id');
    await page.locator('#compare-a-id').press('Enter');
    await expect(page.locator('#compare-a-id-error').isVisible()).resolves.toBe(true);
    await expect(page.locator('#compare-a-id').getAttribute('aria-invalid')).resolves.toBe('true');
  });

  it('asks for an API key when reads are protected, and searches with the key once it is set', async () => {
    const key = 'ui-e2e-read-key';
    const guarded = await serve(parseConfig({ ...env, API_KEYS: `read:${sha256(Buffer.from(key))}` }));
    servers.push(guarded.server);

    await open('/', guarded.base);
    await page.locator('#text-query').fill('a bolt');
    await page.locator('#text-query').press('Enter');
    const alert = page.locator('.results .alert');
    await alert.waitFor();
    await expect(alert.locator('.alert-title').textContent()).resolves.toBe('API key required');
    await expect(alert.textContent()).resolves.toContain('needs an API key');
    await shot('search-api-key-required');

    await page.getByRole('button', { name: 'API key' }).click();
    await page.getByLabel('Key', { exact: true }).fill(key);
    await searched(() => page.getByRole('button', { name: 'Save' }).click());
    expect(await hitIds()).toHaveLength(K);
    // Thumbnails are fetched with the key, since an <img> cannot send it.
    await expect.poll(thumbnailsLoaded).toBe(true);
    await expect.poll(() => page.locator('#filter-defect option').count()).toBeGreaterThan(2);
    await expect(page.getByRole('button', { name: 'API key set' }).isVisible()).resolves.toBe(true);
    // The refused requests before the key was set are expected; the browser logs each one.
    problems = problems.filter((p) => !p.includes('the server responded with a status of 401'));
  });

  it('lists audits: an empty state, then a saved audit with links to its report and JSON', async () => {
    await open('/');
    await page.getByRole('link', { name: 'Audits' }).click();
    await expect(page.locator('.audits-page .empty h2').textContent()).resolves.toBe('No audits yet');
    expect(new URL(page.url()).pathname).toBe('/audits');
    await shot('audits-empty');

    // A real audit of the catalog (small budget), through the same job flow the nightly scheduler starts.
    const runner = services!.runner as InProcessJobRunner;
    await runner.enqueue('audit-run', {
      auditId: 'ui-e2e-audit',
      options: {
        queries: 4,
        epsilons: [0, 2 / 255, 4 / 255],
        steps: 10,
        batchSize: 2,
        targetedQueries: 1,
        examples: 1,
        perceptual: { triplets: 2 },
      },
    });
    await runner.idle();
    await page.reload();
    const card = page.locator('article.audit[data-audit-id="ui-e2e-audit"]');
    await card.waitFor();
    await expect(card.locator('.audit-meta').textContent()).resolves.toContain('APGD ℓ∞ · 10 steps × 1 restart');
    await expect(card.locator('.audit-two-afc').textContent()).resolves.toMatch(
      /2AFC .*ℓ∞ 4\/255: the robust tower \d+% → \d+%, the clean tower \d+% → \d+%/,
    );
    // Four metrics (same part+defect, same defect over defective queries, overlap, top-1) × two towers: the
    // catalog is labelled, so the label precisions are listed first.
    expect(await card.locator('tbody tr').count()).toBe(8);
    await expect(card.locator('tbody th[scope=rowgroup]').allTextContents()).resolves.toEqual([
      'same part+defect@k',
      'same defect@k, defective',
      'overlap@k',
      'top-1 retention',
    ]);
    await expect(card.locator('.audit-summary').textContent()).resolves.toMatch(/share their part and defect/);
    const report = await card.getByRole('link', { name: 'Report' }).getAttribute('href');
    expect(report).toBe('/v1/audits/ui-e2e-audit/report');
    const html = await page.request.get(base + report!);
    expect(html.headers()['content-type']).toMatch(/^text\/html/);
    expect(await html.text()).toContain('the robust tower keeps');
    const json = await page.request.get(base + (await card.getByRole('link', { name: 'JSON' }).getAttribute('href'))!);
    expect(((await json.json()) as AuditResult).id).toBe('ui-e2e-audit');
    await shot('audits');
  });
});
