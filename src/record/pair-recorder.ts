// Joins served and shadow answers by join id into paired records, samples canary/ab records, and takes ground-truth feedback.
import { createHmac } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { captureBytesFor, captureLimits, type RecordingPolicies, type RecordingPolicy } from './capture.js';
import type { Metrics } from '../metrics/registry.js';
import { compareLabels, type Comparison, compareWith, compileExtractor, extractPrediction, parsePointer, type Extracted, type Extractor } from './extract.js';
import { isClientFault, type ObservationPort, type ServedObservation, type ShadowObservation } from './port.js';
import type { RecordSink } from './sinks/sink.js';

/** Per-route recording settings, compiled once per policy version. */
interface RouteRecording {
  readonly extractor: Extractor;
  readonly captureBytes: number;
  readonly sampleRate: number;
  readonly logInputs: boolean;
  readonly redact: readonly (readonly string[])[];
  readonly rawKeys: boolean;
  readonly pairTtlMs: number;
  readonly feedbackTtlMs: number;
}

/** One side of a pair as written to the log. */
interface SideRecord {
  variant: string;
  status: number;
  error: string | null;
  latencyMs: number;
  prediction: Extracted['value'];
  parseError: string | null;
}

/** Half-joined mirrored request: the served answer and shadow answers arrive in any order. */
interface PendingPair {
  route: string;
  requestId: string;
  served: ServedObservation | null;
  shadows: ShadowObservation[];
  expected: number;
}

/** What feedback can be joined to. */
interface Remembered {
  route: string;
  kind: 'pair' | 'served';
  predictions: { variant: string; role: 'champion' | 'challenger' | 'shadow'; prediction: Extracted['value'] }[];
}

/**
 * Per-item answer of POST /v1/feedback: `ambiguous_request` when two predictions still remembered share the id (a
 * client reused an x-request-id); the label is then joined to neither.
 */
export interface FeedbackResult {
  requestId: string;
  status: 'joined' | 'unknown_request' | 'ambiguous_request';
  correct?: Record<string, boolean | null>;
}

export interface PairRecorderOptions {
  /** Route recording policies by name (the live snapshot in-process; the posted copy in the recorder worker). */
  policies: RecordingPolicies;
  metrics: Metrics;
  sink: RecordSink;
  /** Secret mixed into sticky-key hashes so logs do not reveal user ids. */
  keySalt?: string;
  /** Observations waiting for off-path processing; beyond this they are dropped and counted. */
  maxQueue?: number;
  maxPending?: number;
  maxRemembered?: number;
}

/** The join-table value of a request id that two remembered predictions share. */
const AMBIGUOUS = '';

type Work = { served: ServedObservation; shadow: null } | { served: null; shadow: ShadowObservation };

/**
 * Runs in the recorder worker (recorder-worker.ts): observations arrive in batches from the serving thread and are
 * queued (bounded); extraction, joining and writing run in setImmediate batches.
 */
export class PairRecorder implements ObservationPort {
  readonly #policies: RecordingPolicies;
  readonly #metrics: Metrics;
  readonly #sink: RecordSink;
  readonly #keySalt: string;
  readonly #maxQueue: number;
  readonly #byRoute = new WeakMap<RecordingPolicy, RouteRecording>();
  /** Half-joined mirrored requests by join id (ServedObservation.joinId), never by the client's request id. */
  readonly #pending: LRUCache<number, PendingPair>;
  /**
   * Predictions kept for feedback joins, one JSON string per request: a string is a single leaf object for the
   * garbage collector, where the object form was five. These entries live for the feedback TTL, so each one is
   * promoted to the old generation; with objects, marking them caused the old-space collections (5-16 ms pauses
   * every ~6 s at 1,000 req/s) that showed up as the primary's p99 in the shadow bench.
   */
  readonly #remembered: LRUCache<string, string>;
  readonly #agreement = new Map<string, { agree: number; parsed: number }>();
  /** Ground-truth outcomes per route and variant (served canary/ab answers only), for the A/B winner. */
  readonly #outcomes = new Map<string, Map<string, { n: number; correct: number }>>();
  readonly #pairCounters = new Map<string, ReturnType<Metrics['pairs']['labels']>>();
  #queue: Work[] = [];
  #scheduled = false;
  readonly #purgeTimer: NodeJS.Timeout;
  readonly #recorderDrops;

  constructor(options: PairRecorderOptions) {
    this.#policies = options.policies;
    this.#metrics = options.metrics;
    this.#sink = options.sink;
    this.#keySalt = options.keySalt ?? 'switchyard';
    this.#maxQueue = options.maxQueue ?? 10_000;
    this.#recorderDrops = options.metrics.recordsDropped.labels('recorder', 'queue_full');
    this.#pending = new LRUCache<number, PendingPair>({
      max: options.maxPending ?? 50_000,
      ttl: 30_000,
      // An entry leaving before both halves arrived is still written, marked unpaired: nothing is silently lost.
      dispose: (entry, _key, reason) => {
        if (reason === 'evict' || reason === 'expire') this.#writePair(entry, 'unpaired');
      },
    });
    this.#remembered = new LRUCache<string, string>({ max: options.maxRemembered ?? 200_000, ttl: 3_600_000 });
    // lru-cache expires lazily; a periodic purge makes expiries (and their unpaired records) happen on time.
    this.#purgeTimer = setInterval(() => this.#pending.purgeStale(), 1_000);
    this.#purgeTimer.unref();
  }

  #recording(routeName: string): RouteRecording | null {
    const policy = this.#policies.policyOf(routeName);
    if (!policy) return null;
    let found = this.#byRoute.get(policy);
    if (!found) {
      const p = policy.predictions;
      const limits = captureLimits(policy);
      found = Object.freeze({
        extractor: compileExtractor(p),
        captureBytes: limits.captureBytes,
        sampleRate: limits.sampleRate,
        logInputs: limits.logInputs,
        redact: (p?.redact ?? []).map(parsePointer),
        rawKeys: p?.rawKeys ?? false,
        pairTtlMs: policy.pairs.ttlMs,
        feedbackTtlMs: policy.pairs.feedbackTtlMs,
      });
      this.#byRoute.set(policy, found);
    }
    return found;
  }

  captureBytes(route: string, mirrored: boolean): number {
    return captureBytesFor(this.#policies.policyOf(route), mirrored);
  }

  served(observation: ServedObservation): void {
    // A challenger failure replaced by the champion is not the answer the client got; the fallback observation is.
    // A client fault (it went away, or its body was over the limit) is nobody's prediction and no variant's failure:
    // not recorded, as the guardrail windows ignore it; a mirror's shadow half then stays unpaired (not compared).
    if (observation.fellBack || isClientFault(observation.errorKind)) return;
    if (observation.mirrored === 0 && observation.responseBody === null && observation.errorKind === null) return;
    this.#enqueue({ served: observation, shadow: null });
  }

  shadowed(observation: ShadowObservation): void {
    this.#enqueue({ served: null, shadow: observation });
  }

  /** Observations queued but not yet processed (the worker keeps reporting totals until this is 0). */
  get backlog(): number {
    return this.#queue.length;
  }

  #enqueue(work: Work): void {
    if (this.#queue.length >= this.#maxQueue) {
      this.#recorderDrops.inc();
      return;
    }
    this.#queue.push(work);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.#process());
    }
  }

  /**
   * Processes at most `limit` queued observations, then yields to the event loop, so feedback, flush and metrics
   * requests from the serving thread are answered between batches.
   */
  #process(limit = 32): void {
    this.#scheduled = false;
    const batch = this.#queue.length <= limit ? this.#queue : this.#queue.slice(0, limit);
    this.#queue = this.#queue.length <= limit ? [] : this.#queue.slice(limit);
    for (const work of batch) {
      try {
        if (work.served) this.#onServed(work.served);
        else this.#onShadow(work.shadow);
      } catch {
        // Recording must never break serving: a malformed observation is dropped and counted.
        this.#metrics.recordsDropped.labels('recorder', 'internal_error').inc();
      }
    }
    if (this.#queue.length > 0 && !this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.#process());
    }
  }

  #onServed(o: ServedObservation): void {
    if (o.mirrored > 0) {
      const key = o.joinId;
      const entry = this.#pending.get(key) ?? { route: o.route, requestId: o.requestId, served: null, shadows: [], expected: o.mirrored };
      entry.served = o;
      entry.expected = o.mirrored;
      this.#settle(key, entry);
      return;
    }
    const recording = this.#recording(o.route);
    if (!recording || o.responseBody === null) return;
    const side = this.#side(recording, o.variant, o.status, o.errorKind, o.latencyMs, o.responseBody, o.contentType, o.responseTruncated);
    this.#remember(o.requestId, recording, { route: o.route, kind: 'served', predictions: [{ variant: o.variant, role: o.role, prediction: side.prediction }] });
    this.#write({
      type: 'served',
      route: o.route,
      requestId: o.requestId,
      at: new Date(o.startedAt).toISOString(),
      key: this.#key(recording, o.stickyKey),
      mode: o.mode,
      role: o.role,
      fallbackFor: o.fallbackFor,
      ...side,
      ...(recording.logInputs ? { input: this.#input(recording, o.requestBody) } : {}),
    });
  }

  #onShadow(o: ShadowObservation): void {
    const key = o.joinId;
    const entry = this.#pending.get(key) ?? { route: o.route, requestId: o.requestId, served: null, shadows: [], expected: 1 };
    entry.shadows.push(o);
    this.#settle(key, entry);
  }

  #settle(key: number, entry: PendingPair): void {
    if (entry.served !== null && entry.shadows.length >= entry.expected) {
      this.#pending.delete(key);
      this.#writePair(entry, 'complete');
      return;
    }
    const recording = this.#recording(entry.route);
    this.#pending.set(key, entry, { ttl: recording?.pairTtlMs ?? 30_000 });
  }

  #writePair(entry: PendingPair, completeness: 'complete' | 'unpaired'): void {
    const recording = this.#recording(entry.route);
    if (!recording) return;
    const served = entry.served;
    const servedSide = served ? this.#side(recording, served.variant, served.status, served.errorKind, served.latencyMs, served.responseBody, served.contentType, served.responseTruncated) : null;
    const shadows = entry.shadows.map((s) => this.#side(recording, s.variant, s.status, s.errorKind, s.latencyMs, s.responseBody, s.contentType, s.responseTruncated));
    const pairs = completeness === 'complete' ? shadows : [];
    for (const shadowSide of shadows.length > 0 ? shadows : [null]) {
      let comparison: Comparison | null = null;
      let result: string;
      if (servedSide && shadowSide) {
        comparison = compareWith(recording.extractor, servedSide, shadowSide);
        result = comparison.agree === null ? 'unparsed' : comparison.agree ? 'agree' : 'disagree';
        if (comparison.agree !== null) this.#trackAgreement(entry.route, comparison.agree);
      } else result = 'unpaired';
      this.#pairCounter(entry.route, result).inc();
      this.#write({
        type: 'pair',
        route: entry.route,
        requestId: entry.requestId,
        at: new Date(served?.startedAt ?? entry.shadows[0]?.startedAt ?? Date.now()).toISOString(),
        key: served ? this.#key(recording, served.stickyKey) : null,
        complete: servedSide !== null && shadowSide !== null,
        served: servedSide && served ? { ...servedSide, role: served.role, mode: served.mode, fallbackFor: served.fallbackFor } : null,
        shadow: shadowSide,
        comparison,
        ...(recording.logInputs && served ? { input: this.#input(recording, served.requestBody) } : {}),
      });
    }
    if (servedSide && served) {
      this.#remember(entry.requestId, recording, {
        route: entry.route,
        kind: 'pair',
        predictions: [{ variant: servedSide.variant, role: served.role, prediction: servedSide.prediction }, ...pairs.map((s) => ({ variant: s.variant, role: 'shadow' as const, prediction: s.prediction }))],
      });
    }
  }

  #side(recording: RouteRecording, variant: string, status: number, errorKind: string | null, latencyMs: number, body: Buffer | null, contentType: string | null, truncated: boolean): SideRecord {
    const extracted = errorKind !== null && errorKind !== 'status_5xx' ? { value: null, error: `no response: ${errorKind}` } : extractPrediction(recording.extractor, body, contentType, truncated);
    return { variant, status, error: errorKind, latencyMs: Math.round(latencyMs * 1000) / 1000, prediction: extracted.value, parseError: extracted.error };
  }

  #pairCounter(route: string, result: string): ReturnType<Metrics['pairs']['labels']> {
    const key = `${route}|${result}`;
    let child = this.#pairCounters.get(key);
    if (!child) {
      child = this.#metrics.pairs.labels(route, result);
      this.#pairCounters.set(key, child);
    }
    return child;
  }

  #trackAgreement(route: string, agree: boolean): void {
    let a = this.#agreement.get(route);
    if (!a) {
      a = { agree: 0, parsed: 0 };
      this.#agreement.set(route, a);
    }
    a.parsed++;
    if (agree) a.agree++;
    this.#metrics.agreement.labels(route).set(a.agree / a.parsed);
  }

  #key(recording: RouteRecording, key: string | null): string | null {
    if (key === null) return null;
    return recording.rawKeys ? key : createHmac('sha256', this.#keySalt).update(key).digest('hex').slice(0, 24);
  }

  #input(recording: RouteRecording, body: Buffer | null): unknown {
    if (body === null) return null;
    let document: unknown;
    try {
      document = JSON.parse(body.toString('utf8'));
    } catch {
      return { unparsed: true, bytes: body.length };
    }
    for (const pointer of recording.redact) redactPointer(document, pointer);
    return document;
  }

  #remember(requestId: string, recording: RouteRecording, entry: Remembered): void {
    // A request id already remembered (a client reused it) can no longer tell which prediction a label is for: it is
    // marked ambiguous, and stays so until the last of them expires.
    const value = this.#remembered.has(requestId) ? AMBIGUOUS : JSON.stringify(entry);
    this.#remembered.set(requestId, value, { ttl: recording.feedbackTtlMs });
  }

  #write(record: object): void {
    this.#sink.write(record);
  }

  /** Parsed pairs of a route and how many agreed (shadow gate). */
  agreementOf(route: string): { agree: number; parsed: number } {
    return { ...(this.#agreement.get(route) ?? { agree: 0, parsed: 0 }) };
  }

  /** Labelled outcomes per variant of a route (A/B winner). */
  outcomesOf(route: string): Record<string, { n: number; correct: number }> {
    return Object.fromEntries([...(this.#outcomes.get(route) ?? new Map<string, { n: number; correct: number }>())].map(([k, v]) => [k, { ...v }]));
  }

  /** Joins ground-truth labels to remembered predictions and writes a labelled record per joined item. */
  feedback(items: readonly { requestId: string; label: unknown }[]): FeedbackResult[] {
    return items.map(({ requestId, label }) => {
      const stored = this.#remembered.get(requestId);
      if (stored === undefined) {
        this.#metrics.feedback.labels('unknown_request').inc();
        return { requestId, status: 'unknown_request' };
      }
      if (stored === AMBIGUOUS) {
        this.#metrics.feedback.labels('ambiguous_request').inc();
        return { requestId, status: 'ambiguous_request' };
      }
      const found = JSON.parse(stored) as Remembered;
      const correct: Record<string, boolean | null> = {};
      for (const p of found.predictions) correct[p.variant] = compareLabels(p.prediction, label);
      if (found.kind === 'served') {
        for (const p of found.predictions) {
          const ok = correct[p.variant];
          if (ok === null || ok === undefined) continue;
          let byVariant = this.#outcomes.get(found.route);
          if (!byVariant) this.#outcomes.set(found.route, (byVariant = new Map()));
          const o = byVariant.get(p.variant) ?? { n: 0, correct: 0 };
          o.n++;
          if (ok) o.correct++;
          byVariant.set(p.variant, o);
        }
      }
      this.#metrics.feedback.labels('joined').inc();
      this.#write({ type: 'feedback', route: found.route, requestId, at: new Date().toISOString(), of: found.kind, label, predictions: found.predictions, correct });
      return { requestId, status: 'joined', correct };
    });
  }

  /** Processes what is queued, writes unpaired leftovers, and flushes the sink (shutdown). */
  async close(): Promise<void> {
    clearInterval(this.#purgeTimer);
    this.#process(Number.POSITIVE_INFINITY);
    for (const [key, entry] of this.#pending.entries()) {
      this.#pending.delete(key);
      this.#writePair(entry, 'unpaired');
    }
    await this.#sink.close();
  }

  /** Processes queued observations now and waits for the sink (tests and shutdown). */
  async flush(): Promise<void> {
    this.#process(Number.POSITIVE_INFINITY);
    await this.#sink.flush();
  }
}

/** Replaces the value at a JSON Pointer with "[redacted]" (in place); missing paths are ignored. */
export function redactPointer(document: unknown, tokens: readonly string[]): void {
  if (tokens.length === 0) return;
  let parent: unknown = document;
  for (let i = 0; i < tokens.length - 1; i++) {
    const token = tokens[i]!;
    if (token === '*' && Array.isArray(parent)) {
      for (const element of parent) redactPointer(element, tokens.slice(i + 1));
      return;
    }
    parent = parent !== null && typeof parent === 'object' ? (parent as Record<string, unknown>)[token] : undefined;
  }
  const last = tokens[tokens.length - 1]!;
  if (parent !== null && typeof parent === 'object' && last in (parent as object)) (parent as Record<string, unknown>)[last] = '[redacted]';
}
