// Seeded pseudo-random numbers so the demo's data split, training and fault injection repeat exactly.

/** A function returning a uniform float in [0, 1); the same seed always yields the same sequence. */
export type Prng = () => number;

/**
 * mulberry32: 32-bit state, passes the usual statistical smoke tests and is plenty for shuffles and
 * coin flips; chosen over Math.random because every demo run and test must be reproducible.
 */
export function createPrng(seed: number): Prng {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher–Yates shuffle of a copy of `items`, driven by `random`. */
export function shuffled<T>(items: readonly T[], random: Prng): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const tmp = out[i] as T;
    out[i] = out[j] as T;
    out[j] = tmp;
  }
  return out;
}
