/**
 * What the catalog can show. Captions use these words verbatim, and the training code reads them from the
 * catalog's `catalog.json`, so renaming one is a data-format change.
 */

export const PARTS = ['bolt', 'nut', 'washer', 'gear', 'bracket', 'circuit board', 'bottle', 'tile'] as const;
export type Part = (typeof PARTS)[number];

export const COLORS = {
  red: '#c62f2a',
  orange: '#e27a1f',
  yellow: '#e5c51e',
  green: '#3c9a3f',
  blue: '#2f5fc4',
  purple: '#7b3fa6',
  black: '#26262a',
  white: '#ececea',
  grey: '#8a8d91',
  brown: '#7a5230',
} as const;
export type Color = keyof typeof COLORS;
export const COLOR_NAMES = Object.keys(COLORS) as Color[];

export const MATERIALS = [
  'anodised',
  'brushed',
  'galvanised',
  'painted',
  'plastic',
  'rubber',
  'ceramic',
  'glass',
] as const;
export type Material = (typeof MATERIALS)[number];

/** Materials each part is made of (a rubber bolt would be an odd product photo). */
export const PART_MATERIALS: Record<Part, readonly Material[]> = {
  bolt: ['anodised', 'brushed', 'galvanised', 'painted'],
  nut: ['anodised', 'brushed', 'galvanised', 'painted', 'plastic'],
  washer: ['brushed', 'galvanised', 'rubber', 'plastic', 'painted'],
  gear: ['anodised', 'brushed', 'plastic', 'painted', 'galvanised'],
  bracket: ['anodised', 'brushed', 'galvanised', 'painted'],
  'circuit board': ['painted', 'plastic', 'ceramic'],
  bottle: ['plastic', 'glass', 'ceramic', 'painted'],
  tile: ['ceramic', 'glass', 'rubber', 'painted', 'plastic'],
};

export const DEFECTS = ['none', 'scratch', 'crack', 'dent', 'stain', 'hole', 'missing piece', 'corrosion'] as const;
export type Defect = (typeof DEFECTS)[number];

export const POSITIONS = [
  'top left',
  'top',
  'top right',
  'left',
  'centre',
  'right',
  'bottom left',
  'bottom',
  'bottom right',
] as const;
export type Position = (typeof POSITIONS)[number];

export const BACKGROUNDS = ['white', 'grey', 'wood', 'conveyor', 'cutting mat', 'fabric', 'concrete'] as const;
export type Background = (typeof BACKGROUNDS)[number];

export const LIGHTING = ['soft', 'bright', 'dim', 'warm', 'cool'] as const;
export type Lighting = (typeof LIGHTING)[number];

/** The caption vocabulary, by attribute, as written to `catalog.json`. */
export const VOCABULARY = {
  part: PARTS,
  color: COLOR_NAMES,
  material: MATERIALS,
  defect: DEFECTS,
  position: POSITIONS,
} as const;
