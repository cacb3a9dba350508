// Unit tests of the special functions: tail precision against 40-digit mpmath values, inverses, and NaN-not-throw behaviour.
import { describe, expect, it } from 'vitest';
import {
  betaQuantile,
  binomialCdf,
  binomialPmf,
  binomialSf,
  chiSquareSf,
  erfc,
  incompleteBeta,
  incompleteGamma,
  logBeta,
  logGamma,
  logIncompleteBeta,
  normalCdf,
  normalIsf,
  normalLogCdf,
  normalQuantile,
  normalSf,
  studentTQuantile,
  studentTSf,
} from '../../../src/analysis/stats/index.js';

/** |actual − expected| <= rel·|expected| (relative precision, meaningful down to denormals). */
function expectRelative(actual: number, expected: number, rel: number): void {
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(rel * Math.abs(expected));
}

describe('error function and normal tails', () => {
  it('keeps full relative precision far into the tail (erfc, not 1 − erf)', () => {
    expectRelative(erfc(5), 1.537459794428034850188343485383378890118e-12, 1e-14);
    expectRelative(erfc(25), 8.300172571196522752044012769513722768714e-274, 1e-13);
    expectRelative(erfc(-1.5), 1.966105146475310727066976261645947858681, 1e-15);
    expectRelative(normalCdf(-30), 4.906713927148187059533809256580190471997e-198, 1e-13);
    expect(normalSf(37)).toBeGreaterThan(0); // 5.7e-300
    expect(normalSf(39)).toBe(0); // below the smallest double
  });

  it('gives ln Φ where Φ itself underflows', () => {
    expectRelative(normalLogCdf(-40), -804.6084420137537881666068329186099362002, 1e-15);
    expectRelative(normalLogCdf(-1e4), -50000010.12927891518085522785230788847552, 1e-15);
    expect(normalLogCdf(0)).toBeCloseTo(Math.log(0.5), 15);
  });

  it('inverts the normal tails exactly, including at 1e-300', () => {
    expectRelative(normalQuantile(1e-300), -37.0470962993612, 1e-14);
    expectRelative(normalIsf(0.025), 1.959963984540054, 1e-15);
    for (const q of [1e-200, 1e-20, 1e-5, 0.01, 0.3, 0.5, 0.77]) {
      expectRelative(normalSf(normalIsf(q)), q, 1e-13);
    }
    expect(normalQuantile(0)).toBe(-Infinity);
    expect(normalQuantile(1)).toBe(Infinity);
  });
});

describe('gamma and beta', () => {
  it('matches lnΓ at small, medium and large arguments', () => {
    // Below 10 the recurrence shift leaves a few 1e-15 of absolute error (lnΓ is ~0 near 1 and 2).
    expect(Math.abs(logGamma(0.5) - 0.5723649429247000870717136756765293558236)).toBeLessThan(4e-15);
    expect(Math.abs(logGamma(3.7) - 1.428072326665388129200498352550574241362)).toBeLessThan(4e-15);
    expect(Math.abs(logGamma(1e-8) - 18.42068073818020890537530597313548290288)).toBeLessThan(4e-15);
    expectRelative(logGamma(1e6), 12815504.56914761165997697178501711315369, 1e-15);
    expect(logGamma(1)).toBe(0);
    expect(logGamma(2)).toBe(0);
  });

  it('computes ln B without cancelling large lnΓ values', () => {
    expectRelative(logBeta(1e5, 2e5), -190958.8852791168496721852223245842309426, 1e-15);
  });

  it('returns both incomplete-beta tails accurately, tiny ones included', () => {
    const mid = incompleteBeta(2.5, 4, 0.3);
    expectRelative(mid.lower, 0.3521975859067672138766600155723980838426, 1e-14);
    expect(mid.lower + mid.upper).toBeCloseTo(1, 15);
    expectRelative(incompleteBeta(50, 50, 0.001).lower, 4.807847716285362022420837278835935711903e-122, 1e-12);
    // Symmetry I_x(a, b) = 1 − I_{1−x}(b, a), the small tail on each side computed directly.
    const left = incompleteBeta(7, 3, 0.2);
    const right = incompleteBeta(3, 7, 0.8);
    expectRelative(left.lower, right.upper, 1e-14);
    // A tail below the smallest double is still finite in log space.
    expect(logIncompleteBeta(1, 1e6, 0.01).logUpper).toBeCloseTo(1e6 * Math.log(0.99), 6);
  });

  it('inverts the incomplete beta (Clopper–Pearson quantiles)', () => {
    expectRelative(betaQuantile(1e-9, 3, 7), 0.00022841382057042106, 1e-12);
    for (const [p, a, b] of [
      [0.025, 1, 1],
      [0.975, 8, 13],
      [0.5, 0.5, 0.5],
      [1e-6, 200, 5000],
    ] as const) {
      const x = betaQuantile(p, a, b);
      const tails = incompleteBeta(a, b, x);
      expectRelative(p <= 0.5 ? tails.lower : tails.upper, p <= 0.5 ? p : 1 - p, 1e-11);
    }
  });

  it('returns both incomplete-gamma tails', () => {
    expectRelative(incompleteGamma(3, 2).lower, 0.3233235838169365405300025251375779829618, 1e-14);
    expectRelative(incompleteGamma(10, 30).upper, 7.121750862815577091646660834340290593535e-6, 1e-13);
    expectRelative(chiSquareSf(100, 3), 1.554159431389604921399753402511574063799e-21, 1e-12);
  });
});

describe('t and binomial distributions', () => {
  it('matches scipy quantiles and tails', () => {
    expectRelative(studentTQuantile(0.975, 10), 2.228138851986274, 1e-13);
    expectRelative(studentTQuantile(1e-10, 3), -2225.769284683093, 1e-12);
    expectRelative(studentTSf(50, 4), 4.787226828484845e-7, 1e-12);
    expect(studentTSf(0, 7)).toBe(0.5);
    expect(studentTSf(Infinity, 7)).toBe(0);
  });

  it('has a pmf that sums to 1 and tails that agree with it', () => {
    let sum = 0;
    for (let k = 0; k <= 40; k++) sum += binomialPmf(k, 40, 0.3);
    expect(sum).toBeCloseTo(1, 14);
    let tail = 0;
    for (let k = 13; k <= 40; k++) tail += binomialPmf(k, 40, 0.3);
    expectRelative(binomialSf(12, 40, 0.3), tail, 1e-13);
    expectRelative(binomialCdf(3, 1000, 0.001), 0.9810731665496396, 1e-14);
  });
});

describe('invalid input', () => {
  it('returns NaN instead of throwing', () => {
    expect(erfc(NaN)).toBeNaN();
    expect(logGamma(-1)).toBeNaN();
    expect(logBeta(0, 1)).toBeNaN();
    expect(incompleteBeta(-1, 2, 0.5).lower).toBeNaN();
    expect(betaQuantile(2, 1, 1)).toBeNaN();
    expect(studentTSf(1, 0)).toBeNaN();
    expect(studentTQuantile(NaN, 3)).toBeNaN();
    expect(incompleteGamma(1, -1).upper).toBeNaN();
  });
});
