// McNemar's test on discordant pairs for shadow-mode classification (docs/statistics.md, "Shadow mode: paired tests", "Fixed-horizon tests and their conventions").
import { binomialCdf, chiSquareSf } from './special.js';
import type { TestStatus } from './types.js';

/** Result of McNemar's test. */
export interface McNemarResult {
  status: TestStatus;
  /** Champion correct & challenger wrong. */
  b: number;
  /** Champion wrong & challenger correct. */
  c: number;
  /** Exact: min(1, 2·Binom(min(b, c); b + c, ½)). */
  exactPValue: number;
  /** (|b − c| − 1)²/(b + c), not clamped (b = c gives 1/(b + c)). */
  chiSquareCorrected: number;
  correctedPValue: number;
  /** (b − c)²/(b + c). */
  chiSquare: number;
  uncorrectedPValue: number;
}

/**
 * McNemar's test of H0: P(b-type discordance) = P(c-type). Prefer the exact p-value when b + c < 25
 * (docs/statistics.md, "Fixed-horizon tests and their conventions").
 * b + c = 0: statistics NaN, every p-value 1, status `insufficient-data`.
 */
export function mcNemarTest(b: number, c: number): McNemarResult {
  const discordant = b + c;
  if (!(discordant > 0)) {
    return { status: 'insufficient-data', b, c, exactPValue: 1, chiSquareCorrected: NaN, correctedPValue: 1, chiSquare: NaN, uncorrectedPValue: 1 };
  }
  const exactPValue = Math.min(1, 2 * binomialCdf(Math.min(b, c), discordant, 0.5));
  const corrected = Math.abs(b - c) - 1;
  const chiSquareCorrected = (corrected * corrected) / discordant;
  const chiSquare = ((b - c) * (b - c)) / discordant;
  return {
    status: 'ok',
    b,
    c,
    exactPValue,
    chiSquareCorrected,
    correctedPValue: chiSquareSf(chiSquareCorrected, 1),
    chiSquare,
    uncorrectedPValue: chiSquareSf(chiSquare, 1),
  };
}
