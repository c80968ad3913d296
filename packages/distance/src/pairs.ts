/**
 * Labelled pairs of images from a synthetic catalog with edited twins and re-renders: the generator knows what
 * each pair is (see {@link PAIR_KINDS}), so thresholds fitted on them are fitted on truth, not on someone's eye.
 */
import { createRng, type ManifestRecord, type TwinEdit } from '@lookalike/synth';
import type { PairKind } from './calibration.js';

/** One pair: two images of the catalog (paths relative to its root) and what they are to each other. */
export interface CatalogPair {
  kind: PairKind;
  a: { id: string; file: string };
  b: { id: string; file: string };
}

const TWIN_KINDS: Record<TwinEdit['type'], PairKind> = {
  'change-color': 'twin, colour changed',
  'move-defect': 'twin, defect moved',
  'add-defect': 'twin, defect added',
  'remove-defect': 'twin, defect removed',
};

/** The catalog lacks what labelled pairs need. */
export class CatalogPairsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CatalogPairsError';
    Object.setPrototypeOf(this, new.target.prototype);
  }
}

/**
 * Every item's pairs: each of its re-renders, its twin, and one seeded draw each of another item of the same part
 * and defect, of the same part with another defect, and of another part (when the catalog has one). Deterministic
 * in (records, seed).
 */
export function catalogPairs(records: readonly ManifestRecord[], seed: number): CatalogPair[] {
  if (!records.some((r) => r.rerenders?.length))
    throw new CatalogPairsError('the catalog has no re-renders: make it with lookalike synth --rerenders 2 --twins');
  if (!records.some((r) => r.twin))
    throw new CatalogPairsError('the catalog has no edited twins: make it with lookalike synth --twins');
  const byPart = new Map<string, number[]>();
  records.forEach((r, i) => {
    const list = byPart.get(r.labels.part) ?? [];
    list.push(i);
    byPart.set(r.labels.part, list);
  });
  const pairs: CatalogPair[] = [];
  const ref = (r: { id: string; file: string }) => ({ id: r.id, file: r.file });
  for (const [i, r] of records.entries()) {
    for (const again of r.rerenders ?? []) pairs.push({ kind: 'rerender', a: ref(r), b: ref(again) });
    if (r.twin) pairs.push({ kind: TWIN_KINDS[r.twin.edit.type], a: ref(r), b: ref(r.twin) });
    const rng = createRng(seed, i, 'distance-pairs');
    const samePart = (byPart.get(r.labels.part) ?? []).filter((j) => j !== i);
    const draw = (kind: PairKind, candidates: number[]): void => {
      if (candidates.length > 0) pairs.push({ kind, a: ref(r), b: ref(records[rng.pick(candidates)]!) });
    };
    draw(
      'same part and defect',
      samePart.filter((j) => records[j]!.labels.defect === r.labels.defect),
    );
    draw(
      'same part, other defect',
      samePart.filter((j) => records[j]!.labels.defect !== r.labels.defect),
    );
    // Drawing an index and skipping the part keeps this O(1) per item.
    for (let tries = 0; tries < 64; tries++) {
      const j = rng.int(records.length);
      if (records[j]!.labels.part !== r.labels.part) {
        pairs.push({ kind: 'other part', a: ref(r), b: ref(records[j]!) });
        break;
      }
    }
  }
  return pairs;
}
