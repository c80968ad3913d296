/** Synthetic unit vectors for the store benchmarks: seeded normal draws and perturbed copies at a chosen cosine. */

/** A standard normal draw (Box–Muller) from a seeded uniform source. */
export function gaussian(next: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
}

/** `v` scaled to unit length. */
export function unit(v: Float32Array): Float32Array {
  let n = 0;
  for (const x of v) n += x * x;
  n = Math.sqrt(n);
  return v.map((x) => x / n);
}

/** `seed` (a unit vector) turned by an angle whose cosine is `cos`, in a random direction. */
export function perturb(seed: Float32Array, cos: number, next: () => number): Float32Array {
  const noise = Float32Array.from(seed, () => gaussian(next));
  let along = 0;
  for (let i = 0; i < seed.length; i++) along += noise[i]! * seed[i]!;
  // The component along the seed removed, the noise is orthogonal and the cosine exactly `cos`.
  for (let i = 0; i < seed.length; i++) noise[i]! -= along * seed[i]!;
  const n = unit(noise);
  const sin = Math.sqrt(1 - cos * cos);
  return unit(seed.map((x, i) => cos * x + sin * n[i]!));
}
