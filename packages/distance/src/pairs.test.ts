import { describe, expect, it } from 'vitest';
import { manifestRecord, type ManifestRecord } from '@lookalike/synth';
import { PAIR_KINDS } from './calibration.js';
import { CatalogPairsError, catalogPairs } from './pairs.js';

const records: ManifestRecord[] = Array.from({ length: 300 }, (_, i) => manifestRecord(17, i, true, 'png', 2));
const byId = new Map(
  records.flatMap((r) => [
    [r.id, r.labels] as const,
    [r.twin!.id, r.twin!.labels] as const,
    ...r.rerenders!.map((x) => [x.id, x.labels] as const),
  ]),
);

describe(catalogPairs.name, () => {
  it('labels every pair with what the generator made it: same item, same kind or different', () => {
    const pairs = catalogPairs(records, 1);
    const kinds = new Set(pairs.map((p) => p.kind));
    expect(kinds).toEqual(new Set(Object.keys(PAIR_KINDS)));
    for (const p of pairs) {
      const [a, b] = [byId.get(p.a.id)!, byId.get(p.b.id)!];
      expect(p.a.id).not.toBe(p.b.id);
      switch (PAIR_KINDS[p.kind]) {
        case 'same item':
          expect(p.b.id.startsWith(`${p.a.id}-r`)).toBe(true);
          expect({ ...b, lighting: a.lighting, background: a.background }).toEqual(a);
          break;
        case 'same kind':
          expect([b.part, b.defect]).toEqual([a.part, a.defect]);
          break;
        case 'different':
          expect(b.part !== a.part || b.defect !== a.defect).toBe(true);
          break;
      }
      if (p.kind.startsWith('twin')) expect(p.b.id).toBe(`${p.a.id}-twin`);
      if (p.kind === 'other part') expect(b.part).not.toBe(a.part);
    }
    // Each item: 2 re-renders, its twin, and (nearly always) one of each drawn kind.
    expect(pairs.filter((p) => p.kind === 'rerender')).toHaveLength(600);
    expect(pairs.filter((p) => p.kind.startsWith('twin'))).toHaveLength(300);
    expect(pairs.filter((p) => p.kind === 'other part')).toHaveLength(300);
  });

  it('is deterministic in its seed', () => {
    expect(catalogPairs(records, 1)).toEqual(catalogPairs(records, 1));
    expect(catalogPairs(records, 2)).not.toEqual(catalogPairs(records, 1));
  });

  it('says what a catalog without re-renders or twins lacks', () => {
    const plain = Array.from({ length: 10 }, (_, i) => manifestRecord(17, i, false, 'png'));
    expect(() => catalogPairs(plain, 1)).toThrow(CatalogPairsError);
    expect(() => catalogPairs(plain, 1)).toThrow(/--rerenders/);
    const noTwins = Array.from({ length: 10 }, (_, i) => manifestRecord(17, i, false, 'png', 1));
    expect(() => catalogPairs(noTwins, 1)).toThrow(/--twins/);
  });
});
