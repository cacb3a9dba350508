// Reads Switchyard's admin /metrics and counts the requests each variant served (proves a split really happened).
import { scrapeMetrics, sumBy } from './metrics.js';

/** Requests answered per serving variant, summed over routes, roles and status classes. */
export async function servedByVariant(adminUrl: string): Promise<Record<string, number>> {
  return sumBy(await scrapeMetrics(adminUrl), 'switchyard_requests_total', ['variant']);
}

/** Turns counts into shares of the total (0 when nothing was served). */
export function shares(counts: Record<string, number>): Record<string, number> {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  return Object.fromEntries(Object.entries(counts).map(([variant, n]) => [variant, total > 0 ? n / total : 0]));
}
