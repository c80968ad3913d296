/**
 * Part geometry in a local frame of ±50 units around the part's centre (the image is 100 × 100 units). Each part
 * has an outline (holes cut with the even-odd rule), fine details drawn over its body, and one anchor per defect
 * position that lies on solid material; positions with no anchor cannot carry a defect on that part.
 */
import type { Part, Position } from './vocabulary.js';

export interface Point2 {
  x: number;
  y: number;
}

export interface PartShape {
  /** SVG path data of the body; holes are sub-paths, filled with `fill-rule="evenodd"`. */
  outline: string;
  /** Extra strokes and shapes in the body's shades: `dark` and `light` are CSS colours. */
  details(dark: string, light: string): string;
  /** Where a defect at each position sits; only positions on material are present. */
  anchors: Partial<Record<Position, Point2>>;
}

const f = (n: number): string => (Math.round(n * 100) / 100).toString();

function polygon(points: readonly Point2[]): string {
  return points.map((p, i) => `${i === 0 ? 'M' : 'L'}${f(p.x)} ${f(p.y)}`).join('') + 'Z';
}

function regular(n: number, r: number, phase = 0, cx = 0, cy = 0): Point2[] {
  return Array.from({ length: n }, (_, i) => {
    const a = phase + (2 * Math.PI * i) / n;
    return { x: cx + r * Math.cos(a), y: cy + r * Math.sin(a) };
  });
}

function circle(r: number, cx = 0, cy = 0): string {
  return `M${f(cx - r)} ${f(cy)}a${f(r)} ${f(r)} 0 1 0 ${f(2 * r)} 0a${f(r)} ${f(r)} 0 1 0 ${f(-2 * r)} 0Z`;
}

function ringAnchors(r: number): Partial<Record<Position, Point2>> {
  const d = r / Math.SQRT2;
  return {
    'top left': { x: -d, y: -d },
    top: { x: 0, y: -r },
    'top right': { x: d, y: -d },
    left: { x: -r, y: 0 },
    right: { x: r, y: 0 },
    'bottom left': { x: -d, y: d },
    bottom: { x: 0, y: r },
    'bottom right': { x: d, y: d },
  };
}

function gridAnchors(dx: number, dy: number, cy = 0): Partial<Record<Position, Point2>> {
  return {
    'top left': { x: -dx, y: cy - dy },
    top: { x: 0, y: cy - dy },
    'top right': { x: dx, y: cy - dy },
    left: { x: -dx, y: cy },
    centre: { x: 0, y: cy },
    right: { x: dx, y: cy },
    'bottom left': { x: -dx, y: cy + dy },
    bottom: { x: 0, y: cy + dy },
    'bottom right': { x: dx, y: cy + dy },
  };
}

function gearOutline(teeth: number, rRoot: number, rTip: number): string {
  const pts: Point2[] = [];
  for (let i = 0; i < teeth; i++) {
    const a0 = (2 * Math.PI * i) / teeth;
    const step = (2 * Math.PI) / teeth;
    for (const [t, r] of [
      [0, rRoot],
      [0.18, rTip],
      [0.5, rTip],
      [0.68, rRoot],
    ] as const) {
      const a = a0 + t * step;
      pts.push({ x: r * Math.cos(a), y: r * Math.sin(a) });
    }
  }
  return polygon(pts);
}

const hexHead = polygon(regular(6, 25, 0, 0, -33).map((p) => ({ x: p.x, y: -33 + (p.y + 33) * 0.48 })));

const SHAPES: Record<Part, PartShape> = {
  bolt: {
    outline: `${hexHead}M-11 -22L11 -22L11 40Q0 46 -11 40Z`,
    details: (dark, light) =>
      Array.from({ length: 9 }, (_, i) => {
        const y = -12 + i * 6;
        return `<path d="M-11 ${y}L11 ${y + 3}" stroke="${dark}" stroke-width="1.1" opacity="0.55"/>`;
      }).join('') + `<path d="M-22 -33L22 -33" stroke="${light}" stroke-width="1" opacity="0.5"/>`,
    anchors: {
      'top left': { x: -13, y: -34 },
      top: { x: 0, y: -36 },
      'top right': { x: 13, y: -34 },
      centre: { x: 0, y: 6 },
      bottom: { x: 0, y: 30 },
    },
  },
  nut: {
    outline: polygon(regular(6, 41, Math.PI / 6)) + circle(15),
    details: (dark, light) =>
      `<circle r="19" fill="none" stroke="${dark}" stroke-width="2.2" opacity="0.5"/>` +
      `<path fill="none" stroke="${light}" stroke-width="0.9" opacity="0.45" d="${polygon(regular(6, 37, Math.PI / 6))}"/>`,
    anchors: ringAnchors(27),
  },
  washer: {
    outline: circle(40) + circle(17),
    details: (dark, light) =>
      `<circle r="38" fill="none" stroke="${light}" stroke-width="1.2" opacity="0.45"/>` +
      `<circle r="19" fill="none" stroke="${dark}" stroke-width="1.5" opacity="0.45"/>`,
    anchors: ringAnchors(28.5),
  },
  gear: {
    outline: gearOutline(12, 33, 42) + circle(9),
    details: (dark, light) =>
      `<circle r="27" fill="none" stroke="${dark}" stroke-width="1.2" opacity="0.45"/>` +
      `<circle r="13" fill="none" stroke="${light}" stroke-width="1.4" opacity="0.5"/>` +
      `<rect x="-2.5" y="-13.5" width="5" height="5" fill="${dark}" opacity="0.6"/>`,
    anchors: ringAnchors(21),
  },
  bracket: {
    outline:
      'M-36 -30L36 -30L44 -22L44 22L36 30L-36 30L-44 22L-44 -22Z' +
      circle(4.5, -34, -20) +
      circle(4.5, 34, -20) +
      circle(4.5, -34, 20) +
      circle(4.5, 34, 20),
    details: (dark, light) =>
      `<path d="M-44 -4L44 -4" stroke="${light}" stroke-width="1.6" opacity="0.55"/>` +
      `<path d="M-44 -1L44 -1" stroke="${dark}" stroke-width="1.4" opacity="0.5"/>`,
    anchors: gridAnchors(21, 17),
  },
  'circuit board': {
    outline: 'M-43 -31L43 -31L43 31L-43 31Z',
    details: (dark, light) =>
      `<g stroke="#c8a24a" stroke-width="1" fill="none" opacity="0.9">` +
      '<path d="M-38 -24H-14V-8H8"/><path d="M-38 8H-20V24H30"/><path d="M20 -26V-12H38"/><path d="M-6 14H14V4H36"/></g>' +
      `<rect x="-12" y="-14" width="22" height="14" fill="#1d1d20" rx="1"/>` +
      `<rect x="18" y="8" width="14" height="9" fill="#1d1d20" rx="1"/>` +
      `<g fill="#d9c27a">${[-36, -28, -20, 26, 34].map((x) => `<circle cx="${x}" cy="-27" r="1.6"/>`).join('')}</g>` +
      `<rect x="-43" y="-31" width="86" height="62" fill="none" stroke="${light}" stroke-width="0.8" opacity="0.5"/>` +
      `<path d="M-43 31L43 31" stroke="${dark}" stroke-width="1" opacity="0.5"/>`,
    anchors: gridAnchors(29, 20),
  },
  bottle: {
    outline: 'M-8 -44L8 -44L8 -28Q22 -24 22 -10L22 38Q22 44 16 44L-16 44Q-22 44 -22 38L-22 -10Q-22 -24 -8 -28Z',
    details: (dark, light) =>
      `<rect x="-9.5" y="-47" width="19" height="7" rx="1.5" fill="${dark}" opacity="0.85"/>` +
      `<rect x="-22" y="2" width="44" height="18" fill="${light}" opacity="0.35"/>` +
      `<path d="M-14 -14Q-16 10 -14 36" stroke="${light}" stroke-width="2.5" fill="none" opacity="0.45"/>`,
    anchors: {
      'top left': { x: -12, y: -10 },
      top: { x: 0, y: -24 },
      'top right': { x: 12, y: -10 },
      left: { x: -12, y: 12 },
      centre: { x: 0, y: 12 },
      right: { x: 12, y: 12 },
      'bottom left': { x: -12, y: 33 },
      bottom: { x: 0, y: 33 },
      'bottom right': { x: 12, y: 33 },
    },
  },
  tile: {
    outline: 'M-37 -40L37 -40Q40 -40 40 -37L40 37Q40 40 37 40L-37 40Q-40 40 -40 37L-40 -37Q-40 -40 -37 -40Z',
    details: (dark, light) =>
      `<path d="M-37 -36L37 -36" stroke="${light}" stroke-width="2" opacity="0.5"/>` +
      `<path d="M-36 -36L-36 37" stroke="${light}" stroke-width="1.5" opacity="0.4"/>` +
      `<path d="M-37 37L37 37L37 -36" stroke="${dark}" stroke-width="2" fill="none" opacity="0.45"/>`,
    anchors: gridAnchors(25, 25),
  },
};

/** The geometry of one part type. */
export function partShape(part: Part): PartShape {
  return SHAPES[part];
}

/** Positions where a defect can sit on this part. */
export function defectPositions(part: Part): Position[] {
  return Object.keys(SHAPES[part].anchors) as Position[];
}

export { f as formatNumber, circle as circlePath };
