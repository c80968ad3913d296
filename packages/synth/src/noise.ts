/**
 * A bank of seeded noise textures (fractal value noise, greyscale PNG), made once per process and laid over
 * backgrounds and materials as SVG images. librsvg's `feTurbulence` gave the same looks but cost about 45 ms of
 * the 55 ms an image took; decoding a small embedded PNG costs about 1 ms.
 */
import sharp from 'sharp';
import { createRng } from './random.js';

/** Looks in the bank: anisotropic streaks (brushed metal), wood grain, mottling, concrete speckle, fine grain. */
export const NOISE_KINDS = {
  streak: { cellsX: 2, cellsY: 48, octaves: 2, size: 128 },
  grain: { cellsX: 3, cellsY: 20, octaves: 3, size: 128 },
  mottle: { cellsX: 6, cellsY: 6, octaves: 3, size: 128 },
  speckle: { cellsX: 10, cellsY: 10, octaves: 4, size: 128 },
  fine: { cellsX: 96, cellsY: 96, octaves: 1, size: 192 },
} as const;
export type NoiseKind = keyof typeof NOISE_KINDS;

/** Variants per kind; an image picks one by seed and places it at a seeded offset. */
export const NOISE_VARIANTS = 6;

export type NoiseBank = Record<NoiseKind, string[]>;

const smooth = (t: number): number => t * t * (3 - 2 * t);

/** Periodic fractal value noise, `[size, size]` stretched to 0..255. */
export function valueNoise(kind: NoiseKind, variant: number): Uint8Array {
  const { cellsX, cellsY, octaves, size } = NOISE_KINDS[kind];
  const rng = createRng('noise', kind, variant);
  const acc = new Float32Array(size * size);
  let amplitude = 1;
  for (let o = 0; o < octaves; o++) {
    const cx = cellsX << o;
    const cy = cellsY << o;
    const lattice = new Float32Array(cx * cy);
    for (let i = 0; i < lattice.length; i++) lattice[i] = rng.next();
    for (let y = 0; y < size; y++) {
      const fy = (y * cy) / size;
      const y0 = Math.floor(fy);
      const ty = smooth(fy - y0);
      const r0 = (y0 % cy) * cx;
      const r1 = ((y0 + 1) % cy) * cx;
      for (let x = 0; x < size; x++) {
        const fx = (x * cx) / size;
        const x0 = Math.floor(fx);
        const tx = smooth(fx - x0);
        const c0 = x0 % cx;
        const c1 = (x0 + 1) % cx;
        const top = (lattice[r0 + c0] as number) * (1 - tx) + (lattice[r0 + c1] as number) * tx;
        const bottom = (lattice[r1 + c0] as number) * (1 - tx) + (lattice[r1 + c1] as number) * tx;
        acc[y * size + x] = (acc[y * size + x] as number) + amplitude * (top * (1 - ty) + bottom * ty);
      }
    }
    amplitude *= 0.5;
  }
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of acc) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const out = new Uint8Array(size * size);
  const scale = hi > lo ? 255 / (hi - lo) : 0;
  for (let i = 0; i < out.length; i++) out[i] = Math.round(((acc[i] as number) - lo) * scale);
  return out;
}

let bank: Promise<NoiseBank> | undefined;

/** The process-wide bank of noise tiles as PNG data URIs (built on first call). */
export function noiseBank(): Promise<NoiseBank> {
  bank ??= (async () => {
    const entries = await Promise.all(
      (Object.keys(NOISE_KINDS) as NoiseKind[]).map(async (kind) => {
        const { size } = NOISE_KINDS[kind];
        const tiles = await Promise.all(
          Array.from({ length: NOISE_VARIANTS }, async (_, v) => {
            const png = await sharp(valueNoise(kind, v), { raw: { width: size, height: size, channels: 1 } })
              .png({ compressionLevel: 9 })
              .toBuffer();
            return `data:image/png;base64,${png.toString('base64')}`;
          }),
        );
        return [kind, tiles] as const;
      }),
    );
    return Object.fromEntries(entries) as NoiseBank;
  })();
  return bank;
}
