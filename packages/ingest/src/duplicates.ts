/**
 * Near-duplicate grouping at ingest. Each new image is looked up in the duplicate tower's space among the stored images
 * and the images embedded before it in the same chunk; it joins the group of the nearest one within the same-item
 * threshold whose group's first image is within the threshold too (so a group never grows by chaining one look-alike
 * to the next), and an image that had no group becomes the first of one (its group id is its own id).
 * Grouping only writes payloads: nothing is ever deleted or hidden by it.
 */
import {
  cosine,
  type DuplicateRecord,
  type EncoderRole,
  type Point,
  type SearchHit,
  type VectorStore,
} from '@lookalike/core';
import { ReindexRequiredError } from './errors/reindex-required-error.js';

/** How ingest groups near-duplicates. */
export interface DuplicatePolicy {
  /** The tower whose `1 − cos` is compared. */
  tower: EncoderRole;
  /** The same-item threshold: an image this close or closer to another is a near-duplicate of it. */
  threshold: number;
  /** Stored neighbours looked at per image (default 4): a duplicate that is not among them is not found. */
  neighbours?: number;
}

/** One image of a batch that joined a group, as ingest reports it. */
export interface DuplicateJoin {
  id: string;
  location: string;
  group: string;
  nearest: string;
  distance: number;
}

/** What {@link groupDuplicates} decided for a chunk. */
export interface Grouping {
  /** The chunk's images that joined a group (their payloads carry it now). */
  joined: DuplicateJoin[];
  /** Stored images that became the first of a group, with their payloads updated; upsert them with the chunk. */
  founders: Point[];
  /**
   * Images not looked up because the store could not search their tower's space now (a re-index of a change of
   * towers in progress): they are stored without a group.
   */
  unchecked: number;
}

/** The record of a group's first image. */
function founderRecord(policy: DuplicatePolicy, group: string): DuplicateRecord {
  return { group, distance: 0, tower: policy.tower, threshold: policy.threshold };
}

/**
 * Assigns the chunk's new images to groups, in their order, by setting `payload.duplicates` on `points` (which are
 * about to be upserted). `isNew(point)` says which were not stored before: a re-embedded image keeps the group it had.
 * Stored images that become the first of a group come back in {@link Grouping.founders}, read with their vectors and
 * their payload updated, to be upserted with the chunk.
 */
export async function groupDuplicates(
  points: readonly Point[],
  store: VectorStore,
  policy: DuplicatePolicy,
  isNew: (point: Point) => boolean,
  locations: readonly string[],
): Promise<Grouping> {
  const result: Grouping = { joined: [], founders: [], unchecked: 0 };
  const k = Math.max(1, policy.neighbours ?? 4);
  const founders = new Map<string, Point>();
  let searchable = true;
  const firsts = new Map<string, Float32Array | undefined>();
  /** The stored vector of a group's first image, read once per chunk. */
  const vectorOf = async (id: string): Promise<Float32Array | undefined> => {
    if (!firsts.has(id)) {
      const [p] = await store.get([id], { withVectors: true });
      firsts.set(id, p?.vectors?.[policy.tower]);
    }
    return firsts.get(id);
  };
  for (const [i, point] of points.entries()) {
    if (!isNew(point)) continue;
    const vector = point.vectors[policy.tower];
    let hits: SearchHit[] = [];
    if (searchable) {
      try {
        hits = await store.search({ vector, using: policy.tower, k: k + 1 });
      } catch (error) {
        // A store that cannot search the configured towers yet (a re-index pending) still takes the images.
        if (!(error instanceof ReindexRequiredError)) throw error;
        searchable = false;
      }
    }
    if (!searchable) {
      result.unchecked++;
      continue;
    }
    // Candidates within the threshold, nearest first: stored images and the chunk's earlier images.
    const candidates: { distance: number; stored?: SearchHit; earlier?: Point }[] = [];
    for (const hit of hits) {
      const distance = 1 - hit.score;
      if (hit.id !== point.id && distance <= policy.threshold) candidates.push({ distance, stored: hit });
    }
    for (const earlier of points.slice(0, i)) {
      if (earlier.id === point.id) continue;
      const distance = 1 - cosine(vector, earlier.vectors[policy.tower]);
      if (distance <= policy.threshold) candidates.push({ distance, earlier });
    }
    candidates.sort((a, b) => a.distance - b.distance);
    // It joins the group of the nearest candidate whose group's first image is within the threshold too, so that a
    // group never grows by chaining: every member is within the threshold of its first image.
    let best: (typeof candidates)[number] | undefined;
    let group = '';
    for (const c of candidates) {
      const member = c.earlier ?? founders.get(c.stored!.id) ?? c.stored!;
      const first = member.payload.duplicates?.group ?? member.id;
      if (first !== member.id) {
        const firstVector = points.find((p) => p.id === first)?.vectors[policy.tower] ?? (await vectorOf(first));
        if (!firstVector || 1 - cosine(vector, firstVector) > policy.threshold) continue;
      }
      best = c;
      group = first;
      break;
    }
    if (!best) continue;
    if (best.earlier) {
      if (!best.earlier.payload.duplicates) best.earlier.payload.duplicates = founderRecord(policy, group);
    } else if (!founders.has(best.stored!.id) && !best.stored!.payload.duplicates) {
      const [stored] = await store.get([best.stored!.id], { withVectors: true });
      // Deleted since the search: nothing to group with.
      if (!stored?.vectors) continue;
      founders.set(stored.id, {
        id: stored.id,
        vectors: stored.vectors,
        payload: { ...stored.payload, duplicates: founderRecord(policy, group) },
      });
    }
    const nearest = best.earlier?.id ?? best.stored!.id;
    point.payload.duplicates = {
      group,
      distance: best.distance,
      nearest,
      tower: policy.tower,
      threshold: policy.threshold,
    };
    result.joined.push({ id: point.id, location: locations[i]!, group, nearest, distance: best.distance });
  }
  result.founders = [...founders.values()];
  return result;
}
