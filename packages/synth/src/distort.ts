/**
 * Photographic distortions of known severity — what makes an archive photo unusable: out of focus, motion-blurred,
 * noisy, compressed hard, over- or under-exposed, flat. Each kind maps a severity in [0, 1] to one parameter, scaled
 * to the image's shorter side where the parameter is a length, so a severity means the same at 256 px as in a
 * 4000 px photo. They are applied in a camera's order (exposure and contrast of the scene, then the lens and the
 * motion, then the sensor's noise, then the encoder's compression), and the quality of the result is a documented
 * monotone function of the severities ({@link qualityTarget}). The quality head is trained and evaluated on these
 * (`lookalike synth --distort`, `models/training/train_quality.py`, `npm run bench:quality-score`). With the
 * renderer, the only other sharp user beside `@lookalike/imaging`: these are synthetic data, not product images.
 */
import sharp from 'sharp';

/** Interleaved 8-bit RGB pixels. */
export interface RgbImage {
  /** `[H * W * 3]`, row-major. */
  data: Uint8Array;
  width: number;
  height: number;
}

/** The kinds of distortion, each with a severity in [0, 1]. */
export const DISTORTION_KINDS = [
  'blur',
  'motion',
  'noise',
  'jpeg',
  'overexposure',
  'underexposure',
  'contrast',
] as const;
export type DistortionKind = (typeof DISTORTION_KINDS)[number];

/** One distortion: its kind and how hard it is applied (0 = not at all, 1 = the hardest the product cares about). */
export interface Distortion {
  kind: DistortionKind;
  severity: number;
  /** Direction of a motion blur in degrees (0 = horizontal); ignored by the other kinds. */
  angle?: number;
}

/** The parameter each kind's severity sets, for documentation and reports. */
export function distortionParameter(d: Distortion, shortSide: number): { name: string; value: number } {
  const s = clampSeverity(d.severity);
  switch (d.kind) {
    case 'blur':
      return { name: 'gaussian sigma (px)', value: 0.3 + s * 0.03 * shortSide };
    case 'motion':
      return { name: 'blur length (px)', value: 1 + 2 * Math.round((s * 0.08 * shortSide) / 2) };
    case 'noise':
      return { name: 'noise std (of 255)', value: s * 64 };
    case 'jpeg':
      return { name: 'JPEG quality', value: Math.round(5 + 90 * (1 - s) ** 2) };
    case 'overexposure':
      return { name: 'exposure gain', value: 2 ** (2.5 * s) };
    case 'underexposure':
      return { name: 'exposure gain', value: 2 ** (-2.5 * s) };
    case 'contrast':
      return { name: 'contrast factor', value: 1 - 0.85 * s };
  }
}

/**
 * The quality of an image after `distortions`: Π (1 − severity), in [0, 1]; 1 for an undistorted image, 0 when one
 * distortion is at its hardest. Monotone (never rises when a severity does) and symmetric in the kinds: two
 * distortions at 0.3 (0.49) are worse than one at 0.5 (0.5).
 */
export function qualityTarget(distortions: readonly Distortion[]): number {
  return distortions.reduce((q, d) => q * (1 - clampSeverity(d.severity)), 1);
}

/** The order kinds are applied in: the scene's light, the lens and the motion, the sensor, the encoder. */
const ORDER: Record<DistortionKind, number> = {
  overexposure: 0,
  underexposure: 0,
  contrast: 1,
  blur: 2,
  motion: 3,
  noise: 4,
  jpeg: 5,
};

function clampSeverity(s: number): number {
  if (!Number.isFinite(s)) throw new RangeError(`distortion severity must be a number in [0, 1]; got ${s}`);
  return Math.min(1, Math.max(0, s));
}

/** A normally distributed draw from a uniform source (Box–Muller). */
function gaussian(random: () => number): number {
  const u = Math.max(random(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

/** A normalised line kernel of odd side `length` at `angle` degrees, for a linear motion blur. */
function motionKernel(length: number, angle: number): number[] {
  const k = new Array<number>(length * length).fill(0);
  const c = (length - 1) / 2;
  const dx = Math.cos((angle * Math.PI) / 180);
  const dy = Math.sin((angle * Math.PI) / 180);
  // Sample the line densely and splat each sample bilinearly onto the grid.
  const samples = length * 4;
  for (let i = 0; i < samples; i++) {
    const t = (i / (samples - 1) - 0.5) * (length - 1);
    const x = c + t * dx;
    const y = c + t * dy;
    const x0 = Math.floor(x);
    const y0 = Math.floor(y);
    for (const [xx, wx] of [
      [x0, 1 - (x - x0)],
      [x0 + 1, x - x0],
    ] as const)
      for (const [yy, wy] of [
        [y0, 1 - (y - y0)],
        [y0 + 1, y - y0],
      ] as const)
        if (xx >= 0 && xx < length && yy >= 0 && yy < length) k[yy * length + xx]! += wx * wy;
  }
  const sum = k.reduce((a, b) => a + b, 0);
  return k.map((v) => v / sum);
}

const clampByte = (v: number): number => (v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v));

/**
 * Applies `distortions` (at most one of each kind) to an RGB image and returns the distorted image, the same size.
 * `random` draws the noise; pass a seeded source to make the result reproducible.
 */
export async function distortImage(
  image: RgbImage,
  distortions: readonly Distortion[],
  random: () => number,
): Promise<RgbImage> {
  const kinds = new Set<DistortionKind>();
  for (const d of distortions) {
    if (!DISTORTION_KINDS.includes(d.kind)) throw new RangeError(`unknown distortion kind ${String(d.kind)}`);
    if (kinds.has(d.kind)) throw new RangeError(`distortion ${d.kind} is given twice`);
    kinds.add(d.kind);
    clampSeverity(d.severity);
  }
  const { width, height } = image;
  const short = Math.min(width, height);
  let data = Uint8Array.from(image.data);
  const raw = { raw: { width, height, channels: 3 as const } };
  for (const d of [...distortions].sort((a, b) => ORDER[a.kind] - ORDER[b.kind])) {
    if (d.severity <= 0) continue;
    const p = distortionParameter(d, short).value;
    switch (d.kind) {
      case 'overexposure':
      case 'underexposure':
        for (let i = 0; i < data.length; i++) data[i] = clampByte(data[i]! * p);
        break;
      case 'contrast': {
        let mean = 0;
        for (let i = 0; i < data.length; i++) mean += data[i]!;
        mean /= data.length;
        for (let i = 0; i < data.length; i++) data[i] = clampByte(mean + (data[i]! - mean) * p);
        break;
      }
      case 'blur':
        data = new Uint8Array(await sharp(data, raw).blur(p).raw().toBuffer());
        break;
      case 'motion':
        if (p >= 3) {
          const kernel = motionKernel(p, d.angle ?? 0);
          data = new Uint8Array(
            await sharp(data, raw).convolve({ width: p, height: p, kernel, scale: 1 }).raw().toBuffer(),
          );
        }
        break;
      case 'noise':
        for (let i = 0; i < data.length; i++) data[i] = clampByte(data[i]! + p * gaussian(random));
        break;
      case 'jpeg': {
        const jpeg = await sharp(data, raw).jpeg({ quality: p, chromaSubsampling: '4:2:0' }).toBuffer();
        data = new Uint8Array(await sharp(jpeg).removeAlpha().raw().toBuffer());
        break;
      }
    }
  }
  return { data, width, height };
}
