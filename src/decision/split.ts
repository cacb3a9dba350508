// Pure per-request decisions: which route matches a path, and which arm serves (and which arms mirror) a bucket.
import type { Arm, DecisionSnapshot, RouteDecision } from './snapshot.js';

/**
 * Finds the route with the longest prefix of the request target (path and query as sent); null when none matches
 * (never forward unmatched traffic). A radix-tree walk: its cost does not grow with the number of routes.
 */
export function matchRoute(snapshot: DecisionSnapshot, path: string): RouteDecision | null {
  return snapshot.byPrefix.match(path) ?? null;
}

/** Picks the serving arm for a bucket 1..100: a challenger whose range covers it, else the champion. */
export function servingArm(decision: RouteDecision, bucket: number): Arm {
  if (bucket <= decision.servedTotal) {
    const served = decision.served;
    for (let i = 0; i < served.length; i++) {
      const range = served[i]!;
      if (bucket <= range.upTo) return range.arm;
    }
  }
  return decision.route.arms[0]!;
}

/** Each served challenger's share of traffic in percent, from the cumulative ranges the request path reads. */
export function servedShares(decision: RouteDecision): Map<string, number> {
  const shares = new Map<string, number>();
  let previous = 0;
  for (const range of decision.served) {
    shares.set(range.arm.name, range.upTo - previous);
    previous = range.upTo;
  }
  return shares;
}
