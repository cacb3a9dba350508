// CUPED variance reduction with a pre-routing covariate (Deng et al. 2013, as GrowthBook; docs/statistics.md, "CUPED").
import { normalPValue } from './proportions.js';
import { mergeCoMoments, type CoMoments } from './streaming.js';
import type { TestStatus } from './types.js';

/** Result of a CUPED-adjusted difference in means (treatment − control). */
export interface CupedResult {
  status: TestStatus;
  /** θ = cov(Y, X)/var(X) over both arms pooled (0 when the covariate is constant). */
  theta: number;
  /** Ȳ_t − Ȳ_c. */
  deltaRaw: number;
  /** s²_Y,t/n_t + s²_Y,c/n_c. */
  varRaw: number;
  /** (Ȳ_t − θX̄_t) − (Ȳ_c − θX̄_c). */
  deltaCuped: number;
  /** Σ_arm (s²_Y + θ²s²_X − 2θ·s_XY)/n_arm. */
  varCuped: number;
  /** 1 − varCuped/varRaw. */
  varianceReduction: number;
  /** deltaCuped/sqrt(varCuped). */
  z: number;
  /** Two-sided normal p-value of z. */
  pValue: number;
}

/**
 * CUPED on streaming co-moments of (X = covariate known before routing, Y = outcome) per arm. The covariate must
 * not depend on the arm (e.g. input length, never the challenger's own output).
 * Conventions: an arm with n < 2 → z 0, p 1, `insufficient-data`; zero adjusted variance → z 0, p 1, `degenerate`.
 */
export function cuped(control: CoMoments, treatment: CoMoments): CupedResult {
  if (!(control.n > 1 && treatment.n > 1)) {
    return {
      status: 'insufficient-data',
      theta: NaN,
      deltaRaw: treatment.meanY - control.meanY,
      varRaw: NaN,
      deltaCuped: NaN,
      varCuped: NaN,
      varianceReduction: NaN,
      z: 0,
      pValue: 1,
    };
  }
  const pooled = mergeCoMoments(control, treatment);
  const theta = pooled.m2X > 0 ? pooled.cXY / pooled.m2X : 0;
  const armVariance = (arm: CoMoments): { raw: number; adjusted: number } => {
    const varY = arm.m2Y / (arm.n - 1);
    const varX = arm.m2X / (arm.n - 1);
    const covXY = arm.cXY / (arm.n - 1);
    return { raw: varY / arm.n, adjusted: (varY + theta * theta * varX - 2 * theta * covXY) / arm.n };
  };
  const c = armVariance(control);
  const t = armVariance(treatment);
  const deltaRaw = treatment.meanY - control.meanY;
  const varRaw = c.raw + t.raw;
  const deltaCuped = treatment.meanY - theta * treatment.meanX - (control.meanY - theta * control.meanX);
  const varCuped = c.adjusted + t.adjusted;
  const varianceReduction = 1 - varCuped / varRaw;
  if (!(varCuped > 0)) {
    return { status: 'degenerate', theta, deltaRaw, varRaw, deltaCuped, varCuped, varianceReduction, z: 0, pValue: 1 };
  }
  const z = deltaCuped / Math.sqrt(varCuped);
  return { status: 'ok', theta, deltaRaw, varRaw, deltaCuped, varCuped, varianceReduction, z, pValue: normalPValue(z, 'two-sided') };
}
