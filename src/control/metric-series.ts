// Pre-creates at 0 every counter series the alert rules and the Grafana dashboard read, for each route and reason it can take, so increase() and rate() see the first event.
//
// A counter series that appears with the value 1 gives `increase()` nothing to compare with: Prometheus takes its
// first sample as the start, so the rollback alert stayed silent after a real rollback (issue 20). Every series a rule
// or a panel reads therefore exists from start (global ones) or from the moment its route is installed (per route).
import type { UpstreamErrorKind } from '../proxy/error-map.js';
import type { ShadowMirror } from '../shadow/mirror.js';
import { guardrailNames } from './guardrails.js';
import type { DecisionSnapshot } from '../decision/snapshot.js';
import type { Metrics } from '../metrics/registry.js';

/** Why a route was rolled back: a guardrail's name, or an operator's `manual` rollback. */
export const rollbackReasons = [...guardrailNames, 'manual'] as const;

/** Upstream failure kinds counted in switchyard_upstream_errors_total (the client's kinds count as rejected requests). */
export const upstreamErrorKinds = ['connect', 'timeout', 'reset', 'status_5xx', 'busy', 'other'] as const satisfies readonly UpstreamErrorKind[];

/** Why a mirror was not sent (switchyard_shadow_dropped_total). */
export const shadowDropReasons = ['in_flight_full', 'body_too_large', 'body_streamed', 'method'] as const satisfies readonly ('in_flight_full' | Parameters<ShadowMirror['skipped']>[2])[];

export const shadowResults = ['ok', 'error', 'timeout'] as const;
export const pairResults = ['agree', 'disagree', 'unparsed', 'unpaired'] as const;
export const policyReloadResults = ['success', 'invalid', 'error'] as const;
export const flagUpdateResults = ['applied', 'unchanged', 'missing', 'invalid', 'bootstrap', 'error', 'unauthorized'] as const;
export const rejectReasons = ['no_route', 'method', 'bad_path', 'bad_host', 'bad_request', 'headers_too_large', 'headers_timeout', 'body_too_large', 'draining', 'client_abort', 'client_timeout'] as const;
/** Buffers of the prediction log that drop records, and why (switchyard_pairs_dropped_total). */
export const recorderDrops = [
  ['recorder', 'queue_full'], ['recorder', 'memory_budget'], ['recorder', 'worker_down'], ['recorder', 'internal_error'],
  ['pending', 'memory_budget'], ['join_table', 'memory_budget'],
] as const;
export const sinkDropReasons = ['memory_budget', 'disk_error', 'closed'] as const;

/** The series that exist whatever the policy: reload results, flag updates, rejections, prediction-log drops. */
export function precreateGlobalSeries(metrics: Metrics, options: { pairSink?: string } = {}): void {
  for (const result of policyReloadResults) metrics.policyReloads.labels(result).inc(0);
  for (const result of flagUpdateResults) metrics.flagUpdates.labels(result).inc(0);
  for (const reason of rejectReasons) metrics.rejected.labels(reason).inc(0);
  for (const [sink, reason] of recorderDrops) metrics.recordsDropped.labels(sink, reason).inc(0);
  if (options.pairSink !== undefined && options.pairSink !== 'none') for (const reason of sinkDropReasons) metrics.recordsDropped.labels(options.pairSink, reason).inc(0);
}

/** Compiled routes whose series exist, per registry (a reload compiles new route objects; tests build many registries). */
const prepared = new WeakMap<Metrics, WeakSet<object>>();

/**
 * The series of every route of a snapshot: rollbacks per reason, promotions, the rolled-back gauge, upstream errors,
 * fallbacks and served requests per arm, shadow results, drops and pairs. Cheap to repeat (existing series keep their
 * values, and a route already prepared is only checked for its rolled-back gauge); series of a route a reload removed
 * stay, like every counter of a removed route.
 */
export function precreateRouteSeries(metrics: Metrics, snapshot: DecisionSnapshot): void {
  let seen = prepared.get(metrics);
  if (seen === undefined) prepared.set(metrics, (seen = new WeakSet()));
  for (const decision of snapshot.decisions) {
    const route = decision.route.name;
    metrics.routeRolledBack.labels(route).set(decision.state.rolledBack ? 1 : 0);
    // A snapshot swap (a split change, a rollback) keeps the compiled route: its series exist already.
    if (seen.has(decision.route)) continue;
    seen.add(decision.route);
    for (const reason of rollbackReasons) metrics.rollbacks.labels(route, reason).inc(0);
    metrics.promotions.labels(route).inc(0);
    for (const arm of decision.route.arms) {
      for (const kind of upstreamErrorKinds) metrics.upstreamErrors.labels(route, arm.name, kind).inc(0);
      if (arm.role === 'challenger') metrics.fallbacks.labels(route, arm.name).inc(0);
      for (const codeClass of ['2xx', '4xx', '5xx']) metrics.requests.labels(route, arm.name, arm.role, codeClass).inc(0);
    }
    if (decision.route.policy.challengers.some((c) => c.mode === 'shadow')) {
      for (const result of shadowResults) metrics.shadowRequests.labels(route, result).inc(0);
      for (const reason of shadowDropReasons) metrics.shadowDropped.labels(route, reason).inc(0);
    }
    if (decision.route.policy.challengers.length > 0) for (const result of pairResults) metrics.pairs.labels(route, result).inc(0);
  }
}
