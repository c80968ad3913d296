/**
 * Caption screening in the ingest handlers: the captioned images of a chunk embedded by the text tower and judged by
 * the collection's screen, and what a batch reports of their verdicts.
 */
import type { CaptionScreening, Point, TextEncoder } from '@lookalike/core';
import type { CaptionScreen } from '@lookalike/screening';
import type { Fresh } from './dispatch.js';

/** A new captioned image that screening flagged, as a run reports it. */
export interface SuspiciousCaption {
  id: string;
  location: string;
  caption: string;
  /** cos(image, caption) in the screening tower's space. */
  similarity: number;
  reason: string;
}

/** The screenings of the captioned images among `fresh` (by index), embedded and judged; none without screening. */
export async function screenCaptions(
  screening: { screen: CaptionScreen; text: TextEncoder } | undefined,
  fresh: readonly Fresh[],
  vectors: readonly Point['vectors'][],
): Promise<(CaptionScreening | undefined)[]> {
  const captioned = fresh.flatMap((f, i) => (f.item.caption ? [i] : []));
  if (!screening || captioned.length === 0) return fresh.map(() => undefined);
  const texts = await screening.text.embed(captioned.map((i) => fresh[i]!.item.caption!));
  const judged = await screening.screen.screen(
    captioned.map((i, k) => ({
      vectors: vectors[i]!,
      caption: fresh[i]!.item.caption!,
      text: texts[k]!,
      ...(fresh[i]!.previous ? { previous: fresh[i]!.previous } : {}),
    })),
  );
  const out: (CaptionScreening | undefined)[] = fresh.map(() => undefined);
  captioned.forEach((i, k) => (out[i] = judged[k]));
  return out;
}

/** Adds the stored points' screenings to a batch's counts and its list of suspicious captions. */
export function tallyScreenings(
  points: readonly Point[],
  result: { captions: { screened: number; suspicious: number; pending: number }; suspicious: SuspiciousCaption[] },
): void {
  for (const p of points) {
    const s = p.payload.screening;
    if (!s) continue;
    result.captions.screened++;
    if (s.verdict === 'pending') result.captions.pending++;
    if (s.verdict !== 'suspicious') continue;
    result.captions.suspicious++;
    result.suspicious.push({
      id: p.id,
      location: p.payload.source,
      caption: p.payload.caption ?? '',
      similarity: s.similarity[s.tower],
      reason: s.reason ?? '',
    });
  }
}
