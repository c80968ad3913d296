/** Which catalog images an audit attacks, and toward which other image the targeted attacks pull them. */
import { scrollPoints, type Filter, type VectorStore } from '@lookalike/core';
import { seededRandom } from '@lookalike/attacks';
import type { AuditQuery } from './batch.js';
import { classOf } from './metrics.js';

/**
 * Draws `count` queries uniformly (seeded) from the points matching `filter`, and gives the first
 * `targeted` of them a target: another drawn query of a different class when labels allow it.
 */
export async function selectQueries(
  store: VectorStore,
  options: { queries: number; targetedQueries: number; seed: number; filter?: Filter },
): Promise<{ queries: AuditQuery[]; catalogSize: number }> {
  const all: { id: string; cls: string | undefined }[] = [];
  for await (const p of scrollPoints(store, options.filter ? { filter: options.filter } : {}))
    all.push({ id: p.id, cls: classOf(p.payload.labels) });
  // Sorted first so that the draw depends on the seed and the catalog, not on the store's scroll order.
  all.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const random = seededRandom(options.seed);
  for (let i = all.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [all[i], all[j]] = [all[j]!, all[i]!];
  }
  const drawn = all.slice(0, Math.min(options.queries, all.length));
  const queries: AuditQuery[] = drawn.map((q, i) => {
    if (i >= options.targetedQueries || drawn.length < 2) return { id: q.id };
    const others = drawn.filter((o) => o.id !== q.id && (q.cls === undefined || o.cls !== q.cls));
    const pool = others.length ? others : drawn.filter((o) => o.id !== q.id);
    return { id: q.id, targetId: pool[Math.floor(random() * pool.length)]!.id };
  });
  return { queries, catalogSize: all.length };
}
