// The simulator's random streams and latency samplers: reproducible, independent per replicate, and drawing what they claim.
import { describe, expect, it } from 'vitest';
import { latencySchema, medianOf, samplerFor, scaled } from '../../../src/simulate/distributions.js';
import { replicateSeed, Rng } from '../../../src/simulate/rng.js';

function draws(count: number, draw: () => number): number[] {
  return Array.from({ length: count }, draw).sort((a, b) => a - b);
}

const medianOfSorted = (sorted: readonly number[]) => sorted[Math.floor(sorted.length / 2)]!;

describe('simulator randomness', () => {
  it('repeats a stream for a seed, and gives each replicate its own seed', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const fromA = draws(5, () => a.next());
    expect(draws(5, () => b.next())).toEqual(fromA);
    expect(draws(5, () => c.next())).not.toEqual(fromA);
    const seeds = new Set(Array.from({ length: 1_000 }, (_, i) => replicateSeed(7, i)));
    expect(seeds.size).toBe(1_000);
    expect(replicateSeed(7, 3)).toBe(replicateSeed(7, 3));
    expect(replicateSeed(7, 3)).not.toBe(replicateSeed(8, 3));
  });

  it('draws uniforms and normals with the right moments', () => {
    const rng = new Rng(1);
    const n = 200_000;
    let sum = 0;
    let min = 1;
    let max = 0;
    for (let i = 0; i < n; i++) {
      const u = rng.next();
      sum += u;
      min = Math.min(min, u);
      max = Math.max(max, u);
    }
    expect(sum / n).toBeCloseTo(0.5, 2);
    expect(min).toBeGreaterThanOrEqual(0);
    expect(max).toBeLessThan(1);
    let s1 = 0;
    let s2 = 0;
    for (let i = 0; i < n; i++) {
      const z = rng.normal();
      s1 += z;
      s2 += z * z;
    }
    expect(s1 / n).toBeCloseTo(0, 2);
    expect(s2 / n).toBeCloseTo(1, 1);
    const buckets = new Array<number>(100).fill(0);
    for (let i = 0; i < n; i++) buckets[rng.below(100)]!++;
    expect(Math.min(...buckets)).toBeGreaterThan(n / 100 - 5 * Math.sqrt(n / 100));
  });

  it('samples lognormal, Pareto, constant and mixture latencies at their medians and weights', () => {
    const rng = new Rng(3);
    const cases = [
      { dist: 'lognormal', median: 80, sigma: 0.5 },
      { dist: 'pareto', scale: 50, shape: 1.5 },
      { dist: 'constant', value: 12 },
    ] as const;
    for (const d of cases) {
      const sample = samplerFor(latencySchema.parse(d));
      const sorted = draws(100_001, () => sample(rng));
      expect(medianOfSorted(sorted) / medianOf(d)!).toBeCloseTo(1, 1);
    }
    const bimodal = samplerFor(latencySchema.parse({ dist: 'mixture', components: [{ weight: 3, dist: 'constant', value: 10 }, { weight: 1, dist: 'constant', value: 200 }] }));
    const values = draws(100_000, () => bimodal(rng));
    expect(values.filter((v) => v === 200).length / values.length).toBeCloseTo(0.25, 2);
    expect(scaled({ dist: 'mixture', components: [{ weight: 1, dist: 'lognormal', median: 10, sigma: 1 }] }, 2)).toEqual({ dist: 'mixture', components: [{ weight: 1, dist: 'lognormal', median: 20, sigma: 1 }] });
  });
});
