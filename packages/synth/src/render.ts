/**
 * Renders an item spec as SVG (100 × 100 user units, rasterised by sharp at any pixel size). The scene is built in
 * layers: background, soft shadow, the part's body in its colour and material (texture, shading, highlight),
 * details, the defect, and a lighting overlay.
 */
import { NOISE_VARIANTS, type NoiseBank, type NoiseKind } from './noise.js';
import { createRng, type Rng } from './random.js';
import { circlePath, formatNumber as f, partShape, type Point2 } from './shapes.js';
import type { ItemSpec } from './spec.js';
import { COLORS, type Background, type Lighting, type Material } from './vocabulary.js';

type Rgb = [number, number, number];

function hexToRgb(hex: string): Rgb {
  const n = Number.parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

function rgbToHex([r, g, b]: Rgb): string {
  const c = (v: number): string =>
    Math.max(0, Math.min(255, Math.round(v)))
      .toString(16)
      .padStart(2, '0');
  return `#${c(r)}${c(g)}${c(b)}`;
}

function mix(a: string, b: string, t: number): string {
  const x = hexToRgb(a);
  const y = hexToRgb(b);
  return rgbToHex([x[0] + (y[0] - x[0]) * t, x[1] + (y[1] - x[1]) * t, x[2] + (y[2] - x[2]) * t]);
}

interface MaterialLook {
  /** How far the base colour is pulled toward grey metal, black or white. */
  toward?: [string, number];
  /** Kind and opacity of the grey noise laid over the body. */
  noise?: [NoiseKind, number];
  /** Opacity of the specular highlight. */
  gloss: number;
  /** Opacity of the body fill. */
  opacity: number;
}

const LOOKS: Record<Material, MaterialLook> = {
  anodised: { noise: ['fine', 0.07], gloss: 0.28, opacity: 1 },
  brushed: { toward: ['#b9bcc0', 0.35], noise: ['streak', 0.38], gloss: 0.2, opacity: 1 },
  galvanised: { toward: ['#a4a8ab', 0.45], noise: ['mottle', 0.36], gloss: 0.12, opacity: 1 },
  painted: { noise: ['fine', 0.09], gloss: 0.1, opacity: 1 },
  plastic: { gloss: 0.5, opacity: 1 },
  rubber: { toward: ['#1c1c1c', 0.45], noise: ['fine', 0.2], gloss: 0, opacity: 1 },
  ceramic: { toward: ['#ffffff', 0.12], noise: ['mottle', 0.06], gloss: 0.55, opacity: 1 },
  glass: { toward: ['#dfeff5', 0.25], gloss: 0.65, opacity: 0.62 },
};

/**
 * A greyscale noise tile from the bank laid over the square `[x0, x0 + 100]²` at a seeded offset. The tiles are
 * periodic, so any offset tiles seamlessly; 130 units of tile cover the square whatever the offset.
 */
function noiseImage(bank: NoiseBank, kind: NoiseKind, seed: number, opacity: number, x0: number): string {
  const rng = createRng(seed, 'noise', kind);
  const href = bank[kind][rng.int(NOISE_VARIANTS)] as string;
  const x = x0 - rng.range(0, 30);
  const y = x0 - rng.range(0, 30);
  return `<image href="${href}" x="${f(x)}" y="${f(y)}" width="130" height="130" preserveAspectRatio="none" opacity="${opacity}"/>`;
}

function backgroundLayer(kind: Background, seed: number, bank: NoiseBank): { defs: string; body: string } {
  const grey = (noise: NoiseKind, opacity: number): string => noiseImage(bank, noise, seed, opacity, 0);
  const full = (fill: string, extra = ''): string => `<rect width="100" height="100" fill="${fill}"${extra}/>`;
  const shift = seed % 10;
  switch (kind) {
    case 'white':
      return {
        defs: '<linearGradient id="bg" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="#f8f8f6"/><stop offset="1" stop-color="#d8d8d3"/></linearGradient>',
        body: full('url(#bg)'),
      };
    case 'grey':
      return {
        defs: '<linearGradient id="bg" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="#b0b2b4"/><stop offset="1" stop-color="#75777a"/></linearGradient>',
        body: full('url(#bg)'),
      };
    case 'wood':
      return { defs: '', body: full('#a87443') + grey('grain', 0.32) };
    case 'conveyor':
      return {
        defs:
          `<pattern id="bgp" width="9" height="100" patternUnits="userSpaceOnUse" x="${shift}">` +
          '<rect width="3.5" height="100" fill="#45484c"/></pattern>',
        body: full('#2c2e31') + full('url(#bgp)') + grey('fine', 0.16),
      };
    case 'cutting mat':
      return {
        defs:
          `<pattern id="bgp" width="10" height="10" patternUnits="userSpaceOnUse" x="${shift}" y="${(seed >> 4) % 10}">` +
          '<path d="M0 0H10M0 0V10" stroke="#6fb892" stroke-width="0.45" fill="none"/></pattern>',
        body: full('#2f6b4f') + full('url(#bgp)'),
      };
    case 'fabric':
      return {
        defs: '<pattern id="bgp" width="2" height="2" patternUnits="userSpaceOnUse"><path d="M0 0L2 2" stroke="#6d7d98" stroke-width="0.5"/></pattern>',
        body: full('#56647c') + full('url(#bgp)') + grey('mottle', 0.28),
      };
    case 'concrete':
      return { defs: '', body: full('#9b9990') + grey('speckle', 0.45) };
  }
}

function lightingLayer(kind: Lighting, angle: number): { defs: string; body: string } {
  const rad = (angle * Math.PI) / 180;
  const x = 0.5 + 0.5 * Math.cos(rad);
  const y = 0.5 + 0.5 * Math.sin(rad);
  const strength = kind === 'soft' ? 0.12 : kind === 'bright' ? 0.2 : 0.16;
  const defs =
    `<linearGradient id="lt" x1="${f(x)}" y1="${f(y)}" x2="${f(1 - x)}" y2="${f(1 - y)}">` +
    `<stop offset="0" stop-color="#fff" stop-opacity="${strength}"/>` +
    `<stop offset="1" stop-color="#000" stop-opacity="${strength}"/></linearGradient>`;
  const wash: Record<Lighting, string> = {
    soft: '',
    bright: '<rect width="100" height="100" fill="#fff" opacity="0.14"/>',
    dim: '<rect width="100" height="100" fill="#000" opacity="0.32"/>',
    warm: '<rect width="100" height="100" fill="#ff9330" opacity="0.15"/>',
    cool: '<rect width="100" height="100" fill="#3a78ff" opacity="0.13"/>',
  };
  return { defs, body: '<rect width="100" height="100" fill="url(#lt)"/>' + wash[kind] };
}

function blob(rng: Rng, c: Point2, r0: number, r1: number, points = 10): string {
  const pts: Point2[] = [];
  const phase = rng.range(0, Math.PI * 2);
  for (let i = 0; i < points; i++) {
    const a = phase + (2 * Math.PI * i) / points;
    const r = rng.range(r0, r1);
    pts.push({ x: c.x + r * Math.cos(a), y: c.y + r * Math.sin(a) });
  }
  // Closed Catmull-Rom through the points, as quadratic midpoints: smooth and cheap.
  const mid = (a: Point2, b: Point2): Point2 => ({ x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 });
  const last = pts[points - 1] as Point2;
  const first = pts[0] as Point2;
  const start = mid(last, first);
  let d = `M${f(start.x)} ${f(start.y)}`;
  for (let i = 0; i < points; i++) {
    const p = pts[i] as Point2;
    const m = mid(p, pts[(i + 1) % points] as Point2);
    d += `Q${f(p.x)} ${f(p.y)} ${f(m.x)} ${f(m.y)}`;
  }
  return d + 'Z';
}

interface DefectLayers {
  defs: string;
  /** Drawn over the body, clipped to it. */
  over: string;
  /** Black shapes cut out of the body (holes and missing pieces show the background through). */
  cut: string;
}

function defectLayers(spec: ItemSpec, lightLocal: number, bank: NoiseBank): DefectLayers {
  const { defect, position, part } = spec.labels;
  if (defect === 'none' || position === null) return { defs: '', over: '', cut: '' };
  const anchor = partShape(part).anchors[position];
  if (!anchor) throw new RangeError(`a ${part} has no ${position} position for a defect`);
  const rng = createRng(spec.defectSeed, 'defect');
  const c = { x: anchor.x + rng.range(-2, 2), y: anchor.y + rng.range(-2, 2) };
  const angle = rng.range(0, Math.PI);
  const dir = { x: Math.cos(angle), y: Math.sin(angle) };
  const normal = { x: -dir.y, y: dir.x };
  switch (defect) {
    case 'scratch': {
      let over = '';
      const lines = 1 + rng.int(3);
      for (let i = 0; i < lines; i++) {
        const len = rng.range(14, 22);
        const off = (i - (lines - 1) / 2) * rng.range(1.6, 2.6);
        const p0 = { x: c.x - (dir.x * len) / 2 + normal.x * off, y: c.y - (dir.y * len) / 2 + normal.y * off };
        const p1 = { x: c.x + (dir.x * len) / 2 + normal.x * off, y: c.y + (dir.y * len) / 2 + normal.y * off };
        const bend = rng.range(-2, 2);
        const q = { x: c.x + normal.x * (off + bend), y: c.y + normal.y * (off + bend) };
        const d = `M${f(p0.x)} ${f(p0.y)}Q${f(q.x)} ${f(q.y)} ${f(p1.x)} ${f(p1.y)}`;
        over +=
          `<path d="${d}" stroke="#000" stroke-width="0.6" opacity="0.35" fill="none" transform="translate(0.45 0.45)"/>` +
          `<path d="${d}" stroke="#f6f6f2" stroke-width="${f(rng.range(0.9, 1.3))}" opacity="0.9" fill="none" stroke-linecap="round"/>`;
      }
      return { defs: '', over, cut: '' };
    }
    case 'crack': {
      const len = rng.range(16, 24);
      const segs = 6;
      const pts: Point2[] = [];
      for (let i = 0; i <= segs; i++) {
        const t = i / segs - 0.5;
        const j = i === 0 || i === segs ? 0 : rng.range(-2.6, 2.6);
        pts.push({ x: c.x + dir.x * len * t + normal.x * j, y: c.y + dir.y * len * t + normal.y * j });
      }
      const d = pts.map((p, i) => `${i ? 'L' : 'M'}${f(p.x)} ${f(p.y)}`).join('');
      const b0 = pts[3] as Point2;
      const ba = angle + (rng.chance(0.5) ? 1 : -1) * rng.range(0.6, 1.1);
      const b1 = { x: b0.x + Math.cos(ba) * 5 + rng.range(-1, 1), y: b0.y + Math.sin(ba) * 5 + rng.range(-1, 1) };
      const b2 = { x: b1.x + Math.cos(ba) * 4, y: b1.y + Math.sin(ba) * 4 };
      return {
        defs: '',
        over:
          `<path d="${d}" stroke="#0d0d0d" stroke-width="${f(rng.range(1.1, 1.5))}" fill="none" opacity="0.92" stroke-linejoin="round"/>` +
          `<path d="M${f(b0.x)} ${f(b0.y)}L${f(b1.x)} ${f(b1.y)}L${f(b2.x)} ${f(b2.y)}" stroke="#0d0d0d" stroke-width="0.7" fill="none" opacity="0.85"/>`,
        cut: '',
      };
    }
    case 'dent': {
      const rx = rng.range(7, 9.5);
      const ry = rng.range(5, 7);
      const deg = (angle * 180) / Math.PI;
      const hx = c.x + Math.cos(lightLocal) * rx * 0.45;
      const hy = c.y + Math.sin(lightLocal) * ry * 0.45;
      return {
        defs:
          '<radialGradient id="dent"><stop offset="0" stop-color="#000" stop-opacity="0.7"/>' +
          '<stop offset="0.7" stop-color="#000" stop-opacity="0.3"/><stop offset="1" stop-color="#000" stop-opacity="0"/></radialGradient>',
        over:
          `<ellipse cx="${f(c.x)}" cy="${f(c.y)}" rx="${f(rx)}" ry="${f(ry)}" fill="url(#dent)" transform="rotate(${f(deg)} ${f(c.x)} ${f(c.y)})"/>` +
          `<ellipse cx="${f(hx)}" cy="${f(hy)}" rx="${f(rx * 0.55)}" ry="${f(ry * 0.35)}" fill="#fff" opacity="0.5" transform="rotate(${f(deg)} ${f(hx)} ${f(hy)})"/>`,
        cut: '',
      };
    }
    case 'stain': {
      const color = rng.pick(['#4a3b22', '#2b2b2b', '#6b5a2a', '#3d4a2a']);
      return {
        defs: '',
        over:
          `<path d="${blob(rng, c, 5.5, 9)}" fill="${color}" opacity="${f(rng.range(0.55, 0.72))}"/>` +
          `<path d="${blob(rng, c, 2.5, 4.5)}" fill="${color}" opacity="0.5"/>`,
        cut: '',
      };
    }
    case 'hole': {
      const r = rng.range(3.8, 5.4);
      return {
        defs: '',
        over: `<circle cx="${f(c.x)}" cy="${f(c.y)}" r="${f(r + 0.7)}" fill="none" stroke="#111" stroke-width="1.3" opacity="0.6"/>`,
        cut: `<path d="${circlePath(r, c.x, c.y)}" fill="#000"/>`,
      };
    }
    case 'missing piece': {
      // Push the bite outward from the part's centre so it takes a chunk of the rim, not a hole in the middle.
      const norm = Math.hypot(anchor.x, anchor.y) || 1;
      const centre = { x: c.x + (anchor.x / norm) * 11, y: c.y + (anchor.y / norm) * 11 };
      const d = blob(rng, centre, 9, 13, 7);
      return {
        defs: '',
        over: `<path d="${d}" fill="none" stroke="#161616" stroke-width="1.1" opacity="0.7"/>`,
        cut: `<path d="${d}" fill="#000"/>`,
      };
    }
    case 'corrosion': {
      const d = blob(rng, c, 6.5, 11, 12);
      return {
        defs: `<clipPath id="rustc"><path d="${d}"/></clipPath>`,
        over:
          `<g clip-path="url(#rustc)"><path d="${d}" fill="#8b4513" opacity="0.8"/>` +
          noiseImage(bank, 'speckle', spec.defectSeed, 0.5, -50) +
          `<path d="${d}" fill="#c2611c" opacity="0.35"/></g>`,
        cut: '',
      };
    }
  }
}

/** The SVG document of one item, `size` × `size` pixels. */
export function renderSvg(spec: ItemSpec, size: number, bank: NoiseBank): string {
  const { labels, pose, scene } = spec;
  const shape = partShape(labels.part);
  const look = LOOKS[labels.material];
  let base = mix(COLORS[labels.color], scene.tint > 0 ? '#ffffff' : '#000000', Math.abs(scene.tint) * 0.14);
  if (look.toward) base = mix(base, look.toward[0], look.toward[1]);
  const dark = mix(base, '#000000', 0.45);
  const light = mix(base, '#ffffff', 0.5);

  const lightRad = (scene.lightAngle * Math.PI) / 180;
  const lightLocal = lightRad - (pose.rotation * Math.PI) / 180;
  const lx = Math.cos(lightLocal);
  const ly = Math.sin(lightLocal);
  const transform = `translate(${f(50 + pose.dx)} ${f(50 + pose.dy)}) rotate(${f(pose.rotation)}) scale(${f(pose.scale)})`;
  // The shadow falls away from the light, in image space.
  const sx = -Math.cos(lightRad) * 2.6;
  const sy = -Math.sin(lightRad) * 2.6 + 1.2;

  const bg = backgroundLayer(labels.background, scene.backgroundSeed, bank);
  const lighting = lightingLayer(labels.lighting, scene.lightAngle);
  const defect = defectLayers(spec, lightLocal, bank);
  const outline = shape.outline;

  let defs =
    bg.defs +
    lighting.defs +
    defect.defs +
    `<clipPath id="body"><path d="${outline}" clip-rule="evenodd"/></clipPath>` +
    `<linearGradient id="shade" gradientUnits="userSpaceOnUse" x1="${f(lx * 42)}" y1="${f(ly * 42)}" x2="${f(-lx * 42)}" y2="${f(-ly * 42)}">` +
    '<stop offset="0" stop-color="#fff" stop-opacity="0.28"/><stop offset="0.55" stop-color="#000" stop-opacity="0"/>' +
    '<stop offset="1" stop-color="#000" stop-opacity="0.32"/></linearGradient>' +
    '<radialGradient id="gloss"><stop offset="0" stop-color="#fff" stop-opacity="1"/><stop offset="1" stop-color="#fff" stop-opacity="0"/></radialGradient>';
  if (defect.cut) {
    defs +=
      '<mask id="cut" maskUnits="userSpaceOnUse" x="-60" y="-60" width="120" height="120">' +
      `<rect x="-60" y="-60" width="120" height="120" fill="#fff"/>${defect.cut}</mask>`;
  }
  const mask = defect.cut ? ' mask="url(#cut)"' : '';
  const gx = lx * 16;
  const gy = ly * 16;
  const body =
    `<g transform="translate(${f(sx)} ${f(sy)})"><g transform="${transform}"${mask}>` +
    // A soft shadow from three widening outlines: librsvg's Gaussian blur cost a third of the render.
    [4.6, 2.6, 0.8]
      .map(
        (w) =>
          `<path d="${outline}" fill-rule="evenodd" fill="#000" stroke="#000" stroke-width="${w}" stroke-linejoin="round" opacity="0.14"/>`,
      )
      .join('') +
    '</g></g>' +
    `<g transform="${transform}"${mask}>` +
    `<path d="${outline}" fill-rule="evenodd" fill="${base}" opacity="${look.opacity}"/>` +
    `<g clip-path="url(#body)">` +
    (look.noise ? noiseImage(bank, look.noise[0], scene.textureSeed, look.noise[1], -50) : '') +
    '<rect x="-50" y="-50" width="100" height="100" fill="url(#shade)"/>' +
    shape.details(dark, light) +
    (look.gloss > 0
      ? `<ellipse cx="${f(gx)}" cy="${f(gy)}" rx="17" ry="11" fill="url(#gloss)" opacity="${look.gloss}" transform="rotate(${f((lightLocal * 180) / Math.PI + 90)} ${f(gx)} ${f(gy)})"/>`
      : '') +
    defect.over +
    '</g>' +
    `<path d="${outline}" fill-rule="evenodd" fill="none" stroke="${dark}" stroke-width="0.9"/>` +
    '</g>';

  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}" viewBox="0 0 100 100">` +
    `<defs>${defs}</defs>${bg.body}${body}${lighting.body}</svg>`
  );
}
