// Seeded pseudo-random streams for the simulator: sfc32, one independent stream per (scenario seed, replicate index).

/** 2^-32: turns a 32-bit unsigned integer into a uniform in [0, 1). */
const TWO_POW_MINUS_32 = 1 / 4294967296;

/** splitmix32's finaliser: spreads a 32-bit input over all output bits (used only to seed). */
function mix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/**
 * The seed of replicate `index` of a scenario with seed `seed`: a hash of both, so replicate i is the same whether it
 * runs alone, first or last, on any worker.
 */
export function replicateSeed(seed: number, index: number): number {
  return mix32(mix32(seed >>> 0) ^ mix32((index + 0x632be5ab) >>> 0));
}

/**
 * sfc32 (Chris Doty-Humphrey's small fast chaotic generator, PractRand-clean at 32 bits): four 32-bit words of state,
 * a handful of integer operations per draw, and plenty for Monte-Carlo work where Math.random cannot be seeded.
 */
export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;
  /** Box-Muller yields two normals per pair of uniforms; the second waits here. */
  #spare = 0;
  #hasSpare = false;

  constructor(seed: number) {
    this.#a = mix32(seed);
    this.#b = mix32(this.#a ^ 0x5bd1e995);
    this.#c = mix32(this.#b ^ 0x27d4eb2f);
    this.#d = 1;
    // The first outputs of a freshly seeded sfc32 are still correlated with the seed: discard them.
    for (let i = 0; i < 15; i++) this.nextUint32();
  }

  /** A uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const a = this.#a;
    const b = this.#b;
    const c = this.#c;
    const d = this.#d;
    const t = (((a + b) | 0) + d) | 0;
    this.#d = (d + 1) | 0;
    this.#a = b ^ (b >>> 9);
    this.#b = (c + (c << 3)) | 0;
    const r = (c << 21) | (c >>> 11);
    this.#c = (r + t) | 0;
    return t >>> 0;
  }

  /** A uniform in [0, 1). */
  next(): number {
    return this.nextUint32() * TWO_POW_MINUS_32;
  }

  /** A uniform in (0, 1]: safe under a logarithm or a negative power. */
  nextOpen(): number {
    return (this.nextUint32() + 1) * TWO_POW_MINUS_32;
  }

  /** A standard normal deviate (Box-Muller; the pair's second value is returned by the next call). */
  normal(): number {
    if (this.#hasSpare) {
      this.#hasSpare = false;
      return this.#spare;
    }
    const radius = Math.sqrt(-2 * Math.log(this.nextOpen()));
    const angle = 2 * Math.PI * this.next();
    this.#spare = radius * Math.sin(angle);
    this.#hasSpare = true;
    return radius * Math.cos(angle);
  }

  /** An exponential deviate with the given rate (mean 1/rate). */
  exponential(rate: number): number {
    return -Math.log(this.nextOpen()) / rate;
  }

  /** A uniform integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.next() * n);
  }
}
