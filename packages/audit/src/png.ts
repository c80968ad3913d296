/** Small PNG and JPEG data URLs for report images. */
import { encodePng, thumbnailJpeg } from '@lookalike/imaging';

/** `[3, S, S]` pixels in [0,1] → PNG data URL (rounded to 8 bits). */
export async function pixelsToPng(pixels: Float32Array, size: number): Promise<string> {
  const plane = size * size;
  const rgb = Buffer.alloc(plane * 3);
  for (let p = 0; p < plane; p++)
    for (let c = 0; c < 3; c++) rgb[p * 3 + c] = Math.round(Math.min(1, Math.max(0, pixels[c * plane + p]!)) * 255);
  const png = await encodePng(rgb, size, size);
  return `data:image/png;base64,${png.toString('base64')}`;
}

/** The perturbation x' − x mapped from [−ε, ε] to [0, 1] (grey is no change), as a PNG data URL. */
export async function perturbationToPng(
  adversarial: Float32Array,
  clean: Float32Array,
  size: number,
  epsilon: number,
): Promise<string> {
  const scaled = Float32Array.from(adversarial, (v, i) => (epsilon > 0 ? 0.5 + (v - clean[i]!) / (2 * epsilon) : 0.5));
  return pixelsToPng(scaled, size);
}

/** A JPEG thumbnail data URL of an image file's bytes, at most `side` pixels on its longer side. */
export async function thumbnail(bytes: Uint8Array, side = 64): Promise<string> {
  const jpeg = await thumbnailJpeg(bytes, { side, quality: 80 });
  return `data:image/jpeg;base64,${jpeg.toString('base64')}`;
}
