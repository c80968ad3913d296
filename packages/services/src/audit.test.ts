import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig, type AuditResult } from '@lookalike/core';
import type { InProcessJobRunner } from '@lookalike/queue';
import { generateCatalog } from '@lookalike/synth';
import { launchChromium } from '@lookalike/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServices, type Services } from './index.js';

// The whole audit on real parts: a synthetic catalog ingested into the embedded store with the committed tiny
// towers, the audit's flow (run → batches → finalize) on the in-process runner, the VJP models built from the
// towers' ONNX files, and the report opened in Debian's Chromium.
const MODELS = fileURLToPath(new URL('../../../models/', import.meta.url));
const ARTIFACTS = fileURLToPath(new URL('../../../test-artifacts/audit/', import.meta.url));
const EPS = 4 / 255;

let dir: string;
let services: Services;
let result: AuditResult;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'audit-e2e-'));
  await generateCatalog({ count: 48, seed: 11, outDir: join(dir, 'catalog'), twins: false, size: 128 });
  services = await createServices(
    parseConfig({ DATA_DIR: dir, MODELS_DIR: MODELS, INGEST_ROOTS: dir, LOG_LEVEL: 'silent' }),
  );
  const runner = services.runner as InProcessJobRunner;
  await runner.enqueue('ingest-run', {
    runId: 'catalog',
    source: { kind: 'manifest', location: join(dir, 'catalog', 'manifest.jsonl') },
    batchSize: 16,
  });
  await runner.idle();
  const auditId = 'audit-test-1';
  await runner.enqueue('audit-run', {
    auditId,
    options: {
      ...services.auditDefaults,
      queries: 8,
      epsilons: [0, EPS],
      attack: 'apgd',
      steps: 10,
      batchSize: 4,
      targetedQueries: 4,
      examples: 2,
      seed: 5,
      perceptual: { triplets: 6, seed: 33, examples: 2 },
      quality: { images: 6, seed: 43, examples: 2 },
    },
  });
  await runner.idle();
  const stored = await services.audits.get(auditId);
  if (!stored) throw new Error(`the audit was not stored: ${JSON.stringify(await runner.getJob(`${auditId}.final`))}`);
  result = stored;
}, 240_000);

afterAll(async () => {
  await services?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('the robustness audit, end to end', () => {
  it('stores one versioned audit with every encoder and budget, listed newest first', async () => {
    expect(result.schemaVersion).toBe(1);
    expect(result.queries).toBe(8);
    expect(result.catalogSize).toBe(48);
    expect(result.metrics.map((m) => [m.encoder, m.epsilon])).toEqual([
      ['robust', 0],
      ['robust', EPS],
      ['clean', 0],
      ['clean', EPS],
    ]);
    expect(result.perQuery).toHaveLength(8 * 2 * 2);
    expect(result.models.robust.modelId).toBe('defect-cnn-fare4');
    expect(result.models.clean.modelId).toBe('defect-cnn-clean');
    const list = await services.audits.list();
    expect(list.map((a) => a.id)).toEqual(['audit-test-1']);
    expect(list[0]!.headline).toHaveLength(4);
  });

  it('changes nothing at ε = 0', () => {
    for (const m of result.metrics.filter((x) => x.epsilon === 0)) {
      expect(m.overlapAtK).toBe(1);
      expect(m.top1Retention).toBe(1);
      expect(m.meanRankOfCleanTop1).toBe(1);
      expect(m.cosineDrift).toBeLessThan(1e-5);
    }
  });

  it('shows the robust tower keeping clearly more of its retrieval than the clean one at 4/255', () => {
    const at = (e: 'robust' | 'clean') => result.metrics.find((m) => m.encoder === e && m.epsilon === EPS)!;
    expect(at('robust').overlapAtK).toBeGreaterThan(at('clean').overlapAtK + 0.2);
    expect(at('robust').cosineDrift).toBeLessThan(at('clean').cosineDrift);
    expect(at('clean').targetedSuccessAtK).toBeDefined();
    expect(at('robust').precisionAtK).toBeDefined();
    expect(at('clean').defectPrecisionAtK).toBeDefined();
    expect(at('robust').labelCounts).toMatchObject({ labelled: 8, unlabelled: 0 });
  });

  it('gives both towers the same queries and targets', () => {
    const of = (e: string) =>
      result.perQuery
        .filter((o) => o.encoder === e && o.epsilon === EPS)
        .map((o) => `${o.queryId}>${o.targeted?.targetId ?? ''}`)
        .sort();
    expect(of('robust')).toEqual(of('clean'));
    expect(of('robust').filter((q) => !q.endsWith('>'))).toHaveLength(4);
  });

  it('keeps example images for the report', () => {
    expect(result.examples).toHaveLength(2);
    for (const ex of result.examples) {
      expect(ex.clean).toMatch(/^data:image\/png;base64,/);
      expect(ex.byEncoder.robust?.adversarial).toMatch(/^data:image\/png;base64,/);
      expect(ex.byEncoder.clean?.perturbation).toMatch(/^data:image\/png;base64,/);
      expect(ex.byEncoder.clean?.before.length).toBe(result.k);
      expect(ex.byEncoder.clean?.before[0]?.thumbnail).toMatch(/^data:image\/jpeg;base64,/);
    }
  });

  it('measures both towers as a metric: 2AFC clean and attacked at both budgets, and the duplicate decision', async () => {
    const p = result.perceptual!;
    expect(p.triplets).toEqual({ seed: 33, count: 6, size: 256, kinds: { twin: 3, 'same part': 3 } });
    expect(p.twoAfc.map((m) => [m.encoder, m.norm])).toEqual([
      ['robust', 'linf'],
      ['robust', 'l2'],
      ['clean', 'linf'],
      ['clean', 'l2'],
    ]);
    expect(p.perTriplet).toHaveLength(6 * 2 * 2);
    for (const m of p.twoAfc) {
      const rows = p.perTriplet.filter((o) => o.encoder === m.encoder && o.norm === m.norm);
      expect(rows.map((o) => o.index).sort()).toEqual([0, 1, 2, 3, 4, 5]);
      const mean = (pick: (o: (typeof rows)[number]) => number) => rows.reduce((s, o) => s + pick(o), 0) / rows.length;
      // The attack raises the margin; accuracy can only fall.
      expect(mean((o) => o.attackedMargin)).toBeGreaterThan(mean((o) => o.cleanMargin));
      expect(m.attacked).toBeLessThanOrEqual(m.clean);
      expect(m.clean).toBe(rows.filter((o) => o.cleanMargin < 0).length / 6);
    }
    // The clean margins are the towers' own: the same triplets rendered again and embedded on the search path.
    const { renderTriplet, tripletAt, embedFiles } = await import('@lookalike/distance');
    const files: string[] = [];
    for (let i = 0; i < 6; i++) {
      const bytes = await renderTriplet(tripletAt(33, i), 256);
      for (const [j, b] of bytes.entries()) {
        const file = join(dir, `triplet-${i}-${j}`);
        await writeFile(file, b);
        files.push(file);
      }
    }
    const embedded = await embedFiles(
      { encoders: services.encoders, preparer: services.preparer, preprocess: 'fast' },
      files,
    );
    for (const o of p.perTriplet.filter((x) => x.norm === 'linf')) {
      const [ref, same, other] = [0, 1, 2].map((j) => embedded[o.encoder][o.index * 3 + j]!);
      const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, v, k) => s + v * b[k]!, 0);
      expect(o.cleanMargin).toBeCloseTo(dot(ref!, other!) - dot(ref!, same!), 4);
    }
    // Both towers are calibrated, so both duplicate decisions were attacked, each at its own threshold.
    expect(p.uncalibrated).toBeUndefined();
    for (const d of p.duplicates) {
      const state = services.calibrations[d.encoder];
      expect(state.status === 'calibrated' && state.calibration.thresholds.sameItem).toBe(d.threshold);
      const rows = p.perDuplicate.filter((o) => o.encoder === d.encoder);
      expect(rows).toHaveLength(6);
      const mean = (pick: (o: (typeof rows)[number]) => number) => rows.reduce((s, o) => s + pick(o), 0) / rows.length;
      expect(mean((o) => o.duplicate.attacked)).toBeGreaterThan(mean((o) => o.duplicate.clean));
      expect(mean((o) => o.impostor.attacked)).toBeLessThan(mean((o) => o.impostor.clean));
      expect(d.hide.eligible).toBe(rows.filter((o) => o.duplicate.clean <= d.threshold).length);
      expect(d.forge.succeeded).toBe(
        rows.filter((o) => o.impostor.clean > d.threshold && o.impostor.attacked <= d.threshold).length,
      );
    }
    for (const ex of p.examples) {
      expect(ex.cleanMargin).toBeLessThan(0);
      expect(ex.attackedMargin).toBeGreaterThanOrEqual(0);
      expect(ex.adversarial).toMatch(/^data:image\/png;base64,/);
    }
    expect(p.cost.gradientEvaluations).toBeGreaterThan(0);
    expect((await services.audits.list())[0]!.twoAfc).toHaveLength(4);
  });

  it('attacks each tower’s quality gate: good photos pushed down, unusable ones pushed up, flips counted', async () => {
    const q = result.quality!;
    expect(q.images).toEqual({ seed: 43, count: 6, size: 256 });
    expect(q.missing).toBeUndefined();
    expect(q.metrics.map((m) => [m.encoder, m.model])).toEqual([
      ['robust', 'quality-cnn-fare4'],
      ['clean', 'quality-cnn-clean'],
    ]);
    expect(q.perImage).toHaveLength(6 * 2);
    const { qualityPhoto, gradedRight } = await import('@lookalike/audit');
    for (const o of q.perImage) {
      const photo = qualityPhoto(43, o.index);
      expect(o.kind).toBe(photo.kind);
      expect(o.target).toBe(photo.recipe.quality);
      // The attack only ever moves a score the way it is meant to.
      if (o.kind === 'good') expect(o.attackedScore).toBeLessThanOrEqual(o.cleanScore + 1e-6);
      else expect(o.attackedScore).toBeGreaterThanOrEqual(o.cleanScore - 1e-6);
    }
    for (const m of q.metrics) {
      const rows = q.perImage.filter((o) => o.encoder === m.encoder);
      // The gate attacked is the one ingest grades with.
      if (m.encoder === 'robust') expect(m.threshold).toBe(services.quality!.info.threshold);
      expect(m.good.images + m.bad.images).toBe(6);
      const right = rows.filter((o) => gradedRight(o.kind, o.cleanScore, o.threshold));
      expect(m.good.correct + m.bad.correct).toBe(right.length);
      const flips = right.filter((o) => !gradedRight(o.kind, o.attackedScore, o.threshold)).length;
      expect(m.flippedShare).toBeCloseTo(right.length ? flips / right.length : 0, 10);
    }
    // The clean scores are the quality model's own: the same photo rendered again and scored on the ingest path.
    const { renderImage, renderDistorted, sampleSpec } = await import('@lookalike/synth');
    const { fromBytes } = await import('@lookalike/imaging');
    const scorer = services.quality!;
    for (const o of q.perImage.filter((x) => x.encoder === 'robust')) {
      const spec = sampleSpec(43, o.index);
      const photo = qualityPhoto(43, o.index);
      const bytes =
        o.kind === 'good'
          ? await renderImage(spec, 256, 'png')
          : await renderDistorted(spec, 256, photo.recipe, 43, o.index);
      const size = scorer.info.preprocess.size;
      const data = await fromBytes(bytes, scorer.info.preprocess, undefined, 'fast');
      const [score] = await scorer.score({ data, n: 1, height: size, width: size });
      expect(o.cleanScore).toBeCloseTo(score!, 4);
    }
    expect(q.cost.gradientEvaluations).toBeGreaterThan(0);
  });

  it('renders a self-contained report in Chromium', async () => {
    const html = await services.audits.report(result.id);
    expect(html).toContain('the robust tower keeps');
    expect(html).toContain('2AFC on 6 rendered triplets');
    expect(html).toContain('Quality gate on 6 rendered photos');
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);
    const browser = await launchChromium(process.env);
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const errors: string[] = [];
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      page.on('pageerror', (e) => errors.push(e.message));
      await page.setContent(html!, { waitUntil: 'load' });
      expect(await page.locator('.charts svg').count()).toBeGreaterThanOrEqual(5);
      const broken = await page.$$eval('img', (imgs) => imgs.filter((i) => !i.complete || i.naturalWidth === 0).length);
      expect(broken).toBe(0);
      expect(
        await page.locator('table:not(.labels):not(.twoafc):not(.duplicates):not(.quality) tbody tr').count(),
      ).toBe(12);
      // 2AFC: all triplets and each kind, one row per tower each; the duplicate attacks: one row per tower.
      expect(await page.locator('table.twoafc tbody tr').count()).toBe(6);
      expect(await page.locator('table.duplicates tbody tr').count()).toBe(2);
      // Same part + defect, same defect, same defect over defective queries: one row per tower each.
      expect(await page.locator('table.labels tbody tr').count()).toBe(6);
      await mkdir(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, 'report.png'), fullPage: true });
      await writeFile(join(ARTIFACTS, 'report.html'), html!);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
