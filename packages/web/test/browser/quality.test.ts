import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig, scrollPoints } from '@lookalike/core';
import { createServices, type Services } from '@lookalike/services';
import { generateCatalog } from '@lookalike/synth';
import { launchChromium } from '@lookalike/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TestPages, ingestManifest, serveApp, stopServer, type Browser, type Page } from './harness.js';

// The photo-quality filter as people use it: the real API (embedded store, the committed towers and the robust
// quality model, in-process jobs) over 12 catalog items and their distorted copies, driven in the system Chromium.
const MODELS = fileURLToPath(new URL('../../../../models/', import.meta.url));
const ARTIFACTS = fileURLToPath(new URL('../../../../test-artifacts/ui/', import.meta.url));
const ITEMS = 12;

let dir: string;
let services: Services | undefined;
const servers: Server[] = [];
let browser: Browser | undefined;
let base: string;
/** The ids the quality model graded low at ingest. */
const low = new Set<string>();
const pages = new TestPages(() => browser!);

beforeAll(async () => {
  // First, so a machine without Chromium fails at once and says why (never a silent skip); `npm test` installs it.
  browser = await launchChromium(process.env);
  dir = await mkdtemp(join(tmpdir(), 'ui-quality-'));
  await mkdir(ARTIFACTS, { recursive: true });
  await generateCatalog({ count: ITEMS, seed: 46, outDir: join(dir, 'catalog'), size: 96, distort: true });
  const env = { DATA_DIR: dir, INGEST_ROOTS: dir, MODELS_DIR: MODELS, LOG_LEVEL: 'silent' };
  services = await createServices(parseConfig(env));
  base = await serveApp(services, env, servers);
  await ingestManifest(services, join(dir, 'catalog', 'manifest.jsonl'), ITEMS);
  await ingestManifest(services, join(dir, 'catalog', 'distorted.jsonl'), ITEMS);
  for await (const p of scrollPoints(services.store)) if (p.payload.quality?.grade === 'low') low.add(p.id);
});

afterEach(() => pages.close());
afterAll(async () => {
  await browser?.close();
  await Promise.all(servers.map(stopServer));
  await services?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function searched(page: Page, action: () => Promise<unknown>): Promise<void> {
  const response = page.waitForResponse((r) => r.url().endsWith('/v1/search') && r.request().method() === 'POST');
  await Promise.all([response, action()]);
  await page.locator('.results[aria-busy="false"]').waitFor();
}

const hitIds = async (page: Page) =>
  Promise.all((await page.locator('.output .hit-button').all()).map((hit) => hit.getAttribute('data-id')));

describe('the photo quality filter', () => {
  it('marks low-quality hits, shows only them or hides them, and keeps the choice in the URL', async () => {
    expect(low.size).toBeGreaterThan(0);
    expect(low.size).toBeLessThan(2 * ITEMS);
    const page = await pages.open(`${base}/?q=a+part&k=48`);
    await page.locator('.results[aria-busy="false"]').waitFor();
    const all = (await hitIds(page)) as string[];
    expect(all).toHaveLength(2 * ITEMS);
    // Every low-graded hit carries the badge, and only those.
    const badged = await page
      .locator('.output .hit:has(.quality-low) .hit-button')
      .evaluateAll((els) => els.map((e) => e.getAttribute('data-id')));
    expect(new Set(badged)).toEqual(new Set(all.filter((id) => low.has(id))));

    await searched(page, () => page.locator('#filter-quality').selectOption('low'));
    expect(new URL(page.url()).searchParams.get('quality')).toBe('low');
    expect(new Set(await hitIds(page))).toEqual(low);
    await page.screenshot({ path: join(ARTIFACTS, 'search-quality-low.png') });

    await searched(page, () => page.locator('#filter-quality').selectOption('ok'));
    const ok = (await hitIds(page)) as string[];
    expect(ok).toHaveLength(2 * ITEMS - low.size);
    expect(ok.some((id) => low.has(id))).toBe(false);
    expect(await page.locator('.output .quality-low').count()).toBe(0);

    // A link keeps it; Clear filters drops it.
    await page.reload();
    await page.locator('.results[aria-busy="false"]').waitFor();
    await expect(page.locator('#filter-quality').inputValue()).resolves.toBe('ok');
    await searched(page, () => page.getByRole('button', { name: 'Clear filters' }).first().click());
    expect(new URL(page.url()).searchParams.get('quality')).toBeNull();
    expect(await hitIds(page)).toHaveLength(2 * ITEMS);
  });
});
