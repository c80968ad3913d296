/**
 * The audit as jobs: `audit-run` draws the queries and starts a flow of `audit-batch` children under one
 * `audit-finalize` parent. Batches spread across workers and retry on their own; the parent runs only when every
 * batch has completed, aggregates, renders and stores the audit whole. A worker dying mid-audit costs at most the
 * batch it held; no half-written report is ever stored.
 */
import { createHash } from 'node:crypto';
import {
  ENCODER_ROLES,
  type AuditExample,
  type AuditResult,
  type EmbeddingProvenance,
  type EncoderRole,
  type PerceptualAudit,
  type PointPayload,
  type QualityAudit,
  type PreprocessMode,
  type VectorStore,
} from '@lookalike/core';
import type { PixelSpaceModel } from '@lookalike/attacks';
import type { DecodeLimits } from '@lookalike/imaging';
import { BadInputError, type AuditOptions, type JobHandlers } from '@lookalike/queue';
import { auditBatch, type BatchOutcome } from './batch.js';
import { perceptualBatch, TRIPLET_SIZE } from './perceptual.js';
import { QUALITY_IMAGE_SIZE, qualityBatch, summarizeQuality, type QualityGate } from './quality.js';
import { summarize, summarizeDuplicates, summarizeTwoAfc } from './metrics.js';
import { thumbnail } from './png.js';
import { renderReport, toSummary } from './report.js';
import { selectQueries } from './select.js';
import type { FileAuditStore } from './store.js';

export interface AuditServiceDeps {
  store: VectorStore;
  /** The towers as an attacker sees them; opened on first use (gradient graphs are built or read from cache). */
  models(): Promise<Record<EncoderRole, PixelSpaceModel>>;
  readImage: (payload: PointPayload) => Promise<Uint8Array>;
  repository: FileAuditStore;
  provenance: Record<EncoderRole, EmbeddingProvenance>;
  decode?: DecodeLimits;
  /** How catalog images are resized before they are attacked (PREPROCESS); default `fast`, as ingest does. */
  preprocess?: PreprocessMode;
  /**
   * Each tower's calibrated `same item` distance, for the attacks on the duplicate decision, or why it has none;
   * default: none for either tower.
   */
  duplicateThresholds?: Record<EncoderRole, number | string>;
  /**
   * Each tower's quality model as an attacker sees it and its threshold (opened on first use), or why the tower has
   * none; default: no quality part.
   */
  qualityGates?: () => Promise<Record<EncoderRole, QualityGate | string>>;
  now?: () => Date;
}

/** A readable, sortable audit id for a run that was not given one (scheduled runs). */
export function auditIdFor(jobId: string, at: Date): string {
  const stamp = at.toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
  return `audit-${stamp}-${createHash('sha256').update(jobId).digest('hex').slice(0, 8)}`;
}

/** Aggregates finished batches into the stored audit (without the HTML). */
export async function assemble(
  deps: Pick<AuditServiceDeps, 'store' | 'readImage' | 'provenance' | 'duplicateThresholds' | 'qualityGates'>,
  payload: { auditId: string; startedAt: string; catalogSize: number; options: AuditOptions },
  batches: readonly BatchOutcome[],
  finishedAt: Date,
): Promise<AuditResult> {
  const ordered = [...batches].sort((a, b) => a.batch - b.batch);
  const outcomes = ordered.flatMap((b) => b.outcomes);
  const examples: AuditExample[] = ordered.flatMap((b) => b.examples);
  await addThumbnails(deps, examples);
  const queries = new Set(outcomes.map((o) => o.queryId)).size;
  const seconds = ordered.reduce((s, b) => s + b.seconds, 0);
  const { options } = payload;
  return {
    schemaVersion: 1,
    id: payload.auditId,
    startedAt: payload.startedAt,
    finishedAt: finishedAt.toISOString(),
    attack: {
      name: options.attack,
      norm: options.norm,
      steps: options.steps,
      restarts: options.restarts,
      ...(options.stepSize === undefined ? {} : { stepSize: options.stepSize }),
      seed: options.seed,
    },
    models: deps.provenance,
    queries,
    epsilons: options.epsilons,
    k: options.k,
    depth: options.depth,
    catalogSize: payload.catalogSize,
    cost: {
      seconds,
      secondsPerQueryPerEncoder: queries ? seconds / (queries * ENCODER_ROLES.length) : 0,
      gradientEvaluations: ordered.reduce((s, b) => s + b.gradientEvaluations, 0),
    },
    metrics: summarize(outcomes, options.k),
    perQuery: outcomes,
    examples,
    ...(options.perceptual.triplets > 0
      ? { perceptual: assemblePerceptual(ordered, options, duplicateThresholdsOf(deps)) }
      : {}),
    ...(options.quality.images > 0 && deps.qualityGates
      ? { quality: assembleQuality(ordered, options, await deps.qualityGates()) }
      : {}),
  };
}

/** The quality part of the audit from every batch's share of the photos. */
function assembleQuality(
  batches: readonly BatchOutcome[],
  options: AuditOptions,
  gates: Record<EncoderRole, QualityGate | string>,
): QualityAudit {
  const parts = batches.flatMap((b) => (b.quality ? [b.quality] : []));
  const perImage = parts.flatMap((p) => p.outcomes);
  const models: Partial<Record<EncoderRole, string>> = {};
  const missing: Partial<Record<EncoderRole, string>> = {};
  for (const role of ENCODER_ROLES) {
    const gate = gates[role];
    if (typeof gate === 'string') missing[role] = gate;
    else models[role] = gate.model.id;
  }
  return {
    images: { seed: options.quality.seed, count: options.quality.images, size: QUALITY_IMAGE_SIZE },
    metrics: summarizeQuality(perImage, models),
    ...(Object.keys(missing).length ? { missing } : {}),
    perImage,
    examples: parts.flatMap((p) => p.examples),
    cost: {
      seconds: parts.reduce((s, p) => s + p.seconds, 0),
      gradientEvaluations: parts.reduce((s, p) => s + p.gradientEvaluations, 0),
    },
  };
}

/** Each tower's duplicate threshold, or why it has none (an audit given no calibrations has none for either). */
function duplicateThresholdsOf(
  deps: Pick<AuditServiceDeps, 'duplicateThresholds'>,
): Record<EncoderRole, number | string> {
  const none = 'no distance calibration was given to the audit';
  return deps.duplicateThresholds ?? { robust: none, clean: none };
}

/** The perceptual part of the audit from every batch's share of the triplets. */
function assemblePerceptual(
  batches: readonly BatchOutcome[],
  options: AuditOptions,
  thresholds: Record<EncoderRole, number | string>,
): PerceptualAudit {
  const parts = batches.flatMap((b) => (b.perceptual ? [b.perceptual] : []));
  const perTriplet = parts.flatMap((p) => p.twoAfc);
  const perDuplicate = parts.flatMap((p) => p.duplicates);
  const kinds: PerceptualAudit['triplets']['kinds'] = {};
  for (const o of perTriplet) if (o.encoder === 'robust' && o.norm === 'linf') kinds[o.kind] = (kinds[o.kind] ?? 0) + 1;
  const uncalibrated = Object.fromEntries(
    ENCODER_ROLES.flatMap((role) => {
      const t = thresholds[role];
      return typeof t === 'number' ? [] : [[role, t]];
    }),
  );
  return {
    triplets: {
      seed: options.perceptual.seed,
      count: options.perceptual.triplets,
      size: TRIPLET_SIZE,
      kinds,
    },
    twoAfc: summarizeTwoAfc(perTriplet),
    duplicates: summarizeDuplicates(perDuplicate),
    ...(Object.keys(uncalibrated).length ? { uncalibrated } : {}),
    perTriplet,
    perDuplicate,
    examples: parts.flatMap((p) => p.examples),
    cost: {
      seconds: parts.reduce((s, p) => s + p.seconds, 0),
      gradientEvaluations: parts.reduce((s, p) => s + p.gradientEvaluations, 0),
    },
  };
}

/** Small thumbnails of the example neighbours, read once per image. */
async function addThumbnails(
  deps: Pick<AuditServiceDeps, 'store' | 'readImage'>,
  examples: AuditExample[],
): Promise<void> {
  const hits = examples.flatMap((ex) => Object.values(ex.byEncoder).flatMap((e) => [...e.before, ...e.after]));
  const ids = [...new Set(hits.map((h) => h.id))];
  const points = await deps.store.get(ids);
  const thumbs = new Map<string, string>();
  for (const p of points) {
    try {
      thumbs.set(p.id, await thumbnail(await deps.readImage(p.payload)));
    } catch {
      // An image that has gone since it was indexed is shown without a picture.
    }
  }
  for (const h of hits) {
    const t = thumbs.get(h.id);
    if (t) h.thumbnail = t;
  }
}

/** The audit job handlers for the job runners (BullMQ workers or in-process). */
export function createAuditHandlers(
  deps: AuditServiceDeps,
): Pick<Required<JobHandlers>, 'audit-run' | 'audit-batch' | 'audit-finalize'> {
  const now = deps.now ?? (() => new Date());
  return {
    'audit-run': async (payload, ctx) => {
      const startedAt = now();
      const auditId = payload.auditId ?? auditIdFor(ctx.jobId, startedAt);
      const { options } = payload;
      const { queries, catalogSize } = await selectQueries(deps.store, {
        queries: options.queries,
        targetedQueries: options.targetedQueries,
        seed: options.seed,
        ...(options.filter ? { filter: options.filter } : {}),
      });
      if (!queries.length) throw new BadInputError('the catalog has no images to audit (ingest some first)');
      const size = options.batchSize;
      const batches = Math.ceil(queries.length / size);
      // The triplets spread over the same batches, so the perceptual part fans out and retries with them.
      const perBatch = Math.ceil(options.perceptual.triplets / batches);
      const tripletsOf = (b: number) => {
        const first = b * perBatch;
        const count = Math.min(perBatch, options.perceptual.triplets - first);
        return count > 0 ? { triplets: { first, count } } : {};
      };
      // And so do the quality-gate photos, when the audit has gates to attack.
      const photos = deps.qualityGates ? options.quality.images : 0;
      const photosPerBatch = Math.ceil(photos / batches);
      const photosOf = (b: number) => {
        const first = b * photosPerBatch;
        const count = Math.min(photosPerBatch, photos - first);
        return count > 0 ? { quality: { first, count } } : {};
      };
      await ctx.enqueueFlow({
        parent: {
          name: 'audit-finalize',
          payload: { auditId, startedAt: startedAt.toISOString(), batches, catalogSize, options },
          jobId: `${auditId}.final`,
        },
        children: {
          name: 'audit-batch',
          payloads: Array.from({ length: batches }, (_, b) => ({
            auditId,
            batch: b,
            queries: queries.slice(b * size, (b + 1) * size),
            ...tripletsOf(b),
            ...photosOf(b),
            options,
          })),
          jobIds: Array.from({ length: batches }, (_, b) => `${auditId}.b${b}`),
        },
      });
      await ctx.updateProgress({ auditId, queries: queries.length, batches });
      return { auditId, queries: queries.length, batches, finalJobId: `${auditId}.final` };
    },

    'audit-batch': async (payload, ctx) => {
      const models = await deps.models();
      const result = await auditBatch(
        {
          store: deps.store,
          models,
          readImage: deps.readImage,
          ...(deps.decode ? { decode: deps.decode } : {}),
          ...(deps.preprocess ? { preprocess: deps.preprocess } : {}),
        },
        payload.batch,
        payload.queries,
        payload.options,
        payload.batch * payload.options.batchSize,
      );
      if (payload.triplets)
        result.perceptual = await perceptualBatch(
          {
            models,
            duplicateThresholds: duplicateThresholdsOf(deps),
            ...(deps.decode ? { decode: deps.decode } : {}),
            ...(deps.preprocess ? { preprocess: deps.preprocess } : {}),
          },
          payload.triplets,
          payload.options,
        );
      if (payload.quality && deps.qualityGates)
        result.quality = await qualityBatch(
          {
            gates: await deps.qualityGates(),
            ...(deps.decode ? { decode: deps.decode } : {}),
            ...(deps.preprocess ? { preprocess: deps.preprocess } : {}),
          },
          payload.quality,
          payload.options,
        );
      await ctx.updateProgress({ auditId: payload.auditId, batch: payload.batch, queries: payload.queries.length });
      return result;
    },

    'audit-finalize': async (payload, ctx) => {
      const existing = await deps.repository.get(payload.auditId);
      if (existing) return toSummary(existing);
      const values = Object.values(await ctx.childrenValues()) as BatchOutcome[];
      if (values.length !== payload.batches)
        throw new Error(`audit ${payload.auditId}: ${values.length} of ${payload.batches} batch results are available`);
      const result = await assemble(deps, payload, values, now());
      const html = await renderReport(result, await deps.repository.list({ limit: 60 }));
      await deps.repository.save(result, html);
      return toSummary(result);
    },
  };
}
