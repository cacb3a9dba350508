// Prediction divergence and drift statistics: reference values, and the false-alarm rate under continuous monitoring by seeded simulation.
import { describe, expect, it } from 'vitest';
import { categoricalDivergence, chiSquareQuantile, clopperPearsonInterval, jensenShannon, judgeDrift, populationStabilityIndex } from '../../../src/analysis/stats/index.js';
import { binOf, quantileEdges } from '../../../src/record/prediction-stats.js';
import { Rng } from '../../../src/simulate/rng.js';

describe('categoricalDivergence (universal likelihood ratio, Dirichlet(1/K) numerator)', () => {
  // Reference values computed independently from the closed form with Python's math.lgamma (docs/statistics.md).
  it.each([
    { x: [30, 30, 40], y: [40, 30, 30], K: 3, logE: -8.912354879073746 },
    { x: [300, 300, 400], y: [400, 300, 300], K: 3, logE: -0.6101716004623086 },
    { x: [5, 0], y: [0, 5], K: 2, logE: 4.127386369423392 },
    { x: [340, 330, 330], y: [440, 230, 330], K: 16, logE: -19.467973775378596 },
  ])('ln E of $x vs $y over K=$K is $logE', ({ x, y, K, logE }) => {
    const look = categoricalDivergence(x, y, K);
    expect(look.status).toBe('ok');
    expect(look.logEValue).toBeCloseTo(logE, 9);
    expect(look.pLook).toBeCloseTo(Math.min(1, Math.exp(-logE)), 12);
  });

  it('gives E = 1 while either side is empty', () => {
    expect(categoricalDivergence([10, 5], [0, 0], 2)).toMatchObject({ status: 'insufficient-data', logEValue: 0, pLook: 1 });
  });

  it('depends only on the counts: the sum of replicas equals one replica that saw everything', () => {
    const a = categoricalDivergence([120, 80, 50], [100, 90, 60], 3);
    const b = categoricalDivergence([60 + 60, 40 + 40, 20 + 30], [50 + 50, 45 + 45, 30 + 30], 3);
    expect(b.logEValue).toBe(a.logEValue);
  });

  const probabilities = [0.5, 0.3, 0.2];
  const draw = (rng: Rng, p: readonly number[]): number => {
    let u = rng.next();
    for (let k = 0; k < p.length; k++) {
      u -= p[k]!;
      if (u < 0) return k;
    }
    return p.length - 1;
  };
  /** Runs `runs` experiments of `n` answers, looking after every `every`; returns how many ever reached E >= 1/alpha. */
  function alarms(seed: number, runs: number, n: number, share: number, champion: readonly number[], challenger: readonly number[], alpha: number): number {
    const rng = new Rng(seed);
    let alarmed = 0;
    for (let run = 0; run < runs; run++) {
      const x = [0, 0, 0];
      const y = [0, 0, 0];
      for (let i = 1; i <= n; i++) {
        if (rng.next() < share) y[draw(rng, challenger)]!++;
        else x[draw(rng, champion)]!++;
        if (i % 25 === 0 && categoricalDivergence(x, y, 3).logEValue >= -Math.log(alpha)) {
          alarmed++;
          break;
        }
      }
    }
    return alarmed;
  }

  it('keeps the false-alarm rate under alpha when looked at after every 25 answers (A/A, 50/50 and 10/90 splits)', () => {
    // 300 runs x 3,000 answers x 120 looks each. The 95 % Clopper-Pearson interval of the rate must lie at or under alpha.
    for (const share of [0.5, 0.1]) {
      const k = alarms(share === 0.5 ? 11 : 12, 300, 3_000, share, probabilities, probabilities, 0.05);
      const [lower, upper] = clopperPearsonInterval(k, 300);
      expect(lower).toBeLessThanOrEqual(0.05);
      console.info(`A/A at challenger share ${share}: ${k} alarms in 300 runs (95 % interval ${lower.toFixed(4)}-${upper.toFixed(4)})`);
      expect(k / 300).toBeLessThan(0.05);
    }
  });

  it('finds a 10-point shift of the class mix', () => {
    const k = alarms(13, 100, 6_000, 0.5, probabilities, [0.6, 0.2, 0.2], 0.0125);
    console.info(`10-point shift: found in ${k} of 100 runs of 6,000 answers`);
    expect(k).toBeGreaterThanOrEqual(90);
  });
});

describe('PSI and Jensen-Shannon', () => {
  // Reference values from the definitions with ½ added per bin, computed independently in Python.
  it('match reference values', () => {
    expect(populationStabilityIndex([100, 200, 300], [150, 150, 300])).toBeCloseTo(0.057411181982335274, 12);
    expect(jensenShannon([100, 200, 300], [150, 150, 300])).toBeCloseTo(0.007137944277405824, 12);
    expect(populationStabilityIndex([5, 5], [5, 5])).toBe(0);
    expect(jensenShannon([1, 0], [0, 1], 0)).toBeCloseTo(Math.LN2, 12);
  });

  it('chi-square quantiles match tables', () => {
    expect(chiSquareQuantile(0.05, 1)).toBeCloseTo(3.841458820694124, 6);
    expect(chiSquareQuantile(0.01, 9)).toBeCloseTo(21.665994333461924, 6);
  });

  it('raises the threshold to the null quantile at small samples, and keeps the practical one at large samples', () => {
    const small = judgeDrift([10, 10, 10, 10], [16, 8, 8, 8], { psi: 0.2, jensenShannon: 0.05, alpha: 0.01 });
    expect(small.noiseBound).toBeCloseTo(chiSquareQuantile(0.01, 3) * (1 / 40 + 1 / 40), 12);
    expect(small.psiThreshold).toBe(small.noiseBound);
    expect(small.drifted).toBe(false);
    const large = judgeDrift([10_000, 10_000, 10_000, 10_000], [16_000, 8_000, 8_000, 8_000], { psi: 0.2, jensenShannon: 0.05, alpha: 0.01 });
    expect(large.psiThreshold).toBe(0.2);
    expect(large.psi).toBeLessThan(0.2);
    expect(large.drifted).toBe(false);
    const moved = judgeDrift([10_000, 10_000, 10_000, 10_000], [25_000, 5_000, 5_000, 5_000], { psi: 0.2, jensenShannon: 0.05, alpha: 0.01 });
    expect(moved.drifted).toBe(true);
  });

  it('holds its per-window false-alarm rate at alpha from noise alone (practical thresholds set to almost 0)', () => {
    // 1,000 A/A windows of 300 values against a reference of 300, 10 equiprobable bins, alpha 0.01.
    const rng = new Rng(21);
    let alarmed = 0;
    const windows = 1_000;
    for (let w = 0; w < windows; w++) {
      const reference = new Array<number>(10).fill(0);
      const current = new Array<number>(10).fill(0);
      for (let i = 0; i < 300; i++) {
        reference[Math.floor(rng.next() * 10)]!++;
        current[Math.floor(rng.next() * 10)]!++;
      }
      if (judgeDrift(reference, current, { psi: 1e-9, jensenShannon: 1e-9, alpha: 0.01 }).drifted) alarmed++;
    }
    // PSI and JS are each compared with their own null quantile, so the union may reach up to about twice alpha.
    const [lower, upper] = clopperPearsonInterval(alarmed, windows);
    console.info(`A/A drift windows: ${alarmed} alarms in ${windows} (95 % interval ${lower.toFixed(4)}-${upper.toFixed(4)})`);
    expect(lower).toBeLessThanOrEqual(0.02);
  });

  it('places quantile edges and bins values', () => {
    const edges = quantileEdges(Array.from({ length: 100 }, (_, i) => i), 4);
    expect(edges).toEqual([25, 50, 75]);
    expect([0, 24.9, 25, 74, 75, 1e9].map((x) => binOf(edges, x))).toEqual([0, 0, 1, 2, 3, 3]);
  });
});
