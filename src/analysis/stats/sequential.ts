// Always-valid sequential tests: normal-mixture mSPRT (two- and one-sided), confidence sequences, running-min p-values, sequential McNemar and SLO e-values (docs/statistics.md, "The statistics engine: formulas and conventions").
//
// Everything here may be evaluated after every batch, any number of times, and stays valid (Ville's inequality).
// These functions never throw and never return NaN in an e-value, a p-value or a bound: insufficient data gives
// Λ = 1 (ln Λ = 0), p = 1 and the unbounded interval (−∞, ∞), with status `insufficient-data`.
import type { Counts, Moments } from './streaming.js';
import { logBeta, logIncompleteBeta, normalIsf, normalLogCdf } from './special.js';
import type { Alternative, TestStatus } from './types.js';

// --- Closed forms --------------------------------------------------------------------------------------

/**
 * ln Λ of the normal-mixture SPRT for Δ̂ ~ N(θ, v) with mixing prior θ ~ N(θ₀, τ²):
 * ln Λ = ½·ln(v/(v + τ²)) + τ²(Δ̂ − θ₀)²/(2v(v + τ²)). Computed in log space, so it is finite where Λ overflows
 * (docs/statistics.md, "Mixture likelihood ratio and confidence sequence").
 */
export function normalMixtureLogLambda(delta: number, v: number, tau2: number, theta0 = 0): number {
  const d = delta - theta0;
  return -0.5 * Math.log1p(tau2 / v) + (tau2 * d * d) / (2 * v * (v + tau2));
}

/**
 * ln Λ± of the one-sided (half-normal) mixture, valid for the composite null s·(θ − θ₀) <= 0:
 * Λ± = 2·Λ·Φ(s·(Δ̂ − θ₀)·τ/sqrt(v(v + τ²))), s = +1 for `greater` (Λ⁺), −1 for `less` (Λ⁻)
 * (docs/statistics.md, "One-sided mixture").
 */
export function oneSidedMixtureLogLambda(delta: number, v: number, tau2: number, theta0: number, side: 'greater' | 'less'): number {
  const s = side === 'greater' ? 1 : -1;
  const argument = (s * (delta - theta0) * Math.sqrt(tau2)) / Math.sqrt(v * (v + tau2));
  return Math.LN2 + normalMixtureLogLambda(delta, v, tau2, theta0) + normalLogCdf(argument);
}

/**
 * Half-width of the normal-mixture confidence sequence: sqrt(v(v + τ²)/τ² · ln((v + τ²)/(v·α²))).
 * Δ̂ ± half-width covers θ at every look simultaneously with probability >= 1 − α
 * (docs/statistics.md, "Mixture likelihood ratio and confidence sequence").
 */
export function confidenceSequenceHalfWidth(v: number, tau2: number, alpha: number): number {
  return Math.sqrt(((v * (v + tau2)) / tau2) * (Math.log1p(tau2 / v) - 2 * Math.log(alpha)));
}

/** GrowthBook's ρ = sqrt((−2 ln α + ln(1 − 2 ln α))/N*) (docs/statistics.md, "Mixing variance"). */
export function growthBookRho(alpha: number, nStar: number): number {
  const lnAlpha = Math.log(alpha);
  return Math.sqrt((-2 * lnAlpha + Math.log1p(-2 * lnAlpha)) / nStar);
}

/** GrowthBook/Waudby-Smith mixing variance τ² = ρ²·N·v, narrowest CS near N = N* (docs/statistics.md, "Mixing variance"). */
export function growthBookTau2(v: number, nTotal: number, alpha: number, nStar: number): number {
  const rho = growthBookRho(alpha, nStar);
  return rho * rho * nTotal * v;
}

/**
 * Eppo's sequential bound (Howard et al. 2021 eq. 14) and its equivalent mixing variance
 * (docs/statistics.md, "Mixing variance").
 */
export interface EppoBound {
  /** ρ = N_tune/(ln ln(e/α²) − 2 ln α). */
  rho: number;
  /** B = sqrt((t + ρ)·ln((t + ρ)/(ρα²)))/sqrt(t). */
  B: number;
  /** σ_Δ·B. */
  halfWidth: number;
  /** z_{1−α/2}·σ_Δ, the fixed-horizon half-width, for the price of peeking. */
  fixedHalfWidth: number;
  /** τ² = σ_Δ²·t/ρ, for which the normal-mixture CS has the same half-width. */
  equivalentTau2: number;
}

/** Eppo's sequential confidence bound at t = n_C + n_T observations with SE σ_Δ (default N_tune = 10 000). */
export function eppoSequentialBound(t: number, sigmaDelta: number, alpha: number, nTune = 10_000): EppoBound {
  const lnAlpha = Math.log(alpha);
  // ln ln(e/α²) = ln(1 − 2 ln α).
  const rho = nTune / (Math.log1p(-2 * lnAlpha) - 2 * lnAlpha);
  const B = Math.sqrt((t + rho) * (Math.log((t + rho) / rho) - 2 * lnAlpha)) / Math.sqrt(t);
  return { rho, B, halfWidth: sigmaDelta * B, fixedHalfWidth: normalIsf(alpha / 2) * sigmaDelta, equivalentTau2: (sigmaDelta * sigmaDelta * t) / rho };
}

// --- One look of a mixture test -----------------------------------------------------------------------

/** How the mixing variance τ² is chosen; it must be fixed before the data are seen. */
export type Mixing =
  /** τ² in absolute units of the difference (exact martingale), e.g. from a pilot or historical variance. */
  | { tau2: number }
  /** GrowthBook/Eppo mapping τ² = ρ²·N·v with N* = planned total observations at decision time (asymptotic). */
  | { nStar: number };

/** Options of the mixture tests. */
export interface MixtureOptions {
  /** Level: reject when Λ >= 1/α; the confidence sequence has coverage 1 − α. */
  alpha: number;
  mixing: Mixing;
  /** Null value θ₀ of the difference, or the harm margin for a one-sided test (default 0). */
  theta0?: number;
  /**
   * `two-sided` (default), `greater` (H1: θ > θ₀, e.g. "challenger worse" for latency or errors) or `less`.
   * One-sided tests use the half-normal mixture Λ±; the confidence sequence is always the two-sided one.
   */
  alternative?: Alternative;
}

/** One look of a mixture sequential test. */
export interface MixtureLook {
  status: TestStatus;
  /** Estimated difference Δ̂ (treatment − control, or mean paired difference). */
  delta: number;
  /** Estimated variance of Δ̂. */
  v: number;
  /** Mixing variance used. */
  tau2: number;
  /** ln Λ for the chosen alternative (0 when data are insufficient). */
  logLambda: number;
  /** Λ = e-value (may be Infinity when ln Λ > 709; use logLambda). */
  lambda: number;
  /** min(1, 1/Λ) at this look; the always-valid p-value is its running minimum (observeLook). */
  pLook: number;
  /** Λ >= 1/α. */
  reject: boolean;
  /** Confidence-sequence bounds Δ̂ ∓ half-width ((−∞, ∞) when data are insufficient). */
  csLower: number;
  csUpper: number;
  csHalfWidth: number;
}

/**
 * One look of the normal-mixture test for Δ̂ ~ N(θ, v). `nTotal` is N for the GrowthBook/Eppo mixing. v <= 0,
 * α outside (0, 1) or non-finite inputs → Λ = 1, p = 1, unbounded CS, `insufficient-data`
 * (docs/statistics.md, "Mixture likelihood ratio and confidence sequence", "One-sided mixture").
 */
export function mixtureLook(delta: number, v: number, nTotal: number, options: MixtureOptions): MixtureLook {
  const theta0 = options.theta0 ?? 0;
  const alternative = options.alternative ?? 'two-sided';
  const tau2 = 'tau2' in options.mixing ? options.mixing.tau2 : growthBookTau2(v, nTotal, options.alpha, options.mixing.nStar);
  const validAlpha = options.alpha > 0 && options.alpha < 1;
  if (!(validAlpha && v > 0 && tau2 > 0 && Number.isFinite(v) && Number.isFinite(tau2) && Number.isFinite(delta + theta0))) {
    return insufficientLook(delta, v, tau2);
  }
  const logLambda =
    alternative === 'two-sided' ? normalMixtureLogLambda(delta, v, tau2, theta0) : oneSidedMixtureLogLambda(delta, v, tau2, theta0, alternative);
  const csHalfWidth = confidenceSequenceHalfWidth(v, tau2, options.alpha);
  return {
    status: 'ok',
    delta,
    v,
    tau2,
    logLambda,
    lambda: Math.exp(logLambda),
    pLook: Math.min(1, Math.exp(-logLambda)),
    reject: logLambda >= -Math.log(options.alpha),
    csLower: delta - csHalfWidth,
    csUpper: delta + csHalfWidth,
    csHalfWidth,
  };
}

function insufficientLook(delta: number, v: number, tau2: number): MixtureLook {
  return {
    status: 'insufficient-data',
    delta: Number.isFinite(delta) ? delta : 0,
    v: Number.isFinite(v) ? v : 0,
    tau2: Number.isFinite(tau2) ? tau2 : 0,
    logLambda: 0,
    lambda: 1,
    pLook: 1,
    reject: false,
    csLower: -Infinity,
    csUpper: Infinity,
    csHalfWidth: Infinity,
  };
}

/**
 * Two-sample mSPRT on means from streaming moments: Δ̂ = x̄_T − x̄_C, v = s²_C/n_C + s²_T/n_T (plug-in, ddof 1;
 * use log latency for latency). Needs n >= 2 per arm
 * (docs/statistics.md, "Mixture tests on means, rates and paired differences").
 */
export function meanDifferenceMsprt(control: Moments, treatment: Moments, options: MixtureOptions): MixtureLook {
  if (!(control.n > 1 && treatment.n > 1)) return insufficientLook(0, 0, 0);
  const v = control.m2 / (control.n - 1) / control.n + treatment.m2 / (treatment.n - 1) / treatment.n;
  return mixtureLook(treatment.mean - control.mean, v, control.n + treatment.n, options);
}

/**
 * Two-sample Bernoulli mSPRT on rates (Johari et al.): Δ̂ = p̂_T − p̂_C,
 * v = p̂_C(1 − p̂_C)/n_C + p̂_T(1 − p̂_T)/n_T from the running counts (never look-ahead means).
 * With equal n per arm this is Λ_n with V_n = p̄_x(1 − p̄_x) + p̄_y(1 − p̄_y). v = 0 (no events anywhere) → Λ = 1
 * (docs/statistics.md, "Mixture tests on means, rates and paired differences").
 */
export function proportionDifferenceMsprt(control: Counts, treatment: Counts, options: MixtureOptions): MixtureLook {
  if (!(control.n > 0 && treatment.n > 0)) return insufficientLook(0, 0, 0);
  const pC = control.events / control.n;
  const pT = treatment.events / treatment.n;
  const v = (pC * (1 - pC)) / control.n + (pT * (1 - pT)) / treatment.n;
  return mixtureLook(pT - pC, v, control.n + treatment.n, options);
}

/**
 * One-sample (paired) mSPRT on the mean of per-request differences d = metric_B − metric_A
 * (docs/statistics.md, "Mixture tests on means, rates and paired differences"): v = s_d²/n, or σ²/n when the variance
 * of one difference is known (Johari's two-stream test uses σ² = 2σ²_metric).
 */
export function pairedMeanMsprt(differences: Moments, options: MixtureOptions & { knownVariance?: number }): MixtureLook {
  const n = differences.n;
  if (options.knownVariance !== undefined) {
    if (!(n > 0)) return insufficientLook(0, 0, 0);
    return mixtureLook(differences.mean, options.knownVariance / n, n, options);
  }
  if (!(n > 1)) return insufficientLook(0, 0, 0);
  return mixtureLook(differences.mean, differences.m2 / (n - 1) / n, n, options);
}

// --- Always-valid running state --------------------------------------------------------------------------

/**
 * Path-dependent state of an e-process across looks: store it, never recompute it from final aggregates
 * (docs/statistics.md, "Running state across looks"). Plain JSON: every field is finite or null, so
 * JSON.stringify/parse round-trips it exactly.
 */
export interface AlwaysValidState {
  looks: number;
  /** Always-valid p-value: min(1, min over looks of 1/Λ). */
  pValue: number;
  /** Largest ln Λ seen (capped at ±Number.MAX_VALUE to stay JSON-finite). */
  maxLogLambda: number;
  /** 1-based index of the first look with Λ >= 1/α, or null. */
  firstRejectLook: number | null;
  /** Running intersection of the confidence sequences (still valid, never wider than the latest); null = unbounded. */
  csLower: number | null;
  csUpper: number | null;
}

/** State before the first look. */
export function createAlwaysValidState(): AlwaysValidState {
  return { looks: 0, pValue: 1, maxLogLambda: 0, firstRejectLook: null, csLower: null, csUpper: null };
}

/**
 * Folds one look into the state: p_n = min(p_{n−1}, 1/Λ_n), intersected CS. A NaN ln Λ (impossible from this
 * module) counts as Λ = 1 so it can never lower the p-value (docs/statistics.md, "Running state across looks").
 */
export function observeLook(
  state: AlwaysValidState,
  logLambda: number,
  alpha: number,
  interval?: { csLower: number; csUpper: number },
): AlwaysValidState {
  const safeLog = Number.isNaN(logLambda) ? 0 : logLambda;
  const looks = state.looks + 1;
  const rejectsNow = safeLog >= -Math.log(alpha);
  return {
    looks,
    pValue: Math.min(state.pValue, Math.exp(-safeLog), 1),
    maxLogLambda: Math.min(Number.MAX_VALUE, Math.max(state.maxLogLambda, safeLog)),
    firstRejectLook: state.firstRejectLook ?? (rejectsNow ? looks : null),
    csLower: tighter(state.csLower, interval?.csLower, Math.max),
    csUpper: tighter(state.csUpper, interval?.csUpper, Math.min),
  };
}

/** Combines a stored bound (null = unbounded) with a new one, keeping only finite values. */
function tighter(stored: number | null, next: number | undefined, pick: (a: number, b: number) => number): number | null {
  if (next === undefined || !Number.isFinite(next)) return stored;
  return stored === null ? next : pick(stored, next);
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

/** AlwaysValidState from parsed JSON, or null when the shape or values are invalid. */
export function parseAlwaysValidState(value: unknown): AlwaysValidState | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const record = value as Record<string, unknown>;
  const { looks, pValue, maxLogLambda, firstRejectLook, csLower, csUpper } = record;
  if (!isFiniteNumber(looks) || !Number.isInteger(looks) || looks < 0) return null;
  if (!isFiniteNumber(pValue) || pValue < 0 || pValue > 1 || !isFiniteNumber(maxLogLambda)) return null;
  if (firstRejectLook !== null && !(isFiniteNumber(firstRejectLook) && Number.isInteger(firstRejectLook) && firstRejectLook >= 1)) return null;
  if ((csLower !== null && !isFiniteNumber(csLower)) || (csUpper !== null && !isFiniteNumber(csUpper))) return null;
  return { looks, pValue, maxLogLambda, firstRejectLook, csLower, csUpper };
}

// --- Count e-values ---------------------------------------------------------------------------------------

/** An e-value at one look. */
export interface EValueLook {
  status: TestStatus;
  logEValue: number;
  /** e (may be Infinity when ln e > 709; use logEValue). */
  eValue: number;
  /** min(1, 1/e) at this look; the always-valid p-value is its running minimum (observeLook). */
  pLook: number;
}

function eValueLook(logEValue: number, status: TestStatus = 'ok'): EValueLook {
  return { status, logEValue, eValue: Math.exp(logEValue), pLook: Math.min(1, Math.exp(-logEValue)) };
}

/**
 * Sequential McNemar e-value on discordant counts (docs/statistics.md, "Count e-values"): Beta(a, a)-binomial
 * Bayes factor against P(c-type | discordant) = ½, E = B(a + c, a + b)/B(a, a)·2^{b+c}. Depends only on the
 * current (b, c).
 * b + c = 0 (or negative counts, a prior <= 0) → E = 1, `insufficient-data`.
 */
export function sequentialMcNemar(b: number, c: number, priorA = 1): EValueLook {
  if (!(b + c > 0 && b >= 0 && c >= 0 && priorA > 0)) return eValueLook(0, 'insufficient-data');
  return eValueLook(logBeta(priorA + c, priorA + b) - logBeta(priorA, priorA) + (b + c) * Math.LN2);
}

/** Options of the one-sample SLO e-value. */
export interface SloOptions {
  /** SLO error rate p₀: H0 is p <= p₀. */
  p0: number;
  /** Beta prior (a, b) on the error rate above p₀; concentrate it where real breaches live, e.g. Beta(1, 99). */
  priorA?: number;
  priorB?: number;
}

/**
 * One-sample error-budget e-value for H0: p <= p₀, a Beta prior truncated to p > p₀
 * (docs/statistics.md, "Count e-values"):
 * E = [B(a+x, b+n−x)·I_{1−p₀}(b+n−x, a+x)] / [B(a, b)·I_{1−p₀}(b, a)] / (p₀^x (1−p₀)^{n−x}).
 * Computed in log space (the incomplete-beta tails underflow for large n). n = 0 (or errors outside [0, n],
 * p₀ outside (0, 1), a prior <= 0) → E = 1, `insufficient-data`.
 */
export function sloEValue(errors: number, n: number, options: SloOptions): EValueLook {
  const a = options.priorA ?? 1;
  const b = options.priorB ?? 1;
  const p0 = options.p0;
  if (!(n > 0 && errors >= 0 && errors <= n && p0 > 0 && p0 < 1 && a > 0 && b > 0)) return eValueLook(0, 'insufficient-data');
  // I_{1−p₀}(β, α) = P(Beta(α, β) > p₀): the upper tail of Beta(α, β) at p₀.
  const logPosteriorMass = logIncompleteBeta(a + errors, b + n - errors, p0, 1 - p0).logUpper;
  const logPriorMass = logIncompleteBeta(a, b, p0, 1 - p0).logUpper;
  const logNullLikelihood = errors * Math.log(p0) + (n - errors) * Math.log1p(-p0);
  return eValueLook(logBeta(a + errors, b + n - errors) + logPosteriorMass - logBeta(a, b) - logPriorMass - logNullLikelihood);
}
