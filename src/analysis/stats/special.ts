// Special functions (erfc, normal tails, log-gamma, incomplete beta/gamma, t, chi-square, binomial) written to keep full precision in the tails.

/** ln(2π)/2, the constant in Stirling's series. */
const HALF_LN_2PI = 0.91893853320467274178;
const LN2 = Math.LN2;
const SQRT2 = Math.SQRT2;
/** 1/sqrt(π), the leading constant of erfc's asymptotic expansion. */
const INV_SQRT_PI = 0.56418958354775628695;
const DBL_EPSILON = Number.EPSILON;
/** Lentz's method replaces exact zeros by this to avoid 0/0 (Numerical Recipes §5.2). */
const FPMIN = 1e-300;

// ---------------------------------------------------------------------------------------------
// Error function family: W. J. Cody's rational Chebyshev approximations (ACM TOMS 715, CALERF),
// accurate to about 1e-16 relative over the whole range. erfc is computed directly in the tail
// (never as 1 − erf), so normal tails down to ~1e-300 keep all their digits
// (docs/statistics.md, "Normal tails").

const ERF_A = [3.1611237438705656, 113.86415415105016, 377.485237685302, 3209.3775891384694, 0.18577770618460315];
const ERF_B = [23.601290952344122, 244.02463793444417, 1282.6165260773723, 2844.236833439171];
const ERF_C = [
  0.5641884969886701, 8.883149794388377, 66.11919063714163, 298.6351381974001, 881.952221241769, 1712.0476126340707,
  2051.0783778260716, 1230.3393547979972, 2.1531153547440383e-8,
];
const ERF_D = [
  15.744926110709835, 117.6939508913125, 537.1811018620099, 1621.3895745666903, 3290.7992357334597, 4362.619090143247,
  3439.3676741437216, 1230.3393548037495,
];
const ERF_P = [0.30532663496123236, 0.36034489994980445, 0.12578172611122926, 0.016083785148742275, 6.587491615298378e-4, 0.016315387137302097];
const ERF_Q = [2.568520192289822, 1.8729528499234604, 0.5279051029514285, 0.06051834131244132, 0.0023352049762686918];

/** Mode 0: erf, 1: erfc, 2: erfcx (= exp(x²)·erfc(x)). */
function calerf(x: number, mode: 0 | 1 | 2): number {
  const y = Math.abs(x);
  let result: number;
  if (y <= 0.46875) {
    const ysq = y > 1.11e-16 ? y * y : 0;
    let xnum = ERF_A[4]! * ysq;
    let xden = ysq;
    for (let i = 0; i < 3; i++) {
      xnum = (xnum + ERF_A[i]!) * ysq;
      xden = (xden + ERF_B[i]!) * ysq;
    }
    result = (x * (xnum + ERF_A[3]!)) / (xden + ERF_B[3]!);
    if (mode !== 0) result = 1 - result;
    if (mode === 2) result = Math.exp(ysq) * result;
    return result;
  }
  if (y <= 4) {
    let xnum = ERF_C[8]! * y;
    let xden = y;
    for (let i = 0; i < 7; i++) {
      xnum = (xnum + ERF_C[i]!) * y;
      xden = (xden + ERF_D[i]!) * y;
    }
    result = (xnum + ERF_C[7]!) / (xden + ERF_D[7]!);
    if (mode !== 2) result = expMinusSquare(y) * result;
  } else {
    result = 0;
    if (mode === 2 && y >= 6.71e7) {
      result = INV_SQRT_PI / y;
    } else if (mode !== 2 && y >= 26.543) {
      result = 0;
    } else {
      const ysq = 1 / (y * y);
      let xnum = ERF_P[5]! * ysq;
      let xden = ysq;
      for (let i = 0; i < 4; i++) {
        xnum = (xnum + ERF_P[i]!) * ysq;
        xden = (xden + ERF_Q[i]!) * ysq;
      }
      result = (ysq * (xnum + ERF_P[4]!)) / (xden + ERF_Q[4]!);
      result = (INV_SQRT_PI - result) / y;
      if (mode !== 2) result = expMinusSquare(y) * result;
    }
  }
  if (mode === 0) {
    result = 0.5 - result + 0.5;
    return x < 0 ? -result : result;
  }
  if (mode === 1) return x < 0 ? 2 - result : result;
  if (x < 0) {
    if (x < -26.628) return Infinity;
    result = 2 * expSquare(x) - result;
  }
  return result;
}

/** exp(−y²) without the rounding error of forming y² (Cody: split y into a 1/16-grid part and a rest). */
function expMinusSquare(y: number): number {
  const ysq = Math.trunc(y * 16) / 16;
  const del = (y - ysq) * (y + ysq);
  return Math.exp(-ysq * ysq) * Math.exp(-del);
}

function expSquare(y: number): number {
  const ysq = Math.trunc(y * 16) / 16;
  const del = (y - ysq) * (y + ysq);
  return Math.exp(ysq * ysq) * Math.exp(del);
}

/** Error function erf(x). */
export function erf(x: number): number {
  return Number.isNaN(x) ? NaN : calerf(x, 0);
}

/** Complementary error function erfc(x) = 1 − erf(x), computed directly so the right tail keeps full precision. */
export function erfc(x: number): number {
  return Number.isNaN(x) ? NaN : calerf(x, 1);
}

/** Scaled complementary error function erfcx(x) = exp(x²)·erfc(x); finite far into the right tail. */
export function erfcx(x: number): number {
  return Number.isNaN(x) ? NaN : calerf(x, 2);
}

// ---------------------------------------------------------------------------------------------
// Normal distribution.

/** Standard normal density φ(z). */
export function normalPdf(z: number): number {
  return Math.exp(-0.5 * z * z - HALF_LN_2PI);
}

/**
 * Upper tail Φ̄(z) = P(Z > z) = ½·erfc(z/√2), never 1 − Φ (docs/statistics.md, "Normal tails"). For z >= 1 it is
 * evaluated as ½·erfcx(z/√2)·exp(−z²/2) with exp(−z²/2) formed from z itself: rounding z/√2 would otherwise cost
 * about z²·1e-16 relative precision far in the tail.
 */
export function normalSf(z: number): number {
  if (z >= 1 && z < 40) return 0.5 * erfcx(z / SQRT2) * expMinusHalfSquare(z);
  return 0.5 * erfc(z / SQRT2);
}

/** Lower tail Φ(z) = Φ̄(−z). */
export function normalCdf(z: number): number {
  return normalSf(-z);
}

/** exp(−z²/2) with z² split as in expMinusSquare. */
function expMinusHalfSquare(z: number): number {
  const zsq = Math.trunc(z * 16) / 16;
  const del = (z - zsq) * (z + zsq);
  return Math.exp(-0.5 * zsq * zsq) * Math.exp(-0.5 * del);
}

/**
 * ln Φ(z), finite for any finite z (uses erfcx for large negative z, needed by the one-sided mixture:
 * docs/statistics.md, "One-sided mixture").
 */
export function normalLogCdf(z: number): number {
  if (Number.isNaN(z)) return NaN;
  if (z >= 0) return Math.log1p(-normalSf(z));
  if (z > -5) return Math.log(normalSf(-z));
  if (z === -Infinity) return -Infinity;
  return -0.5 * z * z + Math.log(0.5 * erfcx(-z / SQRT2));
}

/** ln Φ̄(z) = ln P(Z > z). */
export function normalLogSf(z: number): number {
  return normalLogCdf(-z);
}

// Wichura's AS241 (PPND16), about 1e-16 relative; one Halley step on the exact tail then polishes it.
const PPND_A = [
  3.387132872796366608, 133.14166789178437745, 1971.5909503065514427, 13731.693765509461125, 45921.953931549871457,
  67265.770927008700853, 33430.575583588128105, 2509.0809287301226727,
];
const PPND_B = [
  1, 42.313330701600911252, 687.1870074920579083, 5394.1960214247511077, 21213.794301586595867, 39307.89580009271061,
  28729.085735721942674, 5226.495278852854561,
];
const PPND_C = [
  1.42343711074968357734, 4.6303378461565452959, 5.7694972214606914055, 3.64784832476320460504, 1.27045825245236838258,
  0.24178072517745061177, 0.0227238449892691845833, 7.7454501427834140764e-4,
];
const PPND_D = [
  1, 2.05319162663775882187, 1.6763848301838038494, 0.68976733498510000455, 0.14810397642748007459,
  0.0151986665636164571966, 5.475938084995344946e-4, 1.05075007164441684324e-9,
];
const PPND_E = [
  6.6579046435011037772, 5.4637849111641143699, 1.7848265399172913358, 0.29656057182850489123,
  0.026532189526576123093, 0.0012426609473880784386, 2.71155556874348757815e-5, 2.01033439929228813265e-7,
];
const PPND_F = [
  1, 0.59983220655588793769, 0.13692988092273580531, 0.0148753612908506148525, 7.868691311456132591e-4,
  1.8463183175100546818e-5, 1.4215117583164458887e-7, 2.04426310338993978564e-15,
];

function poly(coefficients: readonly number[], x: number): number {
  let sum = 0;
  for (let i = coefficients.length - 1; i >= 0; i--) sum = sum * x + coefficients[i]!;
  return sum;
}

/** Lower-tail quantile: the z with Φ(z) = p. */
export function normalQuantile(p: number): number {
  if (Number.isNaN(p) || p < 0 || p > 1) return NaN;
  if (p === 0) return -Infinity;
  if (p === 1) return Infinity;
  return p <= 0.5 ? -upperNormalQuantile(p) : upperNormalQuantile(1 - p);
}

/** Upper-tail quantile: the z with Φ̄(z) = q (exact for tiny q, where 1 − q would round). */
export function normalIsf(q: number): number {
  if (Number.isNaN(q) || q < 0 || q > 1) return NaN;
  if (q === 0) return Infinity;
  if (q === 1) return -Infinity;
  return q <= 0.5 ? upperNormalQuantile(q) : -upperNormalQuantile(1 - q);
}

/** z ≥ 0 with Φ̄(z) = q, for 0 < q ≤ ½. */
function upperNormalQuantile(q: number): number {
  const dq = 0.5 - q;
  let z: number;
  if (dq <= 0.425) {
    const r = 0.180625 - dq * dq;
    z = (dq * poly(PPND_A, r)) / poly(PPND_B, r);
  } else {
    let r = Math.sqrt(-Math.log(q));
    if (r <= 5) {
      r -= 1.6;
      z = poly(PPND_C, r) / poly(PPND_D, r);
    } else {
      r -= 5;
      z = poly(PPND_E, r) / poly(PPND_F, r);
    }
  }
  // Halley step on f(z) = Φ̄(z) − q: the tail is evaluated with erfc so the correction is exact to rounding.
  const pdf = normalPdf(z);
  if (pdf > 0) {
    const u = (normalSf(z) - q) / pdf;
    z += u / (1 + 0.5 * z * u);
  }
  return z;
}

// ---------------------------------------------------------------------------------------------
// Gamma and beta functions. Stirling's series is used for arguments >= 10 (truncation error < 3e-17);
// smaller arguments are shifted up by the recurrence Γ(x+1) = xΓ(x).

const STIRLING_MIN = 10;

/** Stirling correction S(x) = lnΓ(x) − [(x − ½)ln x − x + ½ln 2π], for x >= 10. */
function stirlingCorrection(x: number): number {
  const r = 1 / x;
  const r2 = r * r;
  return (
    r *
    (1 / 12 +
      r2 * (-1 / 360 + r2 * (1 / 1260 + r2 * (-1 / 1680 + r2 * (1 / 1188 + r2 * (-691 / 360360 + r2 * (1 / 156 + r2 * (-3617 / 122400))))))))
  );
}

/** ln Γ(x) for x > 0 (NaN otherwise). */
export function logGamma(x: number): number {
  if (Number.isNaN(x) || x <= 0) return x === 0 ? Infinity : NaN;
  if (x === 1 || x === 2) return 0;
  if (x === Infinity) return Infinity;
  if (x >= STIRLING_MIN) return (x - 0.5) * Math.log(x) - x + HALF_LN_2PI + stirlingCorrection(x);
  let product = 1;
  let shifted = x;
  while (shifted < STIRLING_MIN) {
    product *= shifted;
    shifted += 1;
  }
  return (shifted - 0.5) * Math.log(shifted) - shifted + HALF_LN_2PI + stirlingCorrection(shifted) - Math.log(product);
}

/**
 * ln of the Pochhammer ratio Γ(a + x)/Γ(a) for a > 0, x >= 0, without the cancellation of two large lnΓ values:
 * for a >= 10, lnΓ(a+x) − lnΓ(a) = x·ln a + (a + x − ½)·log1p(x/a) − x + S(a+x) − S(a).
 */
export function logPochhammer(a: number, x: number): number {
  if (x === 0) return 0;
  if (a < STIRLING_MIN) return logGamma(a + x) - logGamma(a);
  return x * Math.log(a) + (a + x - 0.5) * Math.log1p(x / a) - x + (stirlingCorrection(a + x) - stirlingCorrection(a));
}

/**
 * lnΓ(a + x) − lnΓ(a) − x·ln a, the Pochhammer ratio without its leading x·ln a term. Sums of these cancel
 * exactly in Dirichlet-multinomial Bayes factors, so computing the remainder directly keeps ~1e-16 absolute
 * precision where the full lnΓ values (~1e5) would leave ~1e-11: for a >= 10 it is
 * (a + x − ½)·log1p(x/a) − x + S(a + x) − S(a).
 */
export function logPochhammerScaled(a: number, x: number): number {
  if (x === 0) return 0;
  if (a < STIRLING_MIN) return logGamma(a + x) - logGamma(a) - x * Math.log(a);
  return (a + x - 0.5) * Math.log1p(x / a) - x + (stirlingCorrection(a + x) - stirlingCorrection(a));
}

/** ln B(a, b) = lnΓ(a) + lnΓ(b) − lnΓ(a + b), arranged so large arguments do not cancel. */
export function logBeta(a: number, b: number): number {
  if (Number.isNaN(a) || Number.isNaN(b) || a <= 0 || b <= 0) return NaN;
  const small = Math.min(a, b);
  const large = Math.max(a, b);
  if (large < STIRLING_MIN) return logGamma(a) + logGamma(b) - logGamma(a + b);
  if (small < STIRLING_MIN) return logGamma(small) - logPochhammer(large, small);
  const c = a + b;
  // Stirling for all three terms: ½ln(2π) − ½ln c + (a−½)ln(a/c) + (b−½)ln(b/c) + S(a) + S(b) − S(c).
  return (
    HALF_LN_2PI -
    0.5 * Math.log(c) +
    (a - 0.5) * logRatio(a, b, c) +
    (b - 0.5) * logRatio(b, a, c) +
    (stirlingCorrection(a) + stirlingCorrection(b) - stirlingCorrection(c))
  );
}

/** ln(p/c) where c = p + q, via log1p when p dominates. */
function logRatio(p: number, q: number, c: number): number {
  return p > q ? Math.log1p(-q / c) : Math.log(p / c);
}

/** ln C(n, k), the log binomial coefficient (n, k may be real; 0 <= k <= n). */
export function logChoose(n: number, k: number): number {
  if (k < 0 || k > n) return -Infinity;
  if (k === 0 || k === n) return 0;
  return -Math.log(n + 1) - logBeta(k + 1, n - k + 1);
}

// ---------------------------------------------------------------------------------------------
// Regularized incomplete beta I_x(a, b). Both tails are returned: the smaller one is computed by the
// continued fraction (Numerical Recipes betacf, modified Lentz) and the larger one as its complement,
// so neither loses digits. The prefactor x^a y^b / B(a,b) is formed in log space.

/** Both tails of the regularized incomplete beta: lower = I_x(a,b), upper = 1 − I_x(a,b) = I_y(b,a). */
export interface BetaTails {
  lower: number;
  upper: number;
}

/** Logs of both tails of the regularized incomplete beta (finite even when the tail underflows a double). */
export interface LogBetaTails {
  logLower: number;
  logUpper: number;
}

/** ln[x^a y^b / B(a, b)] with y = 1 − x; Stirling-combined for large a and b (DiDonato & Morris, Boost's ibeta_power_terms). */
function logBetaPowerTerms(a: number, b: number, x: number, y: number): number {
  const lnX = x <= 0.5 ? Math.log(x) : Math.log1p(-y);
  const lnY = y <= 0.5 ? Math.log(y) : Math.log1p(-x);
  if (a >= STIRLING_MIN && b >= STIRLING_MIN) {
    const c = a + b;
    // a·ln(xc/a) + b·ln(yc/b) + ½ln(ab/(2πc)) − [S(a) + S(b) − S(c)], with xc − a = xb − ya.
    // Near the mean (|xc/a − 1| small) log1p keeps the digits that a·ln x − a·ln(a/c) would cancel;
    // far from it the direct logs are exact and log1p of a value near −1 would not be.
    const shift = x * b - y * a;
    const termA = Math.abs(shift) < 0.5 * a ? a * Math.log1p(shift / a) : a * (lnX + Math.log1p(b / a));
    const termB = Math.abs(shift) < 0.5 * b ? b * Math.log1p(-shift / b) : b * (lnY + Math.log1p(a / b));
    return (
      termA +
      termB +
      0.5 * Math.log((a / c) * b) -
      HALF_LN_2PI -
      (stirlingCorrection(a) + stirlingCorrection(b) - stirlingCorrection(c))
    );
  }
  return a * lnX + b * lnY - logBeta(a, b);
}

const BETA_CF_MAX_ITERATIONS = 200_000;

/** Continued fraction for I_x(a,b)·a·B(a,b)/(x^a y^b) (NR betacf with modified Lentz); converges fast for x < (a+1)/(a+b+2). */
function betaContinuedFraction(a: number, b: number, x: number): number {
  const qab = a + b;
  const qap = a + 1;
  const qam = a - 1;
  let c = 1;
  let d = 1 - (qab * x) / qap;
  if (Math.abs(d) < FPMIN) d = FPMIN;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= BETA_CF_MAX_ITERATIONS; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < FPMIN) d = FPMIN;
    c = 1 + aa / c;
    if (Math.abs(c) < FPMIN) c = FPMIN;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (qab + m) * x) / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < FPMIN) d = FPMIN;
    c = 1 + aa / c;
    if (Math.abs(c) < FPMIN) c = FPMIN;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) <= 2 * DBL_EPSILON) break;
  }
  return h;
}

/**
 * Logs of both tails of I_x(a, b). Pass y = 1 − x when it is known more precisely than 1 − x
 * (e.g. y = t²/(ν+t²) for the t distribution).
 */
export function logIncompleteBeta(a: number, b: number, x: number, y: number = 1 - x): LogBetaTails {
  if (Number.isNaN(a) || Number.isNaN(b) || Number.isNaN(x) || Number.isNaN(y) || a <= 0 || b <= 0 || x < 0 || x > 1) {
    return { logLower: NaN, logUpper: NaN };
  }
  if (x === 0) return { logLower: -Infinity, logUpper: 0 };
  if (y === 0) return { logLower: 0, logUpper: -Infinity };
  const logFront = logBetaPowerTerms(a, b, x, y);
  if (x < (a + 1) / (a + b + 2)) {
    const logLower = logFront + Math.log(betaContinuedFraction(a, b, x)) - Math.log(a);
    return { logLower, logUpper: log1mExp(logLower) };
  }
  const logUpper = logFront + Math.log(betaContinuedFraction(b, a, y)) - Math.log(b);
  return { logLower: log1mExp(logUpper), logUpper };
}

/** Both tails of the regularized incomplete beta I_x(a, b) (see logIncompleteBeta for y). */
export function incompleteBeta(a: number, b: number, x: number, y: number = 1 - x): BetaTails {
  const { logLower, logUpper } = logIncompleteBeta(a, b, x, y);
  return { lower: Math.exp(logLower), upper: Math.exp(logUpper) };
}

/** ln(1 − e^v) for v <= 0, accurate at both ends (Mächler 2012). */
function log1mExp(v: number): number {
  if (v > -LN2) return Math.log(-Math.expm1(v));
  return Math.log1p(-Math.exp(v));
}

/** Beta(a, b) density at x, computed in log space. */
function betaLogPdf(a: number, b: number, x: number): number {
  const y = 1 - x;
  return logBetaPowerTerms(a, b, x, y) - Math.log(x) - Math.log(y);
}

/**
 * Quantile of the Beta(a, b) distribution: x with I_x(a, b) = p. Safeguarded Newton on the log of the
 * smaller tail (so quantiles near 0 or 1 are found to full relative precision), bisection as a fallback.
 */
export function betaQuantile(p: number, a: number, b: number): number {
  if (Number.isNaN(p) || p < 0 || p > 1 || !(a > 0) || !(b > 0)) return NaN;
  if (p === 0) return 0;
  if (p === 1) return 1;
  const useLower = p <= 0.5;
  const logTarget = useLower ? Math.log(p) : Math.log1p(-p);
  let lo = 0;
  let hi = 1;
  // Start at the mean, pulled toward the right tail by a normal approximation.
  const mean = a / (a + b);
  const sd = Math.sqrt((a * b) / ((a + b) * (a + b) * (a + b + 1)));
  let x = mean + normalQuantile(p) * sd;
  if (!(x > 0 && x < 1)) x = mean;
  for (let iteration = 0; iteration < 300; iteration++) {
    const tails = logIncompleteBeta(a, b, x, 1 - x);
    const logTail = useLower ? tails.logLower : tails.logUpper;
    // Lower tail increases with x; upper tail decreases.
    const tooHigh = useLower ? logTail > logTarget : logTail < logTarget;
    if (tooHigh) hi = x;
    else lo = x;
    const g = logTail - logTarget;
    if (g === 0) return x;
    const slope = Math.exp(betaLogPdf(a, b, x) - logTail) * (useLower ? 1 : -1);
    let next = x - g / slope;
    if (!(next > lo && next < hi) || !Number.isFinite(next)) next = 0.5 * (lo + hi);
    if (Math.abs(next - x) <= 4 * DBL_EPSILON * x || hi - lo <= 4 * DBL_EPSILON * Math.min(x, 1 - x)) return next;
    x = next;
  }
  return x;
}

// ---------------------------------------------------------------------------------------------
// Regularized incomplete gamma P(a, x), Q(a, x): series for x < a + 1, continued fraction otherwise
// (Numerical Recipes gser/gcf), each returning the tail it is accurate for.

/** Both tails of the regularized incomplete gamma: lower = P(a, x), upper = Q(a, x). */
export interface GammaTails {
  lower: number;
  upper: number;
}

/** Both tails of the regularized incomplete gamma function for a > 0, x >= 0. */
export function incompleteGamma(a: number, x: number): GammaTails {
  if (Number.isNaN(a) || Number.isNaN(x) || a <= 0 || x < 0) return { lower: NaN, upper: NaN };
  if (x === 0) return { lower: 0, upper: 1 };
  if (x === Infinity) return { lower: 1, upper: 0 };
  const logFront = a * Math.log(x) - x - logGamma(a);
  if (x < a + 1) {
    let ap = a;
    let del = 1 / a;
    let sum = del;
    for (let n = 0; n < 100_000; n++) {
      ap += 1;
      del *= x / ap;
      sum += del;
      if (Math.abs(del) < Math.abs(sum) * DBL_EPSILON) break;
    }
    const lower = Math.exp(logFront + Math.log(sum));
    return { lower, upper: 1 - lower };
  }
  let b = x + 1 - a;
  let c = 1 / FPMIN;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 100_000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < FPMIN) d = FPMIN;
    c = b + an / c;
    if (Math.abs(c) < FPMIN) c = FPMIN;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) <= 2 * DBL_EPSILON) break;
  }
  const upper = Math.exp(logFront + Math.log(h));
  return { lower: 1 - upper, upper };
}

/** Chi-square upper tail P(X > x) with `dof` degrees of freedom (1 dof via erfc for full precision). */
export function chiSquareSf(x: number, dof: number): number {
  if (Number.isNaN(x) || !(dof > 0)) return NaN;
  if (x <= 0) return 1;
  if (dof === 1) return erfc(Math.sqrt(x / 2));
  if (dof === 2) return Math.exp(-x / 2);
  return incompleteGamma(dof / 2, x / 2).upper;
}

// ---------------------------------------------------------------------------------------------
// Student t distribution: tails via I_{ν/(ν+t²)}(ν/2, ½), with ν/(ν+t²) and t²/(ν+t²) formed separately.

/** Upper tail P(T > t) of Student's t with ν degrees of freedom. */
export function studentTSf(t: number, nu: number): number {
  if (Number.isNaN(t) || Number.isNaN(nu) || nu <= 0) return NaN;
  if (t === Infinity) return 0;
  if (t === -Infinity) return 1;
  if (nu === Infinity) return normalSf(t);
  const t2 = t * t;
  const x = nu / (nu + t2);
  const y = t2 === Infinity ? 1 : 1 / (1 + nu / t2);
  if (t2 === 0) return 0.5;
  const tails = incompleteBeta(nu / 2, 0.5, x, y);
  return t > 0 ? 0.5 * tails.lower : 0.5 + 0.5 * tails.upper;
}

/** Lower tail P(T <= t) of Student's t. */
export function studentTCdf(t: number, nu: number): number {
  return studentTSf(-t, nu);
}

/** ln of Student's t density. */
function studentTLogPdf(t: number, nu: number): number {
  return logPochhammer(nu / 2, 0.5) - 0.5 * Math.log(nu * Math.PI) - ((nu + 1) / 2) * Math.log1p((t * t) / nu);
}

/** Quantile of Student's t: the t with P(T <= t) = p. Newton on ln(tail) in ln t, safeguarded by bisection. */
export function studentTQuantile(p: number, nu: number): number {
  if (Number.isNaN(p) || p < 0 || p > 1 || Number.isNaN(nu) || nu <= 0) return NaN;
  if (p === 0.5) return 0;
  if (p === 0) return -Infinity;
  if (p === 1) return Infinity;
  if (nu === Infinity) return normalQuantile(p);
  const q = Math.min(p, 1 - p);
  const logQ = Math.log(q);
  // Solve ln sf(t) = ln q for t > 0; sf is decreasing, ln sf is close to linear in ln t in the tail.
  let lo = 0;
  let hi = Infinity;
  let t = Math.max(normalIsf(q), 1e-8);
  for (let iteration = 0; iteration < 300; iteration++) {
    const sf = studentTSf(t, nu);
    const g = Math.log(sf) - logQ;
    if (g === 0) break;
    if (g > 0) lo = t;
    else hi = t;
    // d ln sf / d ln t = −t·pdf(t)/sf(t).
    const slope = -t * Math.exp(studentTLogPdf(t, nu)) / sf;
    let next = t * Math.exp(-g / slope);
    if (!(next > lo && next < hi) || !Number.isFinite(next)) next = hi === Infinity ? 2 * t : 0.5 * (lo + hi);
    if (Math.abs(next - t) <= 4 * DBL_EPSILON * t) {
      t = next;
      break;
    }
    t = next;
  }
  return p < 0.5 ? -t : t;
}

// ---------------------------------------------------------------------------------------------
// Binomial distribution.

/** Binomial probability mass P(X = k), X ~ Bin(n, p), computed in log space. */
export function binomialPmf(k: number, n: number, p: number): number {
  if (k < 0 || k > n || !Number.isInteger(k)) return 0;
  if (p === 0) return k === 0 ? 1 : 0;
  if (p === 1) return k === n ? 1 : 0;
  return Math.exp(logChoose(n, k) + k * Math.log(p) + (n - k) * Math.log1p(-p));
}

/** Binomial lower tail P(X <= k) = I_{1−p}(n−k, k+1). */
export function binomialCdf(k: number, n: number, p: number): number {
  const kk = Math.floor(k);
  if (kk < 0) return 0;
  if (kk >= n) return 1;
  if (p === 0) return 1;
  if (p === 1) return 0;
  return incompleteBeta(n - kk, kk + 1, 1 - p, p).lower;
}

/** Binomial upper tail P(X > k) = I_p(k+1, n−k). */
export function binomialSf(k: number, n: number, p: number): number {
  const kk = Math.floor(k);
  if (kk < 0) return 1;
  if (kk >= n) return 0;
  if (p === 0) return 0;
  if (p === 1) return 1;
  return incompleteBeta(kk + 1, n - kk, p, 1 - p).lower;
}
