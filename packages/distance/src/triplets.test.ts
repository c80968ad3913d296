import { describe, expect, it } from 'vitest';
import { tripletAt, triplets } from './triplets.js';

describe(tripletAt.name, () => {
  it('pits a re-render of the reference against its twin on even indices and another item of the part on odd ones', () => {
    for (const t of triplets(33, 0, 40)) {
      const { lighting: _l, background: _b, ...item } = t.reference.labels;
      const { lighting: _l2, background: _b2, ...again } = t.same.labels;
      expect(again).toEqual(item);
      expect(t.same.defectSeed).toBe(t.reference.defectSeed);
      expect(t.other.labels.part).toBe(t.reference.labels.part);
      if (t.index % 2 === 0) {
        expect(t.kind).toBe('twin');
        expect(t.other.pose).toEqual(t.reference.pose);
        expect(t.other.labels).not.toEqual(t.reference.labels);
      } else {
        expect(t.kind).toBe('same part');
        expect(t.other.scene.textureSeed).not.toBe(t.reference.scene.textureSeed);
      }
    }
  });

  it('is a pure function of (seed, index), and a batch of the sequence is its slice', () => {
    expect(tripletAt(33, 7)).toEqual(tripletAt(33, 7));
    expect(tripletAt(34, 7)).not.toEqual(tripletAt(33, 7));
    expect(triplets(33, 5, 3)).toEqual([tripletAt(33, 5), tripletAt(33, 6), tripletAt(33, 7)]);
  });
});
