/**
 * Seeded pseudo-random numbers. Every draw in the catalog comes from a generator keyed by (seed, image index,
 * purpose), so one image never depends on how many draws another made, and a twin can replay its original's draws.
 */

/** A deterministic source of uniform numbers with the helpers the catalog needs. */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform in [lo, hi). */
  range(lo: number, hi: number): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /** One element, uniformly. */
  pick<T>(items: readonly T[]): T;
  /** One element, with the given non-negative weights. */
  weighted<T>(items: readonly T[], weights: readonly number[]): T;
  /** True with probability p. */
  chance(p: number): boolean;
}

// MurmurHash3's 32-bit finaliser: a cheap, well-mixed hash of one word.
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function hashKeys(keys: readonly (number | string)[]): number {
  let h = 0x9e3779b9;
  for (const key of keys) {
    const text = typeof key === 'number' ? `n${key}` : `s${key}`;
    for (let i = 0; i < text.length; i++) h = fmix32(h ^ text.charCodeAt(i)) + i;
    h = fmix32(h ^ 0x2545f491);
  }
  return h >>> 0;
}

/**
 * A generator keyed by any list of numbers and strings (e.g. `createRng(seed, index, 'pose')`): sfc32, seeded by
 * hashing the keys, warmed up so nearby keys give unrelated streams.
 */
export function createRng(...keys: (number | string)[]): Rng {
  const h = hashKeys(keys);
  let a = h;
  let b = fmix32(h ^ 0xdeadbeef);
  let c = fmix32(h ^ 0x41c64e6d);
  let d = 1;
  const next = (): number => {
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    const t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    const out = (t + d) | 0;
    c = (c + out) | 0;
    return (out >>> 0) / 4294967296;
  };
  for (let i = 0; i < 12; i++) next();
  return {
    next,
    range: (lo, hi) => lo + (hi - lo) * next(),
    int: (n) => Math.floor(next() * n),
    pick<T>(items: readonly T[]): T {
      if (items.length === 0) throw new RangeError('cannot pick from an empty list');
      return items[Math.floor(next() * items.length)] as T;
    },
    weighted<T>(items: readonly T[], weights: readonly number[]): T {
      const total = weights.reduce((s, w) => s + w, 0);
      let r = next() * total;
      for (let i = 0; i < items.length; i++) {
        r -= weights[i] ?? 0;
        if (r < 0) return items[i] as T;
      }
      return items[items.length - 1] as T;
    },
    chance: (p) => next() < p,
  };
}
