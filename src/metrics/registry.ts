// The one prom-client registry: every Switchyard metric is defined here, with fixed low-cardinality labels.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { HotCounter, HotHistogram } from './hot.js';

/** All metrics of one Switchyard instance. A fresh set per instance keeps tests and embedded uses independent. */
export class Metrics {
  readonly registry = new Registry();

  readonly requests = new HotCounter({
    name: 'switchyard_requests_total',
    help: 'Requests answered, by route, serving variant, its role and status class.',
    labelNames: ['route', 'variant', 'role', 'code_class'] as const,
    registers: [this.registry],
  });

  readonly requestDuration = new HotHistogram({
    name: 'switchyard_request_duration_seconds',
    help: 'Upstream time of answered requests, from when the request was handed to the upstream (a buffered body once arrived, a streamed one once its last byte was sent) to the end of the response, by route, variant and role.',
    labelNames: ['route', 'variant', 'role'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly streamTtft = new HotHistogram({
    name: 'switchyard_stream_ttft_seconds',
    help: 'Streamed answers (a route with a streaming policy, or text/event-stream): time from the upstream start to the first body byte, by route and variant.',
    labelNames: ['route', 'variant'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly streamGap = new HotHistogram({
    name: 'switchyard_stream_gap_seconds',
    help: 'Streamed answers: every gap between two consecutive body chunks (inter-token latency), by route and variant.',
    labelNames: ['route', 'variant'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly streamTokens = new HotHistogram({
    name: 'switchyard_stream_output_tokens',
    help: 'Streamed answers: output tokens (the usage of the last event when present, else events or chunks counted), by route and variant.',
    labelNames: ['route', 'variant'] as const,
    buckets: [1, 4, 16, 64, 256, 1024, 4096, 16384],
    registers: [this.registry],
  });

  readonly streamTokensPerSecond = new HotHistogram({
    name: 'switchyard_stream_tokens_per_second',
    help: 'Streamed answers: output tokens per second from the first body byte to the last, by route and variant.',
    labelNames: ['route', 'variant'] as const,
    buckets: [1, 5, 10, 20, 50, 100, 200, 500, 1000, 5000],
    registers: [this.registry],
  });

  readonly streamInterrupted = new HotCounter({
    name: 'switchyard_stream_interrupted_total',
    help: 'Streamed 2xx answers that ended without their terminal marker or were cut by an upstream error after the headers, by route and variant.',
    labelNames: ['route', 'variant'] as const,
    registers: [this.registry],
  });

  readonly upstreamErrors = new Counter({
    name: 'switchyard_upstream_errors_total',
    help: 'Upstream failures by route, variant and kind (connect, timeout, reset, status_5xx, busy, other).',
    labelNames: ['route', 'variant', 'kind'] as const,
    registers: [this.registry],
  });

  readonly upstreamRetries = new Counter({
    name: 'switchyard_upstream_retries_total',
    help: 'Requests sent once more on a fresh connection because the upstream closed the one they went out on before answering.',
    labelNames: ['route', 'variant'] as const,
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
    help: 'Requests refused or abandoned through no fault of a variant, by reason (no_route, method, bad_path, bad_host, bad_request, headers_too_large, headers_timeout, body_too_large, draining, client_abort, client_timeout).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly requestLogDropped = new Counter({
    name: 'switchyard_request_log_dropped_total',
    help: 'Request log lines not written because the per-second budget was spent (SWITCHYARD_REQUEST_LOG_MAX_PER_SECOND).',
    registers: [this.registry],
  });

  readonly shadowRequests = new HotCounter({
    name: 'switchyard_shadow_requests_total',
    help: 'Mirrored requests sent to shadow challengers, by route and result (ok, error, timeout).',
    labelNames: ['route', 'result'] as const,
    registers: [this.registry],
  });

  readonly shadowDropped = new Counter({
    name: 'switchyard_shadow_dropped_total',
    help: 'Mirrors not sent, by route and reason (in_flight_full, body_too_large, body_streamed, method, shed, rewrite_not_json, rewrite_no_target).',
    labelNames: ['route', 'reason'] as const,
    registers: [this.registry],
  });

  readonly shadowDuration = new HotHistogram({
    name: 'switchyard_shadow_duration_seconds',
    help: 'Latency of mirrored requests to shadow challengers (never part of the served latency).',
    labelNames: ['route', 'variant'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly pairs = new Counter({
    name: 'switchyard_pairs_total',
    help: 'Paired predictions by route and result (agree, disagree, unparsed, unpaired).',
    labelNames: ['route', 'result'] as const,
    registers: [this.registry],
  });

  readonly agreement = new Gauge({
    name: 'switchyard_prediction_agreement_ratio',
    help: 'Share of parsed pairs whose champion and challenger predictions agree, since start.',
    labelNames: ['route'] as const,
    registers: [this.registry],
  });

  readonly recordsWritten = new Counter({
    name: 'switchyard_records_written_total',
    help: 'Prediction records written by sink.',
    labelNames: ['sink'] as const,
    registers: [this.registry],
  });

  readonly recordsDropped = new Counter({
    name: 'switchyard_pairs_dropped_total',
    help: 'Prediction records lost by sink and reason (queue_full, memory_budget, disk_error, closed, worker_down, internal_error); sink="pending" and sink="join_table" with memory_budget count pairs written unpaired and predictions forgotten before their TTL to stay within budget, sink="prediction_stats" labels, score buckets or drift values not counted; serving is never blocked.',
    labelNames: ['sink', 'reason'] as const,
    registers: [this.registry],
  });

  readonly recorderBytes = new Gauge({
    name: 'switchyard_recorder_buffer_bytes',
    help: 'Bytes held by each prediction-log buffer (to_worker, queue, pending, join_table, sink), as counted against its budget; set at scrape time.',
    labelNames: ['buffer'] as const,
    registers: [this.registry],
  });

  readonly recorderBudget = new Gauge({
    name: 'switchyard_recorder_budget_bytes',
    help: 'Byte budget of each prediction-log buffer, derived from SWITCHYARD_MEMORY_MB.',
    labelNames: ['buffer'] as const,
    registers: [this.registry],
  });

  readonly feedback = new Counter({
    name: 'switchyard_feedback_total',
    help: 'Ground-truth labels received by result (joined, unknown_request, ambiguous_request).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  /** Read at scrape time by the flag gauges below; installed by the flag source (null: no flags in use). */
  flagProbe: FlagMetricsProbe | null = null;

  readonly flagUpdates = new Counter({
    name: 'switchyard_flag_updates_total',
    help: 'Flag refresh outcomes by result: applied (a route split changed), unchanged (fetched, nothing new for our routes), missing (a route flag is absent: champion only), invalid (flag content ignored in part, see logs), bootstrap (bootstrap file applied), error (Unleash unreachable or failing), unauthorized (401/403).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly flagSnapshotAge = new Gauge({
    name: 'switchyard_flag_snapshot_age_seconds',
    help: 'Seconds since Unleash last confirmed the flag snapshot (since start when it never did); 0 when no route follows a flag.',
    registers: [this.registry],
    collect: () => {
      const age = this.flagProbe?.ageSeconds() ?? null;
      if (age === null) this.flagSnapshotAge.reset();
      else this.flagSnapshotAge.set(age);
    },
  });

  readonly flagStatus = new Gauge({
    name: 'switchyard_flag_status',
    help: 'Flag status of each flag-driven route: 1 on the current status (live, stale, bootstrap, unauthorized, missing, unconfigured), 0 on the others.',
    labelNames: ['route', 'status'] as const,
    registers: [this.registry],
    collect: () => {
      this.flagStatus.reset();
      for (const [route, current] of this.flagProbe?.statuses() ?? []) {
        for (const status of this.flagProbe?.statusNames ?? []) this.flagStatus.labels(route, status).set(status === current ? 1 : 0);
      }
    },
  });

  readonly guardrailState = new Gauge({
    name: 'switchyard_guardrail_state',
    help: 'Guardrail state per route: 0 collecting (too little data), 1 passing (healthy or confidently within margin), 2 breach.',
    labelNames: ['route', 'guardrail'] as const,
    registers: [this.registry],
  });

  readonly predictionDivergence = new Gauge({
    name: 'switchyard_prediction_divergence',
    help: 'Jensen-Shannon divergence (nats, 0 to ln 2) between a challenger\'s and the champion\'s prediction distributions on the same traffic, in the current experiment (docs/statistics.md, "Prediction divergence and drift").',
    labelNames: ['route', 'variant'] as const,
    registers: [this.registry],
  });

  readonly drift = new Gauge({
    name: 'switchyard_drift',
    help: 'Population stability index of the last judged window against the reference window, per route, variant and feature ("prediction": the variant\'s own predictions).',
    labelNames: ['route', 'variant', 'feature'] as const,
    registers: [this.registry],
  });

  readonly rolloutStep = new Gauge({
    name: 'switchyard_rollout_step',
    help: 'Current progressive-rollout step index per route (-1 when the route has no rollout or has not started).',
    labelNames: ['route'] as const,
    registers: [this.registry],
  });

  readonly awaitingApproval = new Gauge({
    name: 'switchyard_route_awaiting_approval',
    help: 'Per route: 1 while its rollout waits at an approval gate (a person or the confirm webhook), else 0.',
    labelNames: ['route'] as const,
    registers: [this.registry],
  });

  readonly confirmRequests = new Counter({
    name: 'switchyard_confirm_requests_total',
    help: 'Asks of a rollout\'s confirm webhook by route and result (confirmed: 2xx, refused: another status, failed: no answer in time).',
    labelNames: ['route', 'result'] as const,
    registers: [this.registry],
  });

  readonly rollbacks = new Counter({
    name: 'switchyard_rollbacks_total',
    help: 'Rollbacks by route and reason (a guardrail name, or manual).',
    labelNames: ['route', 'reason'] as const,
    registers: [this.registry],
  });

  readonly promotions = new Counter({
    name: 'switchyard_promotions_total',
    help: 'Challengers promoted, by route: at the last rollout step, as an A/B winner, or by a person (switchyard promote).',
    labelNames: ['route'] as const,
    registers: [this.registry],
  });

  readonly routeRolledBack = new Gauge({
    name: 'switchyard_route_rolled_back',
    help: 'Per route, 1 while it is rolled back (all traffic on the champion until a person resumes it), else 0.',
    labelNames: ['route'] as const,
    registers: [this.registry],
  });

  readonly notifications = new Counter({
    name: 'switchyard_notifications_total',
    help: 'Notifications by sink (its configured name), event (rollback, promote, step, approval.needed, breach, flag.stale) and result: delivered, failed (after retries, or refused with a 4xx), dropped (queue full).',
    labelNames: ['sink', 'event', 'result'] as const,
    registers: [this.registry],
  });

  readonly auditStream = new Counter({
    name: 'switchyard_audit_stream_events_total',
    help: 'Audit events shipped to the fleet-wide Redis trail by result: published, dropped (the queue waiting for Redis was full; the event stays in the local audit.ndjson).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly stateSaveFailures = new Counter({
    name: 'switchyard_state_save_failures_total',
    help: 'Failed saves of the control state (state.json: overrides, pauses, rollbacks); the change stays live in memory and the save is retried on the next change and with a backoff.',
    registers: [this.registry],
  });

  readonly stateUnsaved = new Gauge({
    name: 'switchyard_state_unsaved_changes',
    help: 'Control-state changes live in memory but not yet saved to state.json (a restart would lose them); stays above 0 while saves fail.',
    registers: [this.registry],
  });

  readonly coordinationDegraded = new Gauge({
    name: 'switchyard_coordination_degraded',
    help: '1 while Redis coordination is configured but Redis is unreachable or slow: this replica decides from its own statistics (hard breakers on, rollout steps held); 0 otherwise.',
    registers: [this.registry],
  });

  readonly leader = new Gauge({
    name: 'switchyard_leader',
    help: 'Per route, 1 on the replica holding the lease (it judges the pooled statistics and acts), 0 on the others; absent without Redis.',
    labelNames: ['route'] as const,
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }
}

/** What the flag gauges read at scrape time (implemented by the flag source). */
export interface FlagMetricsProbe {
  readonly statusNames: readonly string[];
  ageSeconds(): number | null;
  statuses(): Iterable<readonly [route: string, status: string]>;
}

/** Status class label for a status code, without allocating a string per request. */
const codeClasses = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;
export function codeClass(status: number): (typeof codeClasses)[number] {
  const index = Math.floor(status / 100) - 1;
  return codeClasses[index < 0 ? 0 : index > 4 ? 4 : index]!;
}
