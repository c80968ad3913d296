import { ENCODER_ROLES, scrollPoints, type PartDefect, type SearchHit, type StoredPoint } from '@lookalike/core';
import { partDefectOf } from '@lookalike/audit';
import type { Services } from '@lookalike/services';

/**
 * The image the demo shows lookalikes of: the first labelled defective image in the store's scroll order (by id, so
 * the same catalog always gives the same one), else the first image; undefined in an empty store.
 */
export async function demoQuery(store: Services['store']): Promise<StoredPoint | undefined> {
  let first: StoredPoint | undefined;
  for await (const p of scrollPoints(store, {
    filter: { mustNot: [{ field: 'labels.defect', match: 'none' }] },
    pageSize: 100,
    withVectors: true,
  })) {
    first ??= p;
    if (partDefectOf(p.payload.labels)) return p;
  }
  return first ?? (await store.scroll({ limit: 1, withVectors: true })).points[0];
}

const labelText = (l: PartDefect | undefined): string => (l ? `${l.part} / ${l.defect}` : 'no labels');

/**
 * How many hits share the query's labels, as the audit's precision@k counts them (a hit without part and defect
 * labels shares nothing): `robust tower: 4 of 10 share its defect (crack), 2 of 10 share part+defect (gear / crack).`
 */
export function shareLine(tower: string, query: PartDefect, hits: readonly SearchHit[]): string {
  const labels = hits.map((h) => partDefectOf(h.payload.labels));
  const defect = labels.filter((l) => l?.defect === query.defect).length;
  const both = labels.filter((l) => l?.defect === query.defect && l.part === query.part).length;
  return (
    `${tower} tower: ${defect} of ${hits.length} share its defect (${query.defect}), ` +
    `${both} of ${hits.length} share part+defect (${labelText(query)}).`
  );
}

/**
 * Prints the nearest neighbours of one defective catalog image with each tower — each hit's score, part / defect
 * and caption — and how many share its defect, so the demo shows what search returns and whether it sees defects.
 * `k` is the audit's top-k; the query itself is left out, as the audit does.
 */
export async function showLookalikes(services: Services, k: number): Promise<void> {
  const query = await demoQuery(services.store);
  if (!query) return;
  const labels = partDefectOf(query.payload.labels);
  const caption = query.payload.caption ? ` ("${query.payload.caption}")` : '';
  const about = labels ? `part ${labels.part}, defect ${labels.defect}` : 'no part and defect labels';
  console.log(`\nLookalikes of ${query.payload.source}, ${about}${caption}:`);
  for (const using of ENCODER_ROLES) {
    const found = await services.store.search({ vector: query.vectors![using], using, k: k + 1 });
    const hits = found.filter((h) => h.id !== query.id).slice(0, k);
    console.log(`  ${using} tower:`);
    for (const h of hits)
      console.log(
        `    ${h.score.toFixed(3).padStart(6)}  ${labelText(partDefectOf(h.payload.labels)).padEnd(30)}  ${h.payload.caption ?? h.payload.source}`,
      );
    if (labels) console.log(`  ${shareLine(using, labels, hits)}`);
  }
}
