// Turns the recorder's judged drift windows into metrics and `drift` audit events (the notifier forwards audit events to webhooks).
import type { Metrics } from '../metrics/registry.js';
import { judgeWindows, type DriftResult } from '../analysis/drift.js';
import type { DriftPolicy } from '../config/policy-schema.js';
import type { DriftWindow } from '../record/prediction-stats.js';
import type { DecisionSnapshot } from '../decision/snapshot.js';
import type { AuditLog } from './audit.js';

/** Where drift results come from: the recorder's last judged window per variant and feature of a route. */
export interface DriftSource {
  predictionsOf(route: string): { drift: readonly DriftWindow[] } | null;
}

/**
 * Publishes each newly judged window once: its PSI as switchyard_drift{route,variant,feature}, and, when it drifted,
 * a `drift` audit event with the evidence (statistics, thresholds, sample sizes), which a retraining pipeline can
 * follow through GET /v1/events or the webhooks. Remembers one window index per route, variant and feature (bounded
 * by the policy's features).
 */
export class DriftEvents {
  readonly #seen = new Map<string, number>();
  readonly #audit: AuditLog;
  readonly #metrics: Metrics;
  /** The routes of the last snapshot that have a drift policy (recomputed once per snapshot swap). */
  #watched: { snapshot: DecisionSnapshot | null; routes: [string, DriftPolicy][] } = { snapshot: null, routes: [] };

  constructor(audit: AuditLog, metrics: Metrics) {
    this.#audit = audit;
    this.#metrics = metrics;
  }

  /** Looks at every route of the snapshot with a drift policy; returns the drift events appended. */
  publishAll(snapshot: DecisionSnapshot, source: DriftSource | null): number {
    if (this.#watched.snapshot !== snapshot) {
      const routes: [string, DriftPolicy][] = [];
      for (const decision of snapshot.decisions) if (decision.route.policy.drift !== undefined) routes.push([decision.route.name, decision.route.policy.drift]);
      this.#watched = { snapshot, routes };
    }
    let appended = 0;
    for (const [route, policy] of this.#watched.routes) appended += this.publish(route, policy, source);
    return appended;
  }

  /** Looks at the route's latest results; returns the drift events appended. */
  publish(route: string, policy: DriftPolicy | undefined, source: DriftSource | null): number {
    if (policy === undefined) return 0;
    let appended = 0;
    for (const window of source?.predictionsOf(route)?.drift ?? []) {
      const key = `${route}\u0000${window.variant}\u0000${window.feature}`;
      if ((this.#seen.get(key) ?? -1) >= window.window) continue;
      const [result] = judgeWindows([window], policy);
      this.#seen.set(key, window.window);
      if (result === undefined) continue;
      this.#metrics.drift.labels(route, result.variant, result.feature).set(result.psi);
      if (!result.drifted) continue;
      this.#audit.append({ who: 'recorder', action: 'drift', route, before: null, after: null, detail: { ...result, reason: describe(result) } });
      appended++;
    }
    return appended;
  }

  /** Forgets a route's windows (its policy changed: the recorder starts new references). */
  forget(route: string): void {
    for (const key of [...this.#seen.keys()]) if (key.startsWith(`${route}\u0000`)) this.#seen.delete(key);
  }
}

function describe(r: DriftResult): string {
  const which = r.feature === 'prediction' ? `${r.variant}'s predictions` : `input ${r.feature} of ${r.variant}`;
  return `${which} drifted in window ${r.window} (ended ${r.endedAt}): PSI ${r.psi.toFixed(3)} (threshold ${r.psiThreshold.toFixed(3)}), Jensen-Shannon ${r.jensenShannon.toFixed(4)} (threshold ${r.jsThreshold.toFixed(4)}), ${r.nCurrent} values against ${r.nReference} in the reference window`;
}
