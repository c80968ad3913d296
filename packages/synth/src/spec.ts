/**
 * What one catalog image shows, drawn from the seed: labels (the words of its caption plus scene attributes),
 * pose, and the seeds of its textures and defect shape. Edited twins are derived from a spec by changing exactly
 * one attribute and keeping every other draw.
 */
import { createRng, type Rng } from './random.js';
import { defectPositions } from './shapes.js';
import {
  BACKGROUNDS,
  COLOR_NAMES,
  DEFECTS,
  LIGHTING,
  PART_MATERIALS,
  PARTS,
  type Background,
  type Color,
  type Defect,
  type Lighting,
  type Material,
  type Part,
  type Position,
} from './vocabulary.js';

/** Categorical labels of an image; `position` is null exactly when `defect` is `none`. */
export interface ItemLabels {
  part: Part;
  color: Color;
  material: Material;
  defect: Defect;
  position: Position | null;
  background: Background;
  lighting: Lighting;
}

/** Continuous pose of the part in the frame. */
export interface Pose {
  /** Degrees, within ±18 so that position words stay true in image space. */
  rotation: number;
  /** Size relative to the nominal part. */
  scale: number;
  /** Offset of the part's centre from the image centre, in units of 1/100 of the image side. */
  dx: number;
  dy: number;
}

/** Everything needed to render one image. */
export interface ItemSpec {
  labels: ItemLabels;
  pose: Pose;
  /** Seeds and continuous draws of the scene: the same in an image and its twin. */
  scene: {
    textureSeed: number;
    backgroundSeed: number;
    /** Direction the light comes from, degrees. */
    lightAngle: number;
    /** Shade jitter of the body colour, in [-1, 1]. */
    tint: number;
  };
  /** Shape of the defect; kept when a twin moves or removes it, drawn afresh when a twin adds one. */
  defectSeed: number;
}

/** The one attribute a twin changes, and how a person would ask for it. */
export interface TwinEdit {
  type: 'add-defect' | 'remove-defect' | 'move-defect' | 'change-color';
  attribute: 'defect' | 'position' | 'color';
  from: string;
  to: string;
  instruction: string;
}

/** Share of images with no defect. */
const P_NO_DEFECT = 0.25;

function drawDefect(part: Part, rng: Rng): { defect: Defect; position: Position | null } {
  if (rng.chance(P_NO_DEFECT)) return { defect: 'none', position: null };
  const defect = rng.pick(DEFECTS.slice(1));
  return { defect, position: rng.pick(positionsFor(part, defect)) };
}

/** Positions a defect type can take on a part: a missing piece bites the rim, never the middle. */
export function positionsFor(part: Part, defect: Defect): Position[] {
  const all = defectPositions(part);
  return defect === 'missing piece' ? all.filter((p) => p !== 'centre') : all;
}

/** The spec of image `index` of the catalog with seed `seed`. */
export function sampleSpec(seed: number, index: number): ItemSpec {
  const rng = createRng(seed, index, 'spec');
  const part = rng.pick(PARTS);
  const labels: ItemLabels = {
    part,
    color: rng.pick(COLOR_NAMES),
    material: rng.pick(PART_MATERIALS[part]),
    ...drawDefect(part, rng),
    background: rng.pick(BACKGROUNDS),
    lighting: rng.pick(LIGHTING),
  };
  return {
    labels,
    pose: {
      rotation: rng.range(-18, 18),
      scale: rng.range(0.78, 1.08),
      dx: rng.range(-7, 7),
      dy: rng.range(-7, 7),
    },
    scene: {
      textureSeed: rng.int(100000),
      backgroundSeed: rng.int(100000),
      lightAngle: rng.range(0, 360),
      tint: rng.range(-1, 1),
    },
    defectSeed: rng.int(100000),
  };
}

/** What changed when an item was photographed again (see {@link makeRerender}). */
export interface RerenderChanges {
  /** Always: the part lies a little differently and the light comes from a slightly different direction. */
  poseJitter: true;
  /** A new lighting condition, when the label changed. */
  lighting?: { from: Lighting; to: Lighting };
  /** A new background, when the label changed (a new surface: its texture is drawn afresh). */
  background?: { from: Background; to: Background };
  /** Saved as a JPEG of this quality (30–85), when set; otherwise in the catalog's format. */
  jpegQuality?: number;
}

/** Largest pose change of a re-render: the same part, put down again. */
const RERENDER_JITTER = { rotation: 5, scale: 0.05, shift: 2.5, lightAngle: 35 } as const;

/**
 * Re-render `k` (1, 2, …) of `spec`: the same item — part, colour, material, defect and its shape, position and
 * surface texture — photographed again. The pose and the light direction are always jittered (within
 * {@link RERENDER_JITTER}, and the pose stays inside the catalog's own ranges); each re-render also, independently,
 * may get a new lighting condition (p = 0.4), a new background (p = 0.4) or JPEG compression at a lower quality
 * (p = 0.5). Ground truth for "the same part photographed again", as opposed to a distinct item or an edited twin.
 */
export function makeRerender(
  spec: ItemSpec,
  seed: number,
  index: number,
  k: number,
): { spec: ItemSpec; changes: RerenderChanges } {
  const rng = createRng(seed, index, 'rerender', k);
  const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));
  const j = RERENDER_JITTER;
  const pose: Pose = {
    rotation: clamp(spec.pose.rotation + rng.range(-j.rotation, j.rotation), -18, 18),
    scale: clamp(spec.pose.scale * (1 + rng.range(-j.scale, j.scale)), 0.78, 1.08),
    dx: clamp(spec.pose.dx + rng.range(-j.shift, j.shift), -7, 7),
    dy: clamp(spec.pose.dy + rng.range(-j.shift, j.shift), -7, 7),
  };
  const labels: ItemLabels = { ...spec.labels };
  const scene = {
    ...spec.scene,
    lightAngle: (spec.scene.lightAngle + rng.range(-j.lightAngle, j.lightAngle) + 360) % 360,
  };
  const changes: RerenderChanges = { poseJitter: true };
  if (rng.chance(0.4)) {
    const to = rng.pick(LIGHTING.filter((l) => l !== labels.lighting));
    changes.lighting = { from: labels.lighting, to };
    labels.lighting = to;
  }
  if (rng.chance(0.4)) {
    const to = rng.pick(BACKGROUNDS.filter((b) => b !== labels.background));
    changes.background = { from: labels.background, to };
    labels.background = to;
    scene.backgroundSeed = rng.int(100000);
  }
  if (rng.chance(0.5)) changes.jpegQuality = 30 + rng.int(56);
  return { spec: { ...spec, labels, pose, scene }, changes };
}

function article(word: string): string {
  return /^[aeiou]/.test(word) ? 'an' : 'a';
}

/** "a crack", "a missing piece", but "corrosion" (a mass noun takes no article). */
export function defectPhrase(defect: Defect): string {
  return defect === 'corrosion' ? defect : `${article(defect)} ${defect}`;
}

/** The caption of an image: "a red anodised bracket with a crack at the top left" or "… with no defects". */
export function captionOf(labels: ItemLabels): string {
  const head = `${article(labels.color)} ${labels.color} ${labels.material} ${labels.part}`;
  if (labels.defect === 'none') return `${head} with no defects`;
  return `${head} with ${defectPhrase(labels.defect)} at the ${labels.position ?? 'centre'}`;
}

/**
 * An edited twin of `spec`: exactly one attribute changes (a defect added, removed or moved, or the colour
 * changed); pose, scene and the defect's shape are kept.
 */
export function makeTwin(spec: ItemSpec, seed: number, index: number): { spec: ItemSpec; edit: TwinEdit } {
  const rng = createRng(seed, index, 'twin');
  const { labels } = spec;
  const kinds: TwinEdit['type'][] =
    labels.defect === 'none' ? ['add-defect', 'change-color'] : ['remove-defect', 'move-defect', 'change-color'];
  const others = positionsFor(labels.part, labels.defect).filter((p) => p !== labels.position);
  const type = rng.pick(kinds.filter((k) => k !== 'move-defect' || others.length > 0));
  const twin: ItemSpec = { ...spec, labels: { ...labels }, scene: { ...spec.scene }, pose: { ...spec.pose } };
  switch (type) {
    case 'add-defect': {
      const defect = rng.pick(DEFECTS.slice(1));
      const position = rng.pick(positionsFor(labels.part, defect));
      twin.labels.defect = defect;
      twin.labels.position = position;
      twin.defectSeed = rng.int(100000);
      return {
        spec: twin,
        edit: {
          type,
          attribute: 'defect',
          from: 'none',
          to: defect,
          instruction: `add ${defectPhrase(defect)} at the ${position}`,
        },
      };
    }
    case 'remove-defect':
      twin.labels.defect = 'none';
      twin.labels.position = null;
      return {
        spec: twin,
        edit: {
          type,
          attribute: 'defect',
          from: labels.defect,
          to: 'none',
          instruction: `remove the ${labels.defect}`,
        },
      };
    case 'move-defect': {
      const position = rng.pick(others);
      twin.labels.position = position;
      return {
        spec: twin,
        edit: {
          type,
          attribute: 'position',
          from: labels.position ?? '',
          to: position,
          instruction: `move the ${labels.defect} to the ${position}`,
        },
      };
    }
    case 'change-color': {
      const color = rng.pick(COLOR_NAMES.filter((c) => c !== labels.color));
      twin.labels.color = color;
      return {
        spec: twin,
        edit: { type, attribute: 'color', from: labels.color, to: color, instruction: `make it ${color}` },
      };
    }
  }
}
