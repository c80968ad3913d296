/**
 * One batch of an audit: every query attacked at every budget against both towers, each searched in the index
 * built with its own vectors. Both towers get the same queries, seeds, budgets and targets.
 */
import {
  ENCODER_ROLES,
  NotFoundError,
  cosine,
  type AuditExample,
  type EncoderRole,
  type ExampleHit,
  type PointPayload,
  type PreprocessMode,
  type QueryOutcome,
  type VectorStore,
} from '@lookalike/core';
import { runAttack, unitRows, type PixelSpaceModel } from '@lookalike/attacks';
import { fromBytes, type DecodeLimits } from '@lookalike/imaging';
import type { AuditOptions } from '@lookalike/queue';
import { labelPrecision, overlapAtK, partDefectOf, rankOf } from './metrics.js';
import type { PerceptualBatchOutcome } from './perceptual.js';
import type { QualityBatchOutcome } from './quality.js';
import { pixelsToPng, perturbationToPng } from './png.js';

/** What an audit batch needs: the store, each tower as an attacker sees it, and the bytes of a catalog image. */
export interface AuditDeps {
  store: VectorStore;
  models: Record<EncoderRole, PixelSpaceModel>;
  /** The original bytes of an indexed image (read from where it was ingested). */
  readImage: (payload: PointPayload) => Promise<Uint8Array>;
  decode?: DecodeLimits;
  /** How the images are resized (PREPROCESS); default `fast`, the pixels ingest embedded. */
  preprocess?: PreprocessMode;
}

/** One query of a batch and, optionally, the image to pull it toward. */
export interface AuditQuery {
  id: string;
  targetId?: string;
}

/** What a batch job returns. */
export interface BatchOutcome {
  batch: number;
  outcomes: QueryOutcome[];
  examples: AuditExample[];
  /** Gradient evaluations per image, all queries, encoders and budgets. */
  gradientEvaluations: number;
  seconds: number;
  /** The batch's share of the perceptual triplets, when it had one. */
  perceptual?: PerceptualBatchOutcome;
  /** The batch's share of the quality-gate photos, when it had one. */
  quality?: QualityBatchOutcome;
}

/** The budget shown in examples: 4/255 when audited (the papers' headline), else the largest. */
export function exampleEpsilon(epsilons: readonly number[]): number {
  const positive = epsilons.filter((e) => e > 0);
  if (!positive.length) return 0;
  return positive.find((e) => Math.abs(e - 4 / 255) < 1e-9) ?? Math.max(...positive);
}

interface Searched {
  ids: string[];
  scores: number[];
  payloads: PointPayload[];
}

/** Runs one batch. `firstIndex` is the batch's first query's position in the audit (examples are the first few). */
export async function auditBatch(
  deps: AuditDeps,
  batch: number,
  queries: readonly AuditQuery[],
  options: AuditOptions,
  firstIndex: number,
): Promise<BatchOutcome> {
  const started = performance.now();
  const ids = queries.map((q) => q.id);
  const points = await deps.store.get(ids, { withVectors: true });
  const byId = new Map(points.map((p) => [p.id, p]));
  const missing = ids.filter((id) => !byId.has(id));
  if (missing.length) throw new NotFoundError('image', missing[0]!);
  const targetIds = [...new Set(queries.flatMap((q) => (q.targetId ? [q.targetId] : [])))];
  const targets = new Map((await deps.store.get(targetIds, { withVectors: true })).map((p) => [p.id, p]));
  const bytes = await Promise.all(points.map((p) => deps.readImage(p.payload)));
  const n = queries.length;
  const showEpsilon = exampleEpsilon(options.epsilons);
  const exampleCount = Math.max(0, Math.min(n, options.examples - firstIndex));
  const examples: AuditExample[] = [];
  const outcomes: QueryOutcome[] = [];
  let gradientEvaluations = 0;

  const search = async (vector: Float32Array, using: EncoderRole, self: string): Promise<Searched> => {
    const hits = await deps.store.search({ vector, using, k: options.depth + 1 });
    const kept = hits.filter((h) => h.id !== self).slice(0, options.depth);
    return { ids: kept.map((h) => h.id), scores: kept.map((h) => h.score), payloads: kept.map((h) => h.payload) };
  };
  const brief = (s: Searched): ExampleHit[] =>
    s.ids.slice(0, options.k).map((id, i) => ({
      id,
      score: s.scores[i]!,
      ...(s.payloads[i]!.caption ? { caption: s.payloads[i]!.caption } : {}),
    }));

  const labels = points.map((p) => partDefectOf(p.payload.labels));
  const labelsOf = (s: Searched) => s.payloads.map((p) => partDefectOf(p.labels));
  for (const encoder of ENCODER_ROLES) {
    const model = deps.models[encoder];
    const S = model.size;
    const per = 3 * S * S;
    // [n, 3, S, S] in [0,1]: the same resize and crop ingest and search use.
    const x = new Float32Array(n * per);
    const pixels = await Promise.all(bytes.map((b) => fromBytes(b, model.spec, deps.decode, deps.preprocess)));
    pixels.forEach((p, i) => x.set(p, i * per));
    const anchors = await model.embed(x, n);
    const clean = await Promise.all(
      ids.map((id, i) => search(anchors.subarray(i * model.dim, (i + 1) * model.dim), encoder, id)),
    );
    for (const [e, epsilon] of options.epsilons.entries()) {
      // The same seed for both towers: identical random starts.
      const seed = (options.seed + batch * 7919 + e * 104729) >>> 0;
      const config = {
        name: options.attack,
        norm: options.norm,
        epsilon,
        steps: options.steps,
        restarts: options.restarts,
        seed,
        ...(options.stepSize === undefined ? {} : { stepSize: options.stepSize }),
      };
      const attacked = await runAttack({ model, x, n, anchors, goal: 'untargeted' }, config);
      gradientEvaluations += attacked.gradientEvaluations * n;
      const after = await Promise.all(
        ids.map((id, i) => search(attacked.embedding.subarray(i * model.dim, (i + 1) * model.dim), encoder, id)),
      );
      // Targeted attacks toward another image, for the queries that have a target (at ε = 0: the clean baseline).
      const withTarget = queries.map((q, i) => ({ q, i })).filter(({ q }) => q.targetId && targets.has(q.targetId));
      const targetedHits = new Map<number, { searched: Searched; cosine: number }>();
      if (withTarget.length) {
        const xt = new Float32Array(withTarget.length * per);
        const anchorsT = new Float32Array(withTarget.length * model.dim);
        withTarget.forEach(({ q, i }, j) => {
          xt.set(x.subarray(i * per, (i + 1) * per), j * per);
          anchorsT.set(unitRows(targets.get(q.targetId!)!.vectors![encoder].slice(), 1, model.dim), j * model.dim);
        });
        const t = await runAttack(
          { model, x: xt, n: withTarget.length, anchors: anchorsT, goal: 'targeted' },
          {
            ...config,
            seed: seed ^ 0x5bd1e995,
          },
        );
        gradientEvaluations += t.gradientEvaluations * withTarget.length;
        await Promise.all(
          withTarget.map(async ({ q, i }, j) => {
            const searched = await search(t.embedding.subarray(j * model.dim, (j + 1) * model.dim), encoder, q.id);
            targetedHits.set(i, { searched, cosine: t.loss[j]! });
          }),
        );
      }
      for (let i = 0; i < n; i++) {
        const before = clean[i]!;
        const now = after[i]!;
        const row = (v: Float32Array) => v.subarray(i * model.dim, (i + 1) * model.dim);
        const cos = cosine(row(attacked.embedding), row(anchors));
        const query = labels[i];
        const pc = query && labelPrecision(query, labelsOf(before), options.k);
        const pa = query && labelPrecision(query, labelsOf(now), options.k);
        const targeted = targetedHits.get(i);
        const targetId = queries[i]!.targetId;
        outcomes.push({
          queryId: ids[i]!,
          encoder,
          epsilon,
          loss: attacked.loss[i]!,
          // 1 − cos is never negative; float rounding can make it −1e-7 at ε = 0.
          cosineDrift: Math.max(0, 1 - cos),
          cleanTopK: before.ids.slice(0, options.k),
          attackedTopK: now.ids.slice(0, options.k),
          overlapAtK: overlapAtK(before.ids, now.ids, options.k),
          top1Retained: before.ids[0] !== undefined && before.ids[0] === now.ids[0],
          rankOfCleanTop1: rankOf(before.ids[0], now.ids),
          ...(query && pc && pa
            ? {
                labels: query,
                precisionClean: pc.partDefect,
                precisionAttacked: pa.partDefect,
                defectPrecisionClean: pc.defect,
                defectPrecisionAttacked: pa.defect,
                unlabelledHits: { clean: pc.unlabelledHits, attacked: pa.unlabelledHits },
              }
            : {}),
          ...(targeted && targetId
            ? {
                targeted: {
                  targetId,
                  success: targeted.searched.ids.slice(0, options.k).includes(targetId),
                  rank: rankOf(targetId, targeted.searched.ids),
                  cosine: targeted.cosine,
                },
              }
            : {}),
        });
        if (i < exampleCount && epsilon === showEpsilon) {
          let example = examples[i];
          if (!example) {
            example = {
              queryId: ids[i]!,
              ...(points[i]!.payload.caption ? { caption: points[i]!.payload.caption } : {}),
              epsilon,
              clean: await pixelsToPng(x.subarray(i * per, (i + 1) * per), S),
              byEncoder: {},
            };
            examples[i] = example;
          }
          const adv = attacked.adversarial.subarray(i * per, (i + 1) * per);
          example.byEncoder[encoder] = {
            adversarial: await pixelsToPng(adv, S),
            perturbation: await perturbationToPng(adv, x.subarray(i * per, (i + 1) * per), S, epsilon),
            before: brief(before),
            after: brief(now),
          };
        }
      }
    }
  }
  return {
    batch,
    outcomes,
    examples: examples.filter(Boolean),
    gradientEvaluations,
    seconds: (performance.now() - started) / 1000,
  };
}
