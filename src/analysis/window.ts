// Live per-route, per-arm statistics fed by the request path (O(1) per observation) for guardrails and analysis.
import type { GuardrailPolicy } from '../config/policy-schema.js';
import { defaultGuardrails } from '../config/policy-schema.js';
import { isClientFault, type ObservationPort, type ServedObservation, type ShadowObservation } from '../record/port.js';
import { createCounts, createMoments, mergeCounts, mergeMoments, pushCount, pushMoment, type Counts, type Moments } from './stats/index.js';

/** Latency floor for the log transform: sub-microsecond timings would otherwise dominate the log mean. */
const LATENCY_FLOOR_MS = 0.05;

/** Mergeable statistics of one arm (plain JSON, so replicas can sum them). */
export interface ArmTotals {
  /** Requests and failures (5xx or transport errors; intent-to-treat: a fallen-back request is a failure). */
  errors: Counts;
  /** Natural log of latency in ms. */
  logLatency: Moments;
  /** Requests slower than the champion's baseline p95 (counted once the threshold is fixed). */
  exceedance: Counts;
}

export function emptyTotals(): ArmTotals {
  return { errors: createCounts(), logLatency: createMoments(), exceedance: createCounts() };
}

export function mergeTotals(a: ArmTotals, b: ArmTotals): ArmTotals {
  return { errors: mergeCounts(a.errors, b.errors), logLatency: mergeMoments(a.logLatency, b.logLatency), exceedance: mergeCounts(a.exceedance, b.exceedance) };
}

/** Fixed-size ring of recent outcomes for the hard circuit breakers (no statistics, just the last N). */
class Recent {
  readonly failures: Uint8Array;
  readonly latencies: Float64Array;
  size = 0;
  next = 0;
  /** Outcomes pushed so far: names the ring's contents, so a look at an unchanged ring reuses the last p99. */
  pushes = 0;
  #p99: { n: number; pushes: number; p99: number; of: number } | null = null;
  /** Reused by every p99: the controller asks once per tick per arm, so the sort allocates nothing. */
  #sorted: Float64Array | null = null;
  constructor(capacity: number) {
    this.failures = new Uint8Array(capacity);
    this.latencies = new Float64Array(capacity);
  }
  push(failed: boolean, latencyMs: number): void {
    this.failures[this.next] = failed ? 1 : 0;
    this.latencies[this.next] = latencyMs;
    this.next = (this.next + 1) % this.failures.length;
    if (this.size < this.failures.length) this.size++;
    this.pushes++;
  }
  /** Failures among the last `n` outcomes (n <= capacity). */
  failuresInLast(n: number): { count: number; of: number } {
    const of = Math.min(n, this.size);
    let count = 0;
    for (let i = 1; i <= of; i++) count += this.failures[(this.next - i + this.failures.length) % this.failures.length]!;
    return { count, of };
  }
  /**
   * p99 of the last `n` latencies (exact order statistic). The controller looks every tick whether or not traffic
   * came; the typed-array sort is numeric and native, where `Array#sort` with a comparator was a quarter of an idle
   * replica's CPU (bench/README.md), and an unchanged ring is not sorted again.
   */
  p99OfLast(n: number): { p99: number; of: number } {
    const of = Math.min(n, this.size);
    if (of === 0) return { p99: 0, of: 0 };
    const cached = this.#p99;
    if (cached !== null && cached.n === n && cached.pushes === this.pushes) return { p99: cached.p99, of: cached.of };
    this.#sorted ??= new Float64Array(this.latencies.length);
    const values = this.#sorted.subarray(0, of);
    const capacity = this.latencies.length;
    for (let i = 1; i <= of; i++) values[i - 1] = this.latencies[(this.next - i + capacity) % capacity]!;
    values.sort();
    const p99 = values[Math.min(of - 1, Math.ceil(0.99 * of) - 1)]!;
    this.#p99 = { n, pushes: this.pushes, p99, of };
    return { p99, of };
  }
}

/** One arm's live window: mergeable totals plus the recent ring. */
export class ArmWindow {
  totals = emptyTotals();
  readonly recent: Recent;
  lastAt = 0;
  constructor(capacity: number) {
    this.recent = new Recent(capacity);
  }
}

/** Everything collected for one route in the current experiment epoch. */
export class RouteWindow {
  readonly champion: ArmWindow;
  /** Served challengers by name. */
  readonly challengers = new Map<string, ArmWindow>();
  /** Shadow challengers by name (errors and latency of the mirrored calls). */
  readonly shadows = new Map<string, ArmWindow>();
  /** Champion latencies collected until the baseline p95 is fixed. */
  baseline: number[] = [];
  p95ThresholdMs: number | null = null;
  readonly startedAt: number;
  readonly capacity: number;
  readonly baselineRequests: number;

  constructor(policy: GuardrailPolicy, now: number) {
    this.capacity = Math.max(policy.errorRate.window, policy.latency.window);
    this.baselineRequests = policy.latency.baselineRequests;
    this.champion = new ArmWindow(this.capacity);
    this.startedAt = now;
  }

  arm(kind: 'challenger' | 'shadow', name: string): ArmWindow {
    const map = kind === 'challenger' ? this.challengers : this.shadows;
    let found = map.get(name);
    if (!found) {
      found = new ArmWindow(this.capacity);
      map.set(name, found);
    }
    return found;
  }

  record(arm: ArmWindow, failed: boolean, latencyMs: number, isChampion: boolean, now: number): void {
    const t = arm.totals;
    pushCount(t.errors, failed);
    pushMoment(t.logLatency, Math.log(Math.max(LATENCY_FLOOR_MS, latencyMs)));
    if (this.p95ThresholdMs !== null) pushCount(t.exceedance, latencyMs > this.p95ThresholdMs);
    arm.recent.push(failed, latencyMs);
    arm.lastAt = now;
    if (isChampion && this.p95ThresholdMs === null) {
      this.baseline.push(latencyMs);
      if (this.baseline.length >= this.baselineRequests) {
        // Fixed once, from the champion's first requests, so the exceedance test compares like with like afterwards.
        const sorted = [...this.baseline].sort((a, b) => a - b);
        this.p95ThresholdMs = sorted[Math.ceil(0.95 * sorted.length) - 1]!;
        this.baseline = [];
      }
    }
  }
}

/** Failure for guardrails: a 5xx status or a transport error (client aborts are not the model's fault). */
function isFailure(status: number, errorKind: string | null): boolean {
  if (errorKind === 'client_abort') return false;
  return errorKind !== null || status >= 500;
}

/**
 * The observation port of the analysis side. `served` runs on the request path, so it only does arithmetic on
 * preallocated structures; everything statistical happens in the controller's tick.
 */
export class LiveWindows implements ObservationPort {
  readonly #windows = new Map<string, RouteWindow>();
  readonly #policies = new Map<string, GuardrailPolicy>();
  readonly #clock: () => number;

  constructor(clock: () => number = Date.now) {
    this.#clock = clock;
  }

  captureBytes(): number {
    return 0;
  }

  /** Current window of a route (created on first use with the route's guardrail policy). */
  window(route: string): RouteWindow {
    let found = this.#windows.get(route);
    if (!found) {
      found = new RouteWindow(this.#policies.get(route) ?? defaultGuardrails, this.#clock());
      this.#windows.set(route, found);
    }
    return found;
  }

  /** Sets a route's guardrail policy; the next window uses it. */
  setPolicy(route: string, policy: GuardrailPolicy): void {
    this.#policies.set(route, policy);
  }

  /** Starts a new experiment epoch for a route (after a rollback, a resume, a new challenger). */
  reset(route: string): void {
    this.#windows.delete(route);
  }

  served(o: ServedObservation): void {
    // The champion's answer given in place of a failed challenger belongs to the challenger's (failed) request.
    if (o.fallbackFor !== null || isClientFault(o.errorKind)) return;
    const window = this.window(o.route);
    const now = this.#clock();
    if (o.role === 'champion') window.record(window.champion, isFailure(o.status, o.errorKind), o.latencyMs, true, now);
    else window.record(window.arm('challenger', o.variant), o.fellBack || isFailure(o.status, o.errorKind), o.latencyMs, false, now);
  }

  shadowed(o: ShadowObservation): void {
    const window = this.window(o.route);
    window.record(window.arm('shadow', o.variant), isFailure(o.status, o.errorKind), o.latencyMs, false, this.#clock());
  }
}
