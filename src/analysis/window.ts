// Live per-route, per-arm statistics fed by the request path (O(1) per observation) for guardrails and analysis.
import type { GuardrailPolicy } from '../config/policy-schema.js';
import { defaultGuardrails } from '../config/policy-schema.js';
import { isVariantEvidence, type ObservationPort, type ServedObservation, type ShadowObservation, type StreamSummary } from '../record/port.js';
import { createCounts, createMoments, quickSelect, mergeCounts, mergeMoments, pushCount, pushMoment, type Counts, type Moments } from './stats/index.js';

/** Latency floor for the log transform: sub-microsecond timings would otherwise dominate the log mean. */
const LATENCY_FLOOR_MS = 0.05;

/**
 * Bits of the per-route "unit seen" bitmap used to count randomisation units for the sample-ratio check
 * (docs/statistics.md, "Sample ratio"): 2^18 bits = 32 KiB per route with sticky traffic, whatever the traffic.
 */
const UNIT_BITS_LOG2 = 18;

/** Mergeable statistics of one arm (plain JSON, so replicas can sum them). */
export interface ArmTotals {
  /** Requests and failures (5xx or transport errors; intent-to-treat: a fallen-back request is a failure). */
  errors: Counts;
  /** Natural log of latency in ms. */
  logLatency: Moments;
  /** Requests slower than the tail threshold (the champion's recent p95), counted once there is a threshold. */
  exceedance: Counts;
  /**
   * Requests slower than the tail threshold divided by the latency ratio margin: the share a challenger exactly at
   * the margin (this arm's latencies times the ratio) would put over the threshold. Read on the champion.
   */
  scaledExceedance: Counts;
  /** Requests slower than the route's p99 ceiling (the latency breaker). */
  overCeiling: Counts;
  /** Randomisation units first seen in the current sample-ratio epoch (a sticky key once, an unkeyed request each). */
  units: number;
  /** Latency samples refused as not a finite, non-negative number of ms (the request still counts for errors). */
  rejectedLatencies: number;
  /** Streamed answers only (docs/statistics.md, "Streaming service levels"); all zero on a route that streams nothing. */
  stream: StreamTotals;
}

/** Mergeable statistics of one arm's streamed answers. */
export interface StreamTotals {
  /** Natural log of the time to first byte in ms. */
  logTtft: Moments;
  /** Streams with at least one gap between chunks over the route's threshold (the unit judged is the answer). */
  stalled: Counts;
  /** Streams cut after a 2xx: no terminal marker, or an upstream error after the headers. */
  interrupted: Counts;
  /** Gaps between chunks and those over the threshold (reported: the share of gaps over it). */
  gaps: Counts;
  /** Output tokens and the generation time they took (first byte to last), for tokens per second. */
  tokens: number;
  generationMs: number;
}

export function emptyStreamTotals(): StreamTotals {
  return { logTtft: createMoments(), stalled: createCounts(), interrupted: createCounts(), gaps: createCounts(), tokens: 0, generationMs: 0 };
}

export function emptyTotals(): ArmTotals {
  return { errors: createCounts(), logLatency: createMoments(), exceedance: createCounts(), scaledExceedance: createCounts(), overCeiling: createCounts(), units: 0, rejectedLatencies: 0, stream: emptyStreamTotals() };
}

function mergeStreamTotals(a: StreamTotals, b: StreamTotals): StreamTotals {
  return {
    logTtft: mergeMoments(a.logTtft, b.logTtft),
    stalled: mergeCounts(a.stalled, b.stalled),
    interrupted: mergeCounts(a.interrupted, b.interrupted),
    gaps: mergeCounts(a.gaps, b.gaps),
    tokens: a.tokens + b.tokens,
    generationMs: a.generationMs + b.generationMs,
  };
}

export function mergeTotals(a: ArmTotals, b: ArmTotals): ArmTotals {
  return {
    errors: mergeCounts(a.errors, b.errors),
    logLatency: mergeMoments(a.logLatency, b.logLatency),
    exceedance: mergeCounts(a.exceedance, b.exceedance),
    scaledExceedance: mergeCounts(a.scaledExceedance, b.scaledExceedance),
    overCeiling: mergeCounts(a.overCeiling, b.overCeiling),
    units: a.units + b.units,
    rejectedLatencies: a.rejectedLatencies + b.rejectedLatencies,
    stream: mergeStreamTotals(a.stream, b.stream),
  };
}

/** A copy that the request path can no longer mutate (for payloads and reports). */
export function copyTotals(t: ArmTotals): ArmTotals {
  return mergeTotals(t, emptyTotals());
}

/** One arm's live window: its mergeable totals since the experiment began, and those of the current split epoch. */
export class ArmWindow {
  totals = emptyTotals();
  /** Totals since the route's split last changed (the current stratum; docs/statistics.md, "Ramps and drift"). */
  stratum = emptyTotals();
  lastAt = 0;
}

/** Most split epochs kept apart per experiment; beyond it the two oldest are merged (a rollout has a handful). */
const MAX_STRATA = 16;

/** One closed split epoch: the key of the split it served and each arm's totals in it (`armKey` names). */
export interface Stratum {
  key: string;
  arms: Map<string, ArmTotals>;
}

/** The champion's and one challenger's totals in one split epoch. */
export interface StratumPair {
  champion: ArmTotals;
  challenger: ArmTotals;
}

/**
 * What the guardrails compare: the champion's and one challenger's cumulative totals in the current experiment (this
 * replica's, or pooled across replicas by coordination), the guardrails' inputs (control/guardrails.ts).
 */
export interface ArmComparison {
  champion: ArmTotals;
  challenger: ArmTotals;
  /**
   * The same totals split by split epoch (docs/statistics.md, "Ramps and drift"). The statistical tests compare the
   * arms within each epoch and combine the differences, so a ramp (10 % then 50 %) during a change of traffic that hits
   * both arms alike cannot look like a difference between them. Absent or one epoch: the totals are compared directly.
   */
  strata?: readonly StratumPair[];
  /** The tail threshold (champion p95) once fixed, for the reasons shown to people. */
  p95ThresholdMs: number | null;
}

/** The champion's and one arm's totals in every epoch where both served. */
export function stratumPairs(strata: Iterable<Stratum>, key: string): StratumPair[] {
  const pairs: StratumPair[] = [];
  for (const stratum of strata) {
    const champion = stratum.arms.get('champion');
    const other = stratum.arms.get(key);
    if (champion !== undefined && other !== undefined) pairs.push({ champion, challenger: other });
  }
  return pairs;
}

/** Key of an arm in payloads and strata: `champion`, `challenger:<name>` or `shadow:<name>`. */
export function armKey(role: 'champion' | 'challenger' | 'shadow', name: string): string {
  return role === 'champion' ? 'champion' : `${role}:${name}`;
}

/** 32-bit FNV-1a of a string: spreads sticky keys over the unit bitmap independently of the bucketing hash. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** Everything collected for one route in the current experiment epoch. */
export class RouteWindow {
  readonly champion = new ArmWindow();
  /** Served challengers by name. */
  readonly challengers = new Map<string, ArmWindow>();
  /** Shadow challengers by name (errors and latency of the mirrored calls). */
  readonly shadows = new Map<string, ArmWindow>();
  /**
   * The champion's last `baselineRequests` latencies (a ring) the tail threshold is read from; allocated with the first
   * champion latency, so a route without traffic holds no ring (1,000 idle routes would hold 8 MB at the default).
   */
  #recentChampion: Float64Array | null = null;
  readonly #ringLength: number;
  /** Listed in LiveWindows' routes with traffic since the controller last took them (`takeTouched`). */
  touched = false;
  #recentCount = 0;
  /** Champion latencies recorded since the threshold was last read. */
  #sinceRefresh = 0;
  #scratch: Float64Array | null = null;
  /**
   * The champion's p95 over its last `baselineRequests` requests, read off the request path by `refreshThreshold` (the
   * controller's tick). It only ever depends on requests before the ones it classifies, which is all the exceedance
   * test needs to stay valid (docs/statistics.md, "Latency tail"), and it follows warm-up and drift.
   */
  p95ThresholdMs: number | null = null;
  /** p95ThresholdMs / latency ratio margin. */
  scaledThresholdMs: number | null = null;
  readonly ratio: number;
  readonly ceilingMs: number;
  readonly startedAt: number;
  /** Sticky keys seen in the current sample-ratio epoch (null until the first keyed request). */
  #unitsSeen: Uint32Array | null = null;
  /** Closed split epochs, oldest first, and the key of the current one ('' until the controller names it). */
  readonly #closed: Stratum[] = [];
  #stratumKey = '';

  constructor(policy: GuardrailPolicy, now: number) {
    this.#ringLength = policy.latency.baselineRequests;
    this.ratio = policy.latency.ratio;
    this.ceilingMs = policy.latency.p99CeilingMs;
    this.startedAt = now;
  }

  arm(kind: 'challenger' | 'shadow', name: string): ArmWindow {
    const map = kind === 'challenger' ? this.challengers : this.shadows;
    let found = map.get(name);
    if (!found) {
      found = new ArmWindow();
      map.set(name, found);
    }
    return found;
  }

  /** Every arm of the window with its key. */
  *arms(): IterableIterator<[string, ArmWindow]> {
    yield ['champion', this.champion];
    for (const [name, arm] of this.challengers) yield [armKey('challenger', name), arm];
    for (const [name, arm] of this.shadows) yield [armKey('shadow', name), arm];
  }

  /**
   * Starts a new split epoch (a split change, a step): every unit counts again once for the sample-ratio check, and the
   * arms' stratum totals start afresh so that each epoch compares the arms over the same stretch of time. The totals'
   * `units` keep growing; the controller subtracts their value at the epoch's start.
   */
  newSplitEpoch(key: string): void {
    this.#unitsSeen?.fill(0);
    if (this.#stratumKey !== '') {
      const arms = new Map<string, ArmTotals>();
      for (const [name, arm] of this.arms()) {
        if (arm.stratum.errors.n > 0) arms.set(name, arm.stratum);
        arm.stratum = emptyTotals();
      }
      this.#closed.push({ key: this.#stratumKey, arms });
      if (this.#closed.length >= MAX_STRATA) {
        const [oldest, next] = this.#closed.splice(0, 2) as [Stratum, Stratum];
        const merged = new Map(next.arms);
        for (const [name, totals] of oldest.arms) merged.set(name, mergeTotals(merged.get(name) ?? emptyTotals(), totals));
        this.#closed.unshift({ key: next.key, arms: merged });
      }
    }
    this.#stratumKey = key;
  }

  /** Closed epochs plus the current one, each with every arm's totals in it. */
  strata(): Stratum[] {
    const current = new Map<string, ArmTotals>();
    for (const [name, arm] of this.arms()) if (arm.stratum.errors.n > 0) current.set(name, arm.stratum);
    return [...this.#closed, { key: this.#stratumKey, arms: current }];
  }

  /** True when this request is the first of its randomisation unit in the current epoch. */
  #firstOfUnit(stickyKey: string | null): boolean {
    if (stickyKey === null) return true;
    const seen = (this.#unitsSeen ??= new Uint32Array(2 ** (UNIT_BITS_LOG2 - 5)));
    const bit = fnv1a(stickyKey) >>> (32 - UNIT_BITS_LOG2);
    const word = bit >>> 5;
    const mask = 1 << (bit & 31);
    if ((seen[word]! & mask) !== 0) return false;
    seen[word] = seen[word]! | mask;
    return true;
  }

  record(arm: ArmWindow, failed: boolean, latencyMs: number, isChampion: boolean, stickyKey: string | null, now: number, stream: StreamSummary | null = null): void {
    arm.lastAt = now;
    const firstOfUnit = this.#firstOfUnit(stickyKey);
    const valid = latencyMs >= 0 && latencyMs < Infinity;
    this.#add(arm.totals, failed, latencyMs, valid, firstOfUnit);
    this.#add(arm.stratum, failed, latencyMs, valid, firstOfUnit);
    if (stream !== null) {
      addStream(arm.totals.stream, stream);
      addStream(arm.stratum.stream, stream);
    }
    if (valid && isChampion) {
      const ring = (this.#recentChampion ??= new Float64Array(this.#ringLength));
      ring[this.#recentCount++ % ring.length] = latencyMs;
      this.#sinceRefresh++;
    }
  }

  #add(t: ArmTotals, failed: boolean, latencyMs: number, valid: boolean, firstOfUnit: boolean): void {
    pushCount(t.errors, failed);
    if (firstOfUnit) t.units++;
    if (!valid) {
      // NaN, Infinity or negative: a broken timing would poison the moments and silently switch the latency test off.
      t.rejectedLatencies++;
      return;
    }
    pushMoment(t.logLatency, Math.log(Math.max(LATENCY_FLOOR_MS, latencyMs)));
    pushCount(t.overCeiling, latencyMs > this.ceilingMs);
    if (this.p95ThresholdMs !== null) {
      pushCount(t.exceedance, latencyMs > this.p95ThresholdMs);
      pushCount(t.scaledExceedance, latencyMs > this.scaledThresholdMs!);
    }
  }

  /**
   * Reads the tail threshold from the champion's recent latencies once the ring is full and a quarter of it is new
   * since the last read (so a route costs one sort of `baselineRequests` numbers per quarter ring, off the request path).
   */
  refreshThreshold(): void {
    const ring = this.#recentChampion;
    if (ring === null || this.#recentCount < ring.length || this.#sinceRefresh * 4 < ring.length) return;
    this.#sinceRefresh = 0;
    const scratch = (this.#scratch ??= new Float64Array(ring.length));
    scratch.set(ring);
    this.p95ThresholdMs = quickSelect(scratch, Math.ceil(0.95 * scratch.length) - 1);
    this.scaledThresholdMs = this.p95ThresholdMs / this.ratio;
  }

}

/** Adds one streamed answer (O(1), on the request path). */
function addStream(t: StreamTotals, s: StreamSummary): void {
  if (s.ttftMs >= 0 && s.ttftMs < Infinity) pushMoment(t.logTtft, Math.log(Math.max(LATENCY_FLOOR_MS, s.ttftMs)));
  pushCount(t.stalled, s.gapsOver > 0);
  pushCount(t.interrupted, s.interrupted);
  t.gaps.n += s.gaps;
  t.gaps.events += s.gapsOver;
  t.tokens += s.tokens;
  if (s.tokensPerSecond !== null) t.generationMs += (s.tokens * 1000) / s.tokensPerSecond;
}

/** Failure for guardrails: a 5xx status or an upstream transport error (client faults never reach here). */
function isFailure(status: number, errorKind: string | null): boolean {
  return errorKind !== null || status >= 500;
}

const noRoutes: readonly string[] = Object.freeze([]);

/**
 * The observation port of the analysis side. `served` runs on the request path, so it only does arithmetic on
 * preallocated structures; everything statistical happens in the controller's tick.
 */
export class LiveWindows implements ObservationPort {
  readonly #windows = new Map<string, RouteWindow>();
  readonly #policies = new Map<string, GuardrailPolicy>();
  readonly #clock: () => number;
  /** Routes observed since the controller last asked (`takeTouched`), each listed once (its window's flag). */
  #touched: string[] = [];

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

  /** A route's current window without creating one (read-only callers: the analysis API). */
  peek(route: string): RouteWindow | undefined {
    return this.#windows.get(route);
  }

  /**
   * The routes observed since the last call: the controller's feed of routes with traffic. The request path pays one
   * boolean test per observation for it, and one array push per route between two calls.
   */
  takeTouched(): readonly string[] {
    if (this.#touched.length === 0) return noRoutes;
    const routes = this.#touched;
    this.#touched = [];
    for (const route of routes) {
      const window = this.#windows.get(route);
      if (window !== undefined) window.touched = false;
    }
    return routes;
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
    // The champion's answer given in place of a failed challenger belongs to the challenger's (failed) request, and
    // what a client does (aborting, sending too much or too slowly) is never evidence about a model.
    if (o.fallbackFor !== null || !isVariantEvidence(o.errorKind)) return;
    const window = this.window(o.route);
    if (!window.touched) this.#touch(window, o.route);
    const now = this.#clock();
    const stream = o.stream ?? null;
    if (o.role === 'champion') window.record(window.champion, isFailure(o.status, o.errorKind), o.latencyMs, true, o.stickyKey, now, stream);
    else window.record(window.arm('challenger', o.variant), o.fellBack || isFailure(o.status, o.errorKind), o.latencyMs, false, o.stickyKey, now, stream);
  }

  #touch(window: RouteWindow, route: string): void {
    window.touched = true;
    this.#touched.push(route);
  }

  shadowed(o: ShadowObservation): void {
    if (!isVariantEvidence(o.errorKind)) return;
    const window = this.window(o.route);
    if (!window.touched) this.#touch(window, o.route);
    window.record(window.arm('shadow', o.variant), isFailure(o.status, o.errorKind), o.latencyMs, false, null, this.#clock(), o.stream ?? null);
  }
}
