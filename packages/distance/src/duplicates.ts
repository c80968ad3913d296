/**
 * The near-duplicate groups ingest made (`payload.duplicates`, see `groupDuplicates` in `@lookalike/ingest`), as people
 * review them: listed newest first, one group with its members, and a review that keeps one member and marks the
 * others as duplicates. A review only writes payloads; deleting a copy is a separate, explicit request.
 */
import {
  NotFoundError,
  ValidationError,
  scrollPoints,
  type DuplicateRecord,
  type Filter,
  type PointPayload,
  type StoredPoint,
  type VectorStore,
} from '@lookalike/core';

/** One member of a group as listed. */
export interface DuplicateMember {
  id: string;
  payload: PointPayload & { duplicates: DuplicateRecord };
}

/** A near-duplicate group: its id (the id of its first image) and its members, the first one first. */
export interface DuplicateGroup {
  id: string;
  size: number;
  /** Members, the group's first image first, then by distance to the image each joined. */
  members: DuplicateMember[];
  /** The member kept by the last review, if any. */
  kept?: string;
  /** Members not reviewed yet. */
  unreviewed: number;
  /** The newest member's ingest time. */
  latest: string;
}

/** A page of groups. */
export interface DuplicateGroupPage {
  groups: DuplicateGroup[];
  /** Groups in all. */
  total: number;
  /** Images in all groups. */
  images: number;
}

const GROUPED: Filter = { must: [{ field: 'duplicates.distance', range: { gte: 0 } }] };

function isMember(p: StoredPoint): p is StoredPoint & DuplicateMember {
  return p.payload.duplicates !== undefined;
}

function groupOf(id: string, members: DuplicateMember[]): DuplicateGroup {
  const sorted = [...members].sort(
    (a, b) =>
      Number(b.id === id) - Number(a.id === id) ||
      a.payload.duplicates.distance - b.payload.duplicates.distance ||
      a.id.localeCompare(b.id),
  );
  const kept = sorted.find((m) => m.payload.duplicates.review === 'kept')?.id;
  return {
    id,
    size: sorted.length,
    members: sorted,
    ...(kept ? { kept } : {}),
    unreviewed: sorted.filter((m) => m.payload.duplicates.review === undefined).length,
    latest: sorted.reduce((t, m) => (m.payload.ingestedAt > t ? m.payload.ingestedAt : t), ''),
  };
}

/** The near-duplicate groups of a store. */
export class DuplicateGroups {
  constructor(
    private readonly store: VectorStore,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /**
   * Groups, newest (by their latest member) first, `offset` and `limit` paging through them; groups of one image (a
   * group whose other members were deleted) are left out. Reads every grouped image's payload once per call.
   */
  async list(options: { limit: number; offset?: number; unreviewed?: boolean }): Promise<DuplicateGroupPage> {
    const byGroup = new Map<string, DuplicateMember[]>();
    for await (const p of scrollPoints(this.store, { filter: GROUPED })) {
      if (!isMember(p)) continue;
      const list = byGroup.get(p.payload.duplicates.group) ?? [];
      list.push(p);
      byGroup.set(p.payload.duplicates.group, list);
    }
    const groups = [...byGroup.entries()]
      .filter(([, members]) => members.length > 1)
      .map(([id, members]) => groupOf(id, members))
      .filter((g) => !options.unreviewed || g.unreviewed > 0)
      .sort((a, b) => b.latest.localeCompare(a.latest) || a.id.localeCompare(b.id));
    const offset = options.offset ?? 0;
    return {
      groups: groups.slice(offset, offset + options.limit),
      total: groups.length,
      images: groups.reduce((n, g) => n + g.size, 0),
    };
  }

  /** The members of group `id`; `undefined` when no image is in it. */
  async get(id: string): Promise<DuplicateGroup | undefined> {
    const members = await this.members(id, false);
    return members.length ? groupOf(id, members) : undefined;
  }

  /** How many images group `id` holds. */
  size(id: string): Promise<number> {
    return this.store.count({ must: [{ field: 'duplicates.group', match: id }] });
  }

  /**
   * Keeps `keep` and marks every other member of group `id` as a duplicate (their payloads say so, with the time);
   * nothing is deleted. A second review replaces the first.
   */
  async review(id: string, keep: string): Promise<DuplicateGroup> {
    const members = await this.members(id, true);
    if (!members.length) throw new NotFoundError('duplicate group', id);
    if (!members.some((m) => m.id === keep))
      throw new ValidationError(`Image ${keep} is not in duplicate group ${id}; keep one of its members.`, [
        { path: 'keep', message: 'not a member of the group' },
      ]);
    const reviewedAt = this.now().toISOString();
    const reviewed = members.map((m) => ({
      ...m,
      payload: {
        ...m.payload,
        duplicates: {
          ...m.payload.duplicates,
          review: m.id === keep ? ('kept' as const) : ('duplicate' as const),
          reviewedAt,
        },
      },
    }));
    await this.store.upsert(
      reviewed.flatMap((m) => (m.vectors ? [{ id: m.id, vectors: m.vectors, payload: m.payload }] : [])),
    );
    return groupOf(
      id,
      reviewed.map(({ id: mid, payload }) => ({ id: mid, payload })),
    );
  }

  private async members(id: string, withVectors: boolean): Promise<(StoredPoint & DuplicateMember)[]> {
    const filter: Filter = { must: [{ field: 'duplicates.group', match: id }] };
    const members: (StoredPoint & DuplicateMember)[] = [];
    for await (const p of scrollPoints(this.store, { filter, withVectors })) if (isMember(p)) members.push(p);
    return members;
  }
}
