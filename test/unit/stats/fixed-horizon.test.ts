// Unit tests of the fixed-horizon tests: exact distributions against brute-force enumeration, tiny p-values, and degenerate-input conventions.
import { describe, expect, it } from 'vitest';
import {
  benjaminiHochberg,
  binomialTest,
  bonferroni,
  chiSquare2x2,
  createCoMoments,
  cuped,
  fisherExact,
  hodgesLehmannShift,
  holm,
  logChoose,
  mannWhitneyU,
  mcNemarTest,
  momentsOf,
  pairedTTestSamples,
  pushCoMoment,
  srmChiSquare,
  twoProportionZTest,
  welchTTest,
  wilcoxonSignedRank,
} from '../../../src/analysis/stats/index.js';
import { createPrng as mulberry32 } from '../../../src/demo/prng.js';

/** Every way to choose k of n indexes. */
function* combinations(n: number, k: number, start = 0, chosen: number[] = []): Generator<number[]> {
  if (chosen.length === k) {
    yield chosen;
    return;
  }
  for (let i = start; i <= n - (k - chosen.length); i++) yield* combinations(n, k, i + 1, [...chosen, i]);
}

describe('Mann-Whitney U', () => {
  it('exact p-values equal a brute-force permutation count', () => {
    const random = mulberry32(5);
    const x = Array.from({ length: 4 }, () => random() + 0.2);
    const y = Array.from({ length: 6 }, () => random());
    const pooled = [...x, ...y];
    const observed = mannWhitneyU(x, y, { method: 'exact' });
    expect(observed.method).toBe('exact');
    let atLeastU1 = 0;
    let atMostU1 = 0;
    let extreme = 0;
    let total = 0;
    const nn = x.length * y.length;
    for (const pick of combinations(pooled.length, x.length)) {
      const xs = pick.map((i) => pooled[i]!);
      const ys = pooled.filter((_, i) => !pick.includes(i));
      const u1 = mannWhitneyU(xs, ys, { method: 'asymptotic' }).U1;
      total++;
      if (u1 >= observed.U1) atLeastU1++;
      if (u1 <= observed.U1) atMostU1++;
      if (Math.max(u1, nn - u1) >= Math.max(observed.U1, observed.U2)) extreme++;
    }
    expect(total).toBe(Math.round(Math.exp(logChoose(10, 4))));
    expect(observed.pValue).toBeCloseTo(Math.min(1, extreme / total), 14);
    expect(mannWhitneyU(x, y, { method: 'exact', alternative: 'greater' }).pValue).toBeCloseTo(atLeastU1 / total, 14);
    expect(mannWhitneyU(x, y, { method: 'exact', alternative: 'less' }).pValue).toBeCloseTo(atMostU1 / total, 14);
  });

  it('uses the exact method automatically only for small samples without ties', () => {
    expect(mannWhitneyU([1, 2, 3], [4, 5, 6, 7]).method).toBe('exact');
    expect(mannWhitneyU([1, 2, 2], [4, 5, 6, 7]).method).toBe('asymptotic');
    const big = Array.from({ length: 30 }, (_, i) => i);
    expect(mannWhitneyU(big, big.map((v) => v + 0.5)).method).toBe('asymptotic');
  });

  it('reports an empty sample as insufficient data with p = 1', () => {
    const r = mannWhitneyU([], [1, 2]);
    expect(r.status).toBe('insufficient-data');
    expect(r.pValue).toBe(1);
  });
});

describe('Hodges-Lehmann shift', () => {
  it('is the median of all pairwise differences (odd and even counts)', () => {
    expect(hodgesLehmannShift([1, 2, 3], [0])).toBe(2);
    expect(hodgesLehmannShift([1, 2], [0, 10])).toBe(-3.5); // differences 1, 2, −9, −8
    expect(hodgesLehmannShift([], [1])).toBeNaN();
  });

  it('gives the same answer on the counting path used for very large samples', () => {
    const random = mulberry32(21);
    // 2100 × 2000 pairs exceed the materialisation limit, so the order-statistic search runs.
    const x = Array.from({ length: 2100 }, () => Math.round(random() * 500) / 10);
    const y = Array.from({ length: 2000 }, () => Math.round(random() * 480) / 10);
    const differences = new Float64Array(x.length * y.length);
    let k = 0;
    for (const a of x) for (const b of y) differences[k++] = a - b;
    differences.sort();
    const middle = differences.length / 2;
    expect(hodgesLehmannShift(x, y)).toBe((differences[middle - 1]! + differences[middle]!) / 2);
  });
});

describe('Wilcoxon signed-rank', () => {
  it('exact p-values equal a brute-force count over all 2^n sign patterns', () => {
    const d = [0.3, -1.1, 2.4, 0.7, 1.9, -0.2, 3.3, 0.9, 1.4, -0.6];
    const observed = wilcoxonSignedRank(d, { method: 'exact' });
    expect(observed.method).toBe('exact');
    const n = d.length;
    const ranks = d.map((v) => [...d].map(Math.abs).sort((a, b) => a - b).indexOf(Math.abs(v)) + 1);
    let lessOrEqual = 0;
    let greaterOrEqual = 0;
    for (let mask = 0; mask < 1 << n; mask++) {
      let rPlus = 0;
      for (let i = 0; i < n; i++) if (mask & (1 << i)) rPlus += ranks[i]!;
      if (rPlus <= observed.rPlus) lessOrEqual++;
      if (rPlus >= observed.rPlus) greaterOrEqual++;
    }
    const total = 2 ** n;
    expect(observed.pValue).toBeCloseTo(Math.min(1, (2 * Math.min(lessOrEqual, greaterOrEqual)) / total), 14);
    expect(wilcoxonSignedRank(d, { method: 'exact', alternative: 'greater' }).pValue).toBeCloseTo(greaterOrEqual / total, 14);
  });

  it('follows the convention p = 1 when every difference is zero, and always reports nZero', () => {
    for (const zeroMethod of ['wilcox', 'pratt'] as const) {
      const r = wilcoxonSignedRank([0, 0, 0], { zeroMethod });
      expect(r.status).toBe('degenerate');
      expect(r.pValue).toBe(1);
      expect(r.nZero).toBe(3);
    }
    expect(wilcoxonSignedRank([0, 0, 0], { zeroMethod: 'zsplit' }).pValue).toBe(1);
    expect(wilcoxonSignedRank([]).pValue).toBe(1);
  });
});

describe('proportions', () => {
  it('keeps a Fisher tail of 1e-179 to full precision', () => {
    const r = fisherExact([
      [0, 300],
      [300, 0],
    ], { alternative: 'less' });
    const expected = Math.exp(-logChoose(600, 300));
    expect(Math.abs(r.pValue - expected) / expected).toBeLessThan(1e-11);
    const twoSided = fisherExact([
      [0, 300],
      [300, 0],
    ]).pValue;
    expect(Math.abs(twoSided - 2 * expected) / (2 * expected)).toBeLessThan(1e-11);
  });

  it('has Fisher one-sided tails that overlap in exactly the observed table', () => {
    const table = [
      [12, 30],
      [5, 41],
    ] as const;
    const less = fisherExact(table, { alternative: 'less' }).pValue;
    const greater = fisherExact(table, { alternative: 'greater' }).pValue;
    expect(less + greater).toBeGreaterThan(1);
    expect(fisherExact(table).pValue).toBeLessThanOrEqual(Math.min(1, 2 * Math.min(less, greater)) + 1e-15);
  });

  it('agrees between the z-test and the uncorrected chi-square (z² = χ²)', () => {
    const z = twoProportionZTest(48, 1000, 75, 1000);
    const chi = chiSquare2x2([
      [48, 952],
      [75, 925],
    ], { correction: false });
    expect(z.z * z.z).toBeCloseTo(chi.statistic, 10);
    expect(z.pValue).toBeCloseTo(chi.pValue, 12);
  });

  it('documents its degenerate conventions instead of throwing', () => {
    expect(twoProportionZTest(0, 0, 3, 10)).toMatchObject({ status: 'insufficient-data', z: 0, pValue: 1 });
    expect(twoProportionZTest(0, 10, 0, 10)).toMatchObject({ status: 'degenerate', z: 0, pValue: 1 });
    expect(fisherExact([
      [0, 0],
      [0, 0],
    ])).toMatchObject({ status: 'degenerate', pValue: 1 });
    expect(chiSquare2x2([
      [0, 0],
      [0, 0],
    ])).toMatchObject({ status: 'degenerate', pValue: 1 });
    expect(binomialTest(0, 0, 0.5)).toMatchObject({ status: 'insufficient-data', pValue: 1 });
    expect(mcNemarTest(0, 0)).toMatchObject({ status: 'insufficient-data', exactPValue: 1, correctedPValue: 1 });
    expect(srmChiSquare([0, 0], [0.5, 0.5])).toMatchObject({ status: 'insufficient-data', pValue: 1 });
  });
});

describe('binomial test', () => {
  it('puts the estimate inside both intervals and orders them sensibly', () => {
    const r = binomialTest(7, 20, 0.5);
    for (const [lower, upper] of [r.clopperPearson, r.wilson]) {
      expect(lower).toBeLessThan(0.35);
      expect(upper).toBeGreaterThan(0.35);
    }
    // Clopper–Pearson is the conservative one.
    expect(r.clopperPearson[0]).toBeLessThan(r.wilson[0]);
    expect(r.clopperPearson[1]).toBeGreaterThan(r.wilson[1]);
  });
});

describe('t-tests', () => {
  it('reproduce scipy conventions on degenerate data, flagged by status', () => {
    const constant = welchTTest(momentsOf([3, 3, 3]), momentsOf([3, 3, 3]));
    expect(constant.status).toBe('degenerate');
    expect(constant.pValue).toBeNaN();
    const shifted = welchTTest(momentsOf([3, 3, 3]), momentsOf([4, 4]));
    expect(shifted.status).toBe('degenerate');
    expect(shifted.t).toBe(-Infinity);
    expect(shifted.pValue).toBe(0);
    expect(welchTTest(momentsOf([1]), momentsOf([1, 2])).status).toBe('insufficient-data');
    expect(pairedTTestSamples([1], [2]).status).toBe('insufficient-data');
  });
});

describe('multiple testing', () => {
  it('matches R p.adjust, leaving NaN out of the family', () => {
    expect(holm([0.01, NaN, 0.04])).toEqual([0.02, NaN, 0.04]);
    expect(bonferroni([0.01, NaN, 0.04])).toEqual([0.02, NaN, 0.08]);
    expect(benjaminiHochberg([0.01, NaN, 0.04])).toEqual([0.02, NaN, 0.04]);
  });

  it('never makes BH stricter than Holm', () => {
    const random = mulberry32(99);
    const p = Array.from({ length: 25 }, () => random() ** 3);
    const h = holm(p);
    benjaminiHochberg(p).forEach((value, i) => expect(value).toBeLessThanOrEqual(h[i]!));
  });
});

describe('CUPED', () => {
  it('removes variance explained by the covariate, and nothing when the covariate is noise', () => {
    const random = mulberry32(8);
    const correlated = [createCoMoments(), createCoMoments()] as const;
    const noise = [createCoMoments(), createCoMoments()] as const;
    for (let i = 0; i < 4000; i++) {
      const arm = i % 2;
      const x = random() * 100;
      const y = x + random() * 5 + arm;
      pushCoMoment(correlated[arm]!, x, y);
      pushCoMoment(noise[arm]!, random() * 100, random() * 5 + arm);
    }
    const strong = cuped(correlated[0], correlated[1]);
    expect(strong.status).toBe('ok');
    expect(strong.varianceReduction).toBeGreaterThan(0.99);
    expect(strong.pValue).toBeLessThan(1e-10);
    expect(Math.abs(cuped(noise[0], noise[1]).varianceReduction)).toBeLessThan(0.01);
    expect(cuped(createCoMoments(), correlated[1])).toMatchObject({ status: 'insufficient-data', pValue: 1 });
  });
});

describe('malformed tables', () => {
  it('are degenerate, not thrown on', () => {
    for (const table of [
      [
        [-1, 3],
        [2, 2],
      ],
      [
        [1.5, 3],
        [2, 2],
      ],
      [
        [NaN, 3],
        [2, 2],
      ],
    ] as const) {
      expect(fisherExact(table)).toMatchObject({ status: 'degenerate', pValue: 1 });
      expect(chiSquare2x2(table)).toMatchObject({ status: 'degenerate', pValue: 1 });
    }
    expect(srmChiSquare([10, 10], [-1, 2])).toMatchObject({ status: 'insufficient-data', pValue: 1 });
  });
});
