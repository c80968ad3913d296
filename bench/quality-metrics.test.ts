import { describe, expect, it } from 'vitest';
import {
  aim,
  colourHistogram,
  facetChance,
  facetPrecision,
  nearestOthers,
  type FacetLabels,
} from './quality-metrics.js';

const item = (part: string, defect: string, color = 'red', background = 'wood'): FacetLabels => ({
  part,
  defect,
  color,
  background,
});

describe('bench:quality metrics', () => {
  it('counts per facet the share of hits with the query label, defective-only over defective queries', () => {
    const queries = [item('gear', 'crack'), item('nut', 'none')];
    const hits = [
      [
        item('gear', 'crack', 'blue'),
        item('gear', 'dent'),
        item('bolt', 'crack'),
        item('gear', 'crack', 'red', 'tile'),
      ],
      [item('nut', 'none'), item('nut', 'crack'), item('bolt', 'none', 'blue'), item('nut', 'none', 'blue')],
    ];
    const p = facetPrecision(queries, hits, 4);
    expect(p.partDefect).toEqual({ value: (2 / 4 + 2 / 4) / 2, queries: 2 });
    expect(p.defect!.value).toBeCloseTo((3 / 4 + 3 / 4) / 2, 12);
    expect(p.defectDefective).toEqual({ value: 3 / 4, queries: 1 });
    expect(p.part!.value).toBeCloseTo((3 / 4 + 3 / 4) / 2, 12);
    expect(p.color!.value).toBeCloseTo((3 / 4 + 2 / 4) / 2, 12);
    // Fewer hits than k count as misses.
    expect(facetPrecision([queries[0]!], [hits[0]!.slice(0, 1)], 4).partDefect!.value).toBe(1 / 4);
  });

  it('puts chance at the share of the other gallery items with the query label', () => {
    const gallery = [item('gear', 'crack'), item('gear', 'crack'), item('gear', 'none'), item('nut', 'none')];
    const c = facetChance(gallery, [0, 3]);
    expect(c.partDefect!.value).toBeCloseTo((1 / 3 + 0) / 2, 12);
    expect(c.part!.value).toBeCloseTo((2 / 3 + 0) / 2, 12);
    expect(c.defectDefective).toEqual({ value: 1 / 3, queries: 1 });
  });

  it('builds a normalised joint colour histogram and exact neighbours without the query', () => {
    const rgb = new Uint8Array([255, 0, 0, 250, 10, 5, 0, 0, 255, 0, 0, 0]);
    const h = colourHistogram(rgb);
    expect(h.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 6);
    expect(h[(7 * 8 + 0) * 8 + 0]).toBeCloseTo(0.5, 6);
    const gallery = new Float32Array([1, 0, 0.9, 0.1, 0, 1, 0.99, 0.01]);
    expect(nearestOthers(gallery, 2, 0, 2)).toEqual([3, 1]);
  });

  it('reports an aim as met or missed with the gap in points', () => {
    expect(aim('x', 0.42, '>=', 0.5)).toMatchObject({
      met: false,
      measured: '42.0 %',
      gap: '8.0 points short of 50.0 %',
    });
    expect(aim('x', 0.03, '<', 0.05).met).toBe(true);
    expect(aim('x', undefined, '>=', 0.5)).toMatchObject({ met: false, measured: 'not measured' });
  });
});
