/**
 * 2AFC triplets the generator can render, with the truth known: a reference item, a re-render of it (the same item
 * photographed again) and either its edited twin (one attribute changed) or another item of the same part. A metric
 * is right on a triplet when the reference is closer to the re-render than to the other image.
 */
import type { TripletKind } from '@lookalike/core';
import { createRng, makeRerender, makeTwin, renderImage, sampleSpec, type ItemSpec } from '@lookalike/synth';

/** One triplet: the specs to render, and how to encode the re-render (its JPEG quality, when it has one). */
export interface Triplet {
  index: number;
  kind: TripletKind;
  reference: ItemSpec;
  same: ItemSpec;
  sameJpegQuality?: number;
  other: ItemSpec;
}

/** Item indices of the "another item of the same part" draws start here, apart from the references'. */
const OTHER_ITEMS = 1_000_000_000;

/**
 * Triplet `index` of the seeded sequence: even indices pit the re-render against the reference's edited twin, odd
 * ones against another item of the same part (drawn from the same seed's items, never the reference itself).
 */
export function tripletAt(seed: number, index: number): Triplet {
  const reference = sampleSpec(seed, index);
  const { spec: same, changes } = makeRerender(reference, seed, index, 1);
  const base = {
    index,
    reference,
    same,
    ...(changes.jpegQuality === undefined ? {} : { sameJpegQuality: changes.jpegQuality }),
  };
  if (index % 2 === 0) return { ...base, kind: 'twin', other: makeTwin(reference, seed, index).spec };
  const rng = createRng(seed, index, 'triplet-other');
  for (;;) {
    const candidate = sampleSpec(seed, OTHER_ITEMS + rng.int(OTHER_ITEMS));
    if (candidate.labels.part === reference.labels.part) return { ...base, kind: 'same part', other: candidate };
  }
}

/** Triplets `first` … `first + count − 1` of the sequence of `seed`. */
export function triplets(seed: number, first: number, count: number): Triplet[] {
  return Array.from({ length: count }, (_, i) => tripletAt(seed, first + i));
}

/** The triplet's three images — reference, re-render, other — encoded as the catalog encodes them, `size` px square. */
export function renderTriplet(t: Triplet, size: number): Promise<[Buffer, Buffer, Buffer]> {
  return Promise.all([
    renderImage(t.reference, size, 'png'),
    t.sameJpegQuality === undefined
      ? renderImage(t.same, size, 'png')
      : renderImage(t.same, size, 'jpeg', t.sameJpegQuality),
    renderImage(t.other, size, 'png'),
  ]);
}
