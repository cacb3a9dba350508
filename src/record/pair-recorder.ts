// Joins served and shadow answers by join id into paired records, samples canary/ab records, and takes ground-truth feedback.
import { createHmac } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { bufferLabels, defaultMemoryMb, recorderBudgets, type RecorderBudgets } from './budgets.js';
import { captureBytesFor, captureLimits, type RecordingPolicies, type RecordingPolicy } from './capture.js';
import type { Metrics } from '../metrics/registry.js';
import { compareLabels, type Comparison, compareWith, compileExtractor, extractPrediction, parsePointer, predictionBytes, type Extracted, type Extractor } from './extract.js';
import { isRecordable, type ObservationPort, type ServedObservation, type ShadowObservation, type StreamSummary } from './port.js';
import type { RecordSink } from './sinks/sink.js';
import { PredictionStats, predictionArmKey, type DivergencePolicy, type DriftPolicy } from './prediction-stats.js';

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
  readonly divergence: DivergencePolicy | undefined;
  readonly drift: DriftPolicy | undefined;
}

/** One side of a pair as written to the log. */
interface SideRecord {
  variant: string;
  status: number;
  error: string | null;
  latencyMs: number;
  prediction: Extracted['value'];
  parseError: string | null;
  /** A streamed answer's measurements (docs/statistics.md, "Streaming service levels"); absent for other answers. */
  stream?: StreamRecord;
}

/** How a streamed answer is written: times in ms rounded to µs, tokens per second to 0.01. */
interface StreamRecord {
  ttftMs: number;
  gaps: number;
  gapsOver: number;
  maxGapMs: number;
  interrupted: boolean;
  tokens: number;
  tokensFromUsage: boolean;
  tokensPerSecond: number | null;
}

const roundMs = (ms: number): number => Math.round(ms * 1000) / 1000;

function streamRecord(s: StreamSummary): StreamRecord {
  return {
    ttftMs: roundMs(s.ttftMs),
    gaps: s.gaps,
    gapsOver: s.gapsOver,
    maxGapMs: roundMs(s.maxGapMs),
    interrupted: s.interrupted,
    tokens: s.tokens,
    tokensFromUsage: s.tokensFromUsage,
    tokensPerSecond: s.tokensPerSecond === null ? null : Math.round(s.tokensPerSecond * 100) / 100,
  };
}

/**
 * The served half of a mirrored request, extracted as it arrives: what waits for the shadow answers is the
 * prediction, not the response body (kilobytes to megabytes for text).
 */
interface ServedHalf {
  side: SideRecord;
  role: ServedObservation['role'];
  mode: ServedObservation['mode'];
  fallbackFor: string | null;
  startedAt: number;
  key: string | null;
  /** Kept only when the route logs inputs. */
  requestBody: Buffer | null;
}

/**
 * Half-joined mirrored request: the served answer and shadow answers arrive in any order. Immutable: each arrival
 * stores a new object, so the pending table recounts its bytes (lru-cache sizes a value when it is set).
 */
interface PendingPair {
  readonly route: string;
  readonly requestId: string;
  readonly served: ServedHalf | null;
  readonly shadows: readonly SideRecord[];
  /** When the first shadow answer started: the record's time when the served half never arrives. */
  readonly shadowStartedAt: number;
  readonly expected: number;
  /** Counted against the pending budget. */
  readonly bytes: number;
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

/** Byte budgets of the recorder's own buffers (budgets.ts); each defaults to its share of the default memory setting. */
export type PairRecorderBudgets = Pick<RecorderBudgets, 'queue' | 'pending' | 'joinTable'>;

export interface PairRecorderOptions {
  /** Route recording policies by name (the live snapshot in-process; the posted copy in the recorder worker). */
  policies: RecordingPolicies;
  metrics: Metrics;
  sink: RecordSink;
  /** Secret mixed into sticky-key hashes so logs do not reveal user ids. */
  keySalt?: string;
  /** Observations waiting for off-path processing; beyond this they are dropped and counted. */
  maxQueue?: number;
  budgets?: PairRecorderBudgets;
  /** Prediction counts and drift windows (absent: a private one with its share of the default budget). */
  stats?: PredictionStats;
}

/** The join-table value of a request id that two remembered predictions share. */
const AMBIGUOUS = '';

/** Bytes counted per entry or observation for its fields, keys and the table's own bookkeeping. */
const entryOverhead = 128;

type Work = { served: ServedObservation; shadow: null; bytes: number } | { served: null; shadow: ShadowObservation; bytes: number };

/**
 * Runs in the recorder worker (recorder-worker.ts): observations arrive in batches from the serving thread and are
 * queued (bounded); extraction, joining and writing run in setImmediate batches. Every buffer that grows with
 * traffic has a byte budget: the queue (beyond it observations are dropped), the pending pairs (beyond it the oldest
 * is written unpaired early) and the feedback join table (beyond it the oldest prediction is forgotten early), each
 * counted in switchyard_pairs_dropped_total with reason memory_budget.
 */
export class PairRecorder implements ObservationPort {
  readonly #policies: RecordingPolicies;
  readonly #metrics: Metrics;
  readonly #sink: RecordSink;
  readonly #keySalt: string;
  readonly #maxQueue: number;
  readonly #budgets: PairRecorderBudgets;
  readonly #byRoute = new WeakMap<RecordingPolicy, RouteRecording>();
  readonly #stats: PredictionStats;
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
  /** Queued observations from `#head` on (a head index instead of shifting or slicing the array per batch). */
  #queue: Work[] = [];
  #head = 0;
  #queueBytes = 0;
  #scheduled = false;
  readonly #purgeTimer: NodeJS.Timeout;
  readonly #recorderDrops;
  readonly #overBudget;
  readonly #pendingOverBudget;
  readonly #joinOverBudget;

  constructor(options: PairRecorderOptions) {
    this.#policies = options.policies;
    this.#metrics = options.metrics;
    this.#sink = options.sink;
    this.#keySalt = options.keySalt ?? 'switchyard';
    this.#maxQueue = options.maxQueue ?? 10_000;
    this.#budgets = options.budgets ?? recorderBudgets(defaultMemoryMb);
    this.#stats = options.stats ?? new PredictionStats({ budgetBytes: recorderBudgets(defaultMemoryMb).predictionStats });
    this.#recorderDrops = options.metrics.recordsDropped.labels('recorder', 'queue_full');
    this.#overBudget = options.metrics.recordsDropped.labels('recorder', 'memory_budget');
    this.#pendingOverBudget = options.metrics.recordsDropped.labels(bufferLabels.pending, 'memory_budget');
    this.#joinOverBudget = options.metrics.recordsDropped.labels(bufferLabels.joinTable, 'memory_budget');
    this.#pending = new LRUCache<number, PendingPair>({
      maxSize: this.#budgets.pending,
      sizeCalculation: (entry) => entry.bytes,
      ttl: 30_000,
      // An entry leaving before both halves arrived is still written, marked unpaired: nothing is silently lost.
      dispose: (entry, _key, reason) => {
        if (reason === 'evict') this.#pendingOverBudget.inc();
        if (reason === 'evict' || reason === 'expire') this.#writePair(entry, 'unpaired');
      },
    });
    // Each entry's size is given when it is set (#remember).
    this.#remembered = new LRUCache<string, string>({
      maxSize: this.#budgets.joinTable,
      ttl: 3_600_000,
      dispose: (_value, _key, reason) => {
        if (reason === 'evict') this.#joinOverBudget.inc();
      },
    });
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
        divergence: policy.divergence,
        drift: policy.drift,
      });
      this.#byRoute.set(policy, found);
    }
    return found;
  }

  captureBytes(route: string, mirrored: boolean): number {
    return captureBytesFor(this.#policies.policyOf(route), mirrored);
  }

  served(observation: ServedObservation): void {
    // The same filter as the serving thread's, so a PairRecorder fed directly (tests, a backtest) records the same.
    if (!isRecordable(observation)) return;
    this.#enqueue({ served: observation, shadow: null, bytes: entryOverhead + (observation.responseBody?.length ?? 0) + (observation.requestBody?.length ?? 0) });
  }

  shadowed(observation: ShadowObservation): void {
    this.#enqueue({ served: null, shadow: observation, bytes: entryOverhead + (observation.responseBody?.length ?? 0) });
  }

  /** Observations queued but not yet processed (the worker keeps reporting totals until this is 0). */
  get backlog(): number {
    return this.#queue.length - this.#head;
  }

  /** Bytes held by each buffer, as counted against its budget. */
  usage(): PairRecorderBudgets {
    return { queue: this.#queueBytes, pending: this.#pending.calculatedSize, joinTable: this.#remembered.calculatedSize };
  }

  #enqueue(work: Work): void {
    if (this.backlog >= this.#maxQueue) {
      this.#recorderDrops.inc();
      return;
    }
    if (this.#queueBytes + work.bytes > this.#budgets.queue) {
      this.#overBudget.inc();
      return;
    }
    this.#queue.push(work);
    this.#queueBytes += work.bytes;
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
    const end = Math.min(this.#queue.length, this.#head + limit);
    while (this.#head < end) {
      const work = this.#queue[this.#head]!;
      this.#queue[this.#head++] = undefined as unknown as Work;
      this.#queueBytes -= work.bytes;
      try {
        if (work.served) this.#onServed(work.served);
        else this.#onShadow(work.shadow);
      } catch {
        // Recording must never break serving: a malformed observation is dropped and counted.
        this.#metrics.recordsDropped.labels('recorder', 'internal_error').inc();
      }
    }
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (this.#head >= 1_024) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    if (this.backlog > 0 && !this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.#process());
    }
  }

  /**
   * Counts a served answer for the divergence between arms and the drift over time. A champion answer that replaced
   * a failed challenger is not the champion's own traffic share, so it is left out, as in the guardrail windows.
   */
  #countServed(recording: RouteRecording, o: ServedObservation, side: SideRecord): void {
    if (o.fallbackFor !== null || (recording.divergence === undefined && recording.drift === undefined)) return;
    const arm = predictionArmKey(o.role, o.variant);
    this.#stats.observePrediction(o.route, arm, side.prediction, recording.extractor.kind, recording.divergence);
    this.#stats.observeDrift(o.route, o.variant, recording.drift, side.prediction, recording.extractor.kind, o.requestBody);
  }

  #onServed(o: ServedObservation): void {
    const recording = this.#recording(o.route);
    if (!recording) return;
    if (o.mirrored > 0) {
      const side = this.#side(recording, o.variant, o.status, o.errorKind, o.latencyMs, o.responseBody, o.contentType, o.responseTruncated, o.stream ?? null);
      this.#countServed(recording, o, side);
      const requestBody = recording.logInputs ? o.requestBody : null;
      const key = this.#key(recording, o.stickyKey);
      const half: ServedHalf = { side, role: o.role, mode: o.mode, fallbackFor: o.fallbackFor, startedAt: o.startedAt, key, requestBody };
      const halfBytes = sideBytes(side) + (requestBody?.length ?? 0) + (key?.length ?? 0) + (o.fallbackFor?.length ?? 0);
      const found = this.#pending.get(o.joinId);
      this.#settle(o.joinId, recording, {
        route: o.route,
        requestId: o.requestId,
        served: half,
        shadows: found?.shadows ?? [],
        shadowStartedAt: found?.shadowStartedAt ?? 0,
        expected: o.mirrored,
        bytes: (found?.bytes ?? entryOverhead + o.route.length + o.requestId.length) + halfBytes,
      });
      return;
    }
    if (o.responseBody === null) return;
    const side = this.#side(recording, o.variant, o.status, o.errorKind, o.latencyMs, o.responseBody, o.contentType, o.responseTruncated, o.stream ?? null);
    this.#countServed(recording, o, side);
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
    const recording = this.#recording(o.route);
    if (!recording) return;
    const side = this.#side(recording, o.variant, o.status, o.errorKind, o.latencyMs, o.responseBody, o.contentType, o.responseTruncated, o.stream ?? null);
    this.#stats.observeDrift(o.route, o.variant, recording.drift, side.prediction, recording.extractor.kind, null);
    const found = this.#pending.get(o.joinId);
    this.#settle(o.joinId, recording, {
      route: o.route,
      requestId: o.requestId,
      served: found?.served ?? null,
      shadows: found ? [...found.shadows, side] : [side],
      shadowStartedAt: found && found.shadowStartedAt !== 0 ? found.shadowStartedAt : o.startedAt,
      expected: found?.expected ?? 1,
      bytes: (found?.bytes ?? entryOverhead + o.route.length + o.requestId.length) + sideBytes(side),
    });
  }

  #settle(key: number, recording: RouteRecording, entry: PendingPair): void {
    if (entry.served !== null && entry.shadows.length >= entry.expected) {
      this.#pending.delete(key);
      this.#writePair(entry, 'complete');
      return;
    }
    if (entry.bytes > this.#budgets.pending) {
      // Larger than the whole pending budget: it cannot wait for its other half.
      this.#pending.delete(key);
      this.#pendingOverBudget.inc();
      this.#writePair(entry, 'unpaired');
      return;
    }
    this.#pending.set(key, entry, { ttl: recording.pairTtlMs });
  }

  #writePair(entry: PendingPair, completeness: 'complete' | 'unpaired'): void {
    const recording = this.#recording(entry.route);
    if (!recording) return;
    const served = entry.served;
    const servedSide = served?.side ?? null;
    const pairs = completeness === 'complete' ? entry.shadows : [];
    for (const shadowSide of entry.shadows.length > 0 ? entry.shadows : [null]) {
      let comparison: Comparison | null = null;
      let result: string;
      if (servedSide && shadowSide) {
        comparison = compareWith(recording.extractor, servedSide, shadowSide);
        result = comparison.agree === null ? 'unparsed' : comparison.agree ? 'agree' : 'disagree';
        if (comparison.agree !== null) {
          this.#trackAgreement(entry.route, comparison.agree);
          // Shadow divergence compares the two sides of the same requests: both parsed, so neither side is thinned.
          if (recording.divergence !== undefined) {
            this.#stats.observePrediction(entry.route, predictionArmKey('shadow', shadowSide.variant), shadowSide.prediction, recording.extractor.kind, recording.divergence);
            this.#stats.observePrediction(entry.route, predictionArmKey('paired', shadowSide.variant), servedSide.prediction, recording.extractor.kind, recording.divergence);
            // Agreement per shadow, for the noise floor (a shadow that mirrors to the champion itself).
            this.#stats.observePrediction(entry.route, predictionArmKey('agreement', shadowSide.variant), comparison.agree ? 'agree' : 'disagree', 'class', recording.divergence);
          }
        }
      } else result = 'unpaired';
      this.#pairCounter(entry.route, result).inc();
      this.#write({
        type: 'pair',
        route: entry.route,
        requestId: entry.requestId,
        at: new Date(served?.startedAt ?? (entry.shadowStartedAt || Date.now())).toISOString(),
        key: served ? served.key : null,
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

  #side(recording: RouteRecording, variant: string, status: number, errorKind: string | null, latencyMs: number, body: Buffer | null, contentType: string | null, truncated: boolean, stream: StreamSummary | null): SideRecord {
    const extracted = errorKind !== null && errorKind !== 'status_5xx' ? { value: null, error: `no response: ${errorKind}` } : extractPrediction(recording.extractor, body, contentType, truncated);
    const side: SideRecord = { variant, status, error: errorKind, latencyMs: roundMs(latencyMs), prediction: extracted.value, parseError: extracted.error };
    if (stream !== null) side.stream = streamRecord(stream);
    return side;
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
    // UTF-8 bytes: never fewer than the string takes in memory (one byte per character for ASCII, two otherwise).
    const size = entryOverhead + requestId.length + Buffer.byteLength(value);
    if (size > this.#budgets.joinTable) {
      // Larger than the whole join table: lru-cache would not keep it (and would drop an earlier entry for the id).
      this.#joinOverBudget.inc();
      return;
    }
    this.#remembered.set(requestId, value, { ttl: recording.feedbackTtlMs, size });
  }

  #write(record: object): void {
    this.#sink.write(record);
  }

  /** Prediction counts and drift results of a route (null when nothing was counted for it). */
  predictionsOf(route: string): ReturnType<PredictionStats['totalsOf']> {
    return this.#stats.totalsOf(route);
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
    for (const [key, entry] of [...this.#pending.entries()]) {
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

/** Bytes a side record is counted for against the pending budget. */
function sideBytes(side: SideRecord): number {
  // A stream record is eight small fields: ~64 bytes of heap.
  return 96 + (side.stream === undefined ? 0 : 64) + side.variant.length + predictionBytes(side.prediction) + (side.parseError?.length ?? 0) + (side.error?.length ?? 0);
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
