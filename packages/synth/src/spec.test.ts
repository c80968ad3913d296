import { describe, expect, it } from 'vitest';
import { captionOf, makeTwin, positionsFor, sampleSpec } from './spec.js';
import { defectPositions, partShape } from './shapes.js';
import { DEFECTS, PARTS, POSITIONS, PART_MATERIALS } from './vocabulary.js';

const specs = Array.from({ length: 4000 }, (_, i) => sampleSpec(11, i));

describe(sampleSpec.name, () => {
  it('is a pure function of (seed, index)', () => {
    expect(sampleSpec(11, 17)).toEqual(specs[17]);
    expect(sampleSpec(12, 17)).not.toEqual(specs[17]);
  });

  it('covers every part, defect and position, with no defect in about a quarter of images', () => {
    const parts = new Set(specs.map((s) => s.labels.part));
    const defects = new Set(specs.map((s) => s.labels.defect));
    const positions = new Set(specs.map((s) => s.labels.position));
    expect(parts).toEqual(new Set(PARTS));
    expect(defects).toEqual(new Set(DEFECTS));
    for (const p of POSITIONS) expect(positions.has(p)).toBe(true);
    const none = specs.filter((s) => s.labels.defect === 'none').length / specs.length;
    expect(none).toBeGreaterThan(0.2);
    expect(none).toBeLessThan(0.3);
  });

  it('keeps labels consistent: position only with a defect, on material, with a material the part is made of', () => {
    for (const { labels } of specs) {
      expect(PART_MATERIALS[labels.part]).toContain(labels.material);
      if (labels.defect === 'none') expect(labels.position).toBeNull();
      else {
        expect(labels.position).not.toBeNull();
        expect(positionsFor(labels.part, labels.defect)).toContain(labels.position);
        expect(partShape(labels.part).anchors[labels.position!]).toBeDefined();
      }
    }
  });

  it('never puts a missing piece in the middle of a part', () => {
    for (const part of PARTS) expect(positionsFor(part, 'missing piece')).not.toContain('centre');
    expect(defectPositions('washer')).not.toContain('centre');
  });
});

describe(captionOf.name, () => {
  it('names colour, material, part, defect and position in the contract grammar', () => {
    expect(
      captionOf({
        part: 'bracket',
        color: 'red',
        material: 'anodised',
        defect: 'crack',
        position: 'top left',
        background: 'wood',
        lighting: 'soft',
      }),
    ).toBe('a red anodised bracket with a crack at the top left');
    expect(
      captionOf({
        part: 'gear',
        color: 'orange',
        material: 'plastic',
        defect: 'none',
        position: null,
        background: 'wood',
        lighting: 'dim',
      }),
    ).toBe('an orange plastic gear with no defects');
    expect(
      captionOf({
        part: 'nut',
        color: 'blue',
        material: 'galvanised',
        defect: 'corrosion',
        position: 'right',
        background: 'grey',
        lighting: 'warm',
      }),
    ).toBe('a blue galvanised nut with corrosion at the right');
  });
});

describe(makeTwin.name, () => {
  it('changes exactly the edited attribute and keeps pose and scene', () => {
    const kinds = new Set<string>();
    specs.forEach((spec, i) => {
      const { spec: twin, edit } = makeTwin(spec, 11, i);
      kinds.add(edit.type);
      expect(twin.pose).toEqual(spec.pose);
      expect(twin.scene).toEqual(spec.scene);
      const changed = (Object.keys(spec.labels) as (keyof typeof spec.labels)[]).filter(
        (k) => spec.labels[k] !== twin.labels[k],
      );
      switch (edit.type) {
        case 'change-color':
          expect(changed).toEqual(['color']);
          expect(edit.instruction).toBe(`make it ${twin.labels.color}`);
          break;
        case 'move-defect':
          expect(changed).toEqual(['position']);
          expect(twin.defectSeed).toBe(spec.defectSeed);
          break;
        case 'add-defect':
          expect(spec.labels.defect).toBe('none');
          expect(changed).toEqual(['defect', 'position']);
          break;
        case 'remove-defect':
          expect(twin.labels.defect).toBe('none');
          expect(changed).toEqual(['defect', 'position']);
          break;
      }
      expect(captionOf(twin.labels)).not.toBe(captionOf(spec.labels));
    });
    expect(kinds).toEqual(new Set(['change-color', 'move-defect', 'add-defect', 'remove-defect']));
  });
});
