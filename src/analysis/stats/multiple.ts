// Multiple-testing adjustments of p-values: Bonferroni, Holm (FWER) and Benjamini-Hochberg (FDR), as R's p.adjust (docs/statistics.md, "Multiple testing").

/** Indexes of the finite p-values, sorted by p ascending (stable); NaN entries are left out of the family, as R does. */
function sortedFinite(pValues: readonly number[]): number[] {
  const order: number[] = [];
  for (let i = 0; i < pValues.length; i++) if (!Number.isNaN(pValues[i]!)) order.push(i);
  return order.sort((i, j) => pValues[i]! - pValues[j]!);
}

/** Bonferroni: min(1, m·p). NaN stays NaN and does not count in m. */
export function bonferroni(pValues: readonly number[]): number[] {
  const m = sortedFinite(pValues).length;
  return pValues.map((p) => (Number.isNaN(p) ? NaN : Math.min(1, m * p)));
}

/** Holm step-down: sort ascending, adj₍ᵢ₎ = max_{j<=i} min(1, (m − j + 1)·p₍ⱼ₎). Valid under any dependence (use it for rollback). */
export function holm(pValues: readonly number[]): number[] {
  const order = sortedFinite(pValues);
  const m = order.length;
  const adjusted = pValues.map(() => NaN);
  let runningMax = 0;
  for (let rank = 0; rank < m; rank++) {
    const index = order[rank]!;
    runningMax = Math.max(runningMax, Math.min(1, (m - rank) * pValues[index]!));
    adjusted[index] = runningMax;
  }
  return adjusted;
}

/** Benjamini–Hochberg step-up: adj₍ᵢ₎ = min_{j>=i} min(1, m·p₍ⱼ₎/j). Controls the FDR, not the chance of a false rollback. */
export function benjaminiHochberg(pValues: readonly number[]): number[] {
  const order = sortedFinite(pValues);
  const m = order.length;
  const adjusted = pValues.map(() => NaN);
  let runningMin = 1;
  for (let rank = m - 1; rank >= 0; rank--) {
    const index = order[rank]!;
    runningMin = Math.min(runningMin, (m * pValues[index]!) / (rank + 1));
    adjusted[index] = runningMin;
  }
  return adjusted;
}

/** Which hypotheses are rejected at level alpha given adjusted p-values (adjusted <= alpha; NaN never rejects). */
export function rejectedAt(adjusted: readonly number[], alpha: number): boolean[] {
  return adjusted.map((p) => p <= alpha);
}
