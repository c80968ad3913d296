import { describe, expect, it } from 'vitest';
import { captionOf, makeRerender, makeTwin, positionsFor, sampleSpec } from './spec.js';
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

describe(makeRerender.name, () => {
  it('keeps the item and changes only how it was photographed, deterministically', () => {
    const seen = { lighting: 0, background: 0, jpeg: 0 };
    for (let i = 0; i < 400; i++) {
      const spec = specs[i]!;
      for (const k of [1, 2]) {
        const { spec: again, changes } = makeRerender(spec, 11, i, k);
        expect(makeRerender(spec, 11, i, k)).toEqual({ spec: again, changes });
        const { lighting, background, ...item } = again.labels;
        const { lighting: l0, background: b0, ...item0 } = spec.labels;
        expect(item).toEqual(item0);
        expect(again.defectSeed).toBe(spec.defectSeed);
        expect(again.scene.textureSeed).toBe(spec.scene.textureSeed);
        expect(again.scene.tint).toBe(spec.scene.tint);
        expect(Math.abs(again.pose.rotation - spec.pose.rotation)).toBeLessThanOrEqual(5);
        expect(again.pose.rotation).toBeGreaterThanOrEqual(-18);
        expect(again.pose.rotation).toBeLessThanOrEqual(18);
        expect(Math.abs(again.pose.dx - spec.pose.dx)).toBeLessThanOrEqual(2.5);
        expect(again.pose).not.toEqual(spec.pose);
        expect(lighting !== l0).toBe(changes.lighting !== undefined);
        expect(background !== b0).toBe(changes.background !== undefined);
        if (changes.background) expect(again.scene.backgroundSeed).not.toBe(spec.scene.backgroundSeed);
        else expect(again.scene.backgroundSeed).toBe(spec.scene.backgroundSeed);
        if (changes.jpegQuality !== undefined) {
          expect(changes.jpegQuality).toBeGreaterThanOrEqual(30);
          expect(changes.jpegQuality).toBeLessThanOrEqual(85);
        }
        seen.lighting += changes.lighting ? 1 : 0;
        seen.background += changes.background ? 1 : 0;
        seen.jpeg += changes.jpegQuality === undefined ? 0 : 1;
      }
      expect(makeRerender(spec, 11, i, 1)).not.toEqual(makeRerender(spec, 11, i, 2));
    }
    // 800 re-renders: each change at about its documented rate (0.4, 0.4, 0.5).
    expect(seen.lighting / 800).toBeGreaterThan(0.33);
    expect(seen.lighting / 800).toBeLessThan(0.47);
    expect(seen.background / 800).toBeGreaterThan(0.33);
    expect(seen.background / 800).toBeLessThan(0.47);
    expect(seen.jpeg / 800).toBeGreaterThan(0.43);
    expect(seen.jpeg / 800).toBeLessThan(0.57);
  });
});
