import type { Filter } from './filter.js';
import type { VectorStore } from './ports.js';
import type { StoredPoint } from './types.js';

/**
 * Every point of `store` (matching `filter`), page by page in the store's scroll order: the cursor loop that reading
 * a whole collection always needs. Pages of `pageSize` points (default 1000), without vectors unless asked.
 */
export async function* scrollPoints(
  store: Pick<VectorStore, 'scroll'>,
  options: { filter?: Filter; pageSize?: number; withVectors?: boolean } = {},
): AsyncGenerator<StoredPoint> {
  let cursor: string | undefined;
  do {
    const page = await store.scroll({
      limit: options.pageSize ?? 1000,
      ...(options.filter ? { filter: options.filter } : {}),
      ...(options.withVectors ? { withVectors: true } : {}),
      ...(cursor ? { cursor } : {}),
    });
    yield* page.points;
    cursor = page.next;
  } while (cursor);
}
