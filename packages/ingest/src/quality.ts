/**
 * Quality scoring in the ingest handlers: the quality model's scores of a chunk's images graded against its
 * threshold, and what a batch reports of the grades.
 */
import type { Point, QualityScore, QualityScorer } from '@lookalike/core';

/** A new image graded `low`, as a run reports it. */
export interface LowQualityImage {
  id: string;
  location: string;
  score: number;
}

/** The quality of each image of a chunk (by index) from its score; none without a quality model. */
export function gradeQuality(
  scorer: QualityScorer | undefined,
  scores: readonly number[] | undefined,
  count: number,
): (QualityScore | undefined)[] {
  if (!scorer || !scores) return Array.from({ length: count }, () => undefined);
  const { id, tower, threshold } = scorer.info;
  return scores.map((raw) => {
    const score = Math.round(raw * 1e4) / 1e4;
    return { score, grade: score < threshold ? 'low' : 'ok', threshold, model: id, tower };
  });
}

/** Adds the stored points' grades to a batch's counts and its list of low-quality images. */
export function tallyQuality(
  points: readonly Point[],
  result: { quality: { scored: number; low: number }; lowQuality: LowQualityImage[] },
): void {
  for (const p of points) {
    const q = p.payload.quality;
    if (!q) continue;
    result.quality.scored++;
    if (q.grade !== 'low') continue;
    result.quality.low++;
    result.lowQuality.push({ id: p.id, location: p.payload.source, score: q.score });
  }
}
