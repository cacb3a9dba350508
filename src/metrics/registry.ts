// The one prom-client registry: every Switchyard metric is defined here, with fixed low-cardinality labels.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** All metrics of one Switchyard instance. A fresh set per instance keeps tests and embedded uses independent. */
export class Metrics {
  readonly registry = new Registry();

  readonly requests = new Counter({
    name: 'switchyard_requests_total',
    help: 'Requests answered, by route, serving variant, its role and status class.',
    labelNames: ['route', 'variant', 'role', 'code_class'] as const,
    registers: [this.registry],
  });

  readonly requestDuration = new Histogram({
    name: 'switchyard_request_duration_seconds',
    help: 'Time from request arrival to the end of the response, by route, variant and role.',
    labelNames: ['route', 'variant', 'role'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly upstreamErrors = new Counter({
    name: 'switchyard_upstream_errors_total',
    help: 'Upstream failures by route, variant and kind (connect, timeout, reset, status_5xx, other).',
    labelNames: ['route', 'variant', 'kind'] as const,
    registers: [this.registry],
  });

  readonly fallbacks = new Counter({
    name: 'switchyard_fallbacks_total',
    help: 'Challenger failures answered by the champion instead (the failure still counts against the challenger).',
    labelNames: ['route', 'variant'] as const,
    registers: [this.registry],
  });

  readonly splitPercent = new Gauge({
    name: 'switchyard_split_percent',
    help: 'Live share of traffic (percent) per route and variant; shadow variants report their mirrored share.',
    labelNames: ['route', 'variant'] as const,
    registers: [this.registry],
  });

  readonly policyReloads = new Counter({
    name: 'switchyard_policy_reloads_total',
    help: 'Policy reload attempts by result (success, invalid, error).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly rejected = new Counter({
    name: 'switchyard_rejected_requests_total',
    help: 'Requests refused before any upstream was contacted, by reason (no_route, method, body_too_large, draining).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly shadowRequests = new Counter({
    name: 'switchyard_shadow_requests_total',
    help: 'Mirrored requests sent to shadow challengers, by route and result (ok, error, timeout).',
    labelNames: ['route', 'result'] as const,
    registers: [this.registry],
  });

  readonly shadowDropped = new Counter({
    name: 'switchyard_shadow_dropped_total',
    help: 'Mirrors not sent, by route and reason (in_flight_full, body_too_large, body_streamed, method).',
    labelNames: ['route', 'reason'] as const,
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }
}

/** Status class label for a status code, without allocating a string per request. */
const codeClasses = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;
export function codeClass(status: number): (typeof codeClasses)[number] {
  const index = Math.floor(status / 100) - 1;
  return codeClasses[index < 0 ? 0 : index > 4 ? 4 : index]!;
}
