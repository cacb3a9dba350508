// Shared result vocabulary of the statistics engine: test status and alternatives.

/**
 * How far a result can be trusted.
 * - `ok`: every field is a number computed from the formula.
 * - `degenerate`: the formula is undefined for these data (zero variance, a zero margin, all differences zero).
 * - `insufficient-data`: too few observations (an empty arm, n < 2 for a variance, no discordant pairs).
 * When the status is not `ok`, the fields follow the convention documented on each function: for the
 * fixed-horizon tests that is the reference value (scipy's, NaN included where the vectors pin NaN); the
 * sequential tests never return NaN in a p-value, an e-value or a bound. Decision code must switch on
 * `status` and treat anything but `ok` as "no evidence".
 */
export type TestStatus = 'ok' | 'degenerate' | 'insufficient-data';

/** Direction of the alternative hypothesis, for the first sample/arm relative to the second (or to the null value). */
export type Alternative = 'two-sided' | 'greater' | 'less';

/** A two-sided interval [lower, upper]. */
export type Interval = readonly [lower: number, upper: number];
