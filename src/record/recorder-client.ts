// The serving thread's side of the recorder worker: a non-blocking observation port that batches to the worker thread.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Metrics } from '../metrics/registry.js';
import { bufferLabels } from './budgets.js';
import { captureBytesFor, captureLimits, type RecordingPolicies, type RecordingPolicy } from './capture.js';
import type { FeedbackResult } from './pair-recorder.js';
import { isRecordable, type ObservationPort, type ServedObservation, type ShadowObservation } from './port.js';
import type { RoutePredictionTotals } from './prediction-stats.js';
import { wireBytes, type ExperimentTotals, type FromWorker, type RecorderWorkerSettings, type ToWorker, type WireObservation } from './recorder-protocol.js';

export interface RecorderClientOptions {
  policies: RecordingPolicies;
  metrics: Metrics;
  settings: RecorderWorkerSettings;
  /**
   * Observations sent but not yet processed, plus those waiting; beyond this they are dropped and counted. Their bytes
   * are bounded too, by `settings.budgets.toWorker`.
   */
  maxQueue?: number;
  /** How long observations gather before one message carries them to the worker. */
  batchMs?: number;
  /** Told when the worker fails; it is restarted after `restartMs` (doubling to 30 s while it keeps failing). */
  onError?: (err: Error) => void;
  /** The sink cannot reach its destination (at most one call per 10 s); records are dropped and counted meanwhile. */
  onSinkError?: (err: Error) => void;
  restartMs?: number;
}

/**
 * The compiled worker script. Under the test runner this module is TypeScript source, which a worker thread cannot
 * load, so it uses the build's copy (`npm test` builds first).
 */
function workerScript(): URL {
  const here = new URL('./recorder-worker.js', import.meta.url);
  if (!import.meta.url.endsWith('.ts')) return here;
  const built = new URL(import.meta.url.replace(/\/src\/record\/recorder-client\.ts$/, '/dist/src/record/recorder-worker.js'));
  if (!existsSync(fileURLToPath(built))) throw new Error(`${fileURLToPath(built)} is missing: run \`npm run build\` first`);
  return built;
}

/**
 * Extraction, pairing, the feedback join table and the sinks run in a worker thread: their CPU and, above all, their
 * garbage (the join table promotes an entry per request) stay off the serving thread, whose event loop and heap the
 * primary requests share. Measured in bench/scenarios.ts: with recording in-thread, 100 % shadow raised the
 * primary's p99 by 13-32 %; with recording switched off it did not move.
 */
export class RecorderClient implements ObservationPort {
  readonly #policies: RecordingPolicies;
  #worker: Worker;
  readonly #settings: RecorderWorkerSettings;
  readonly #restartMs: number;
  #restartDelayMs: number;
  #restartTimer: NodeJS.Timeout | null = null;
  /** The policies last sent, re-sent to a restarted worker. */
  #policiesMessage: ToWorker | null = null;
  readonly #maxQueue: number;
  readonly #batchMs: number;
  readonly #onError: (err: Error) => void;
  readonly #onSinkError: (err: Error) => void;
  #lastSinkErrorAt = Number.NEGATIVE_INFINITY;
  readonly #queueFull;
  readonly #overBudget;
  readonly #workerDown;
  readonly #metrics: Metrics;
  /** Bytes of the observations waiting in the outbox or sent and not yet acknowledged ({@link wireBytes}). */
  #bytes = 0;
  readonly #maxBytes: number;
  #outbox: WireObservation[] = [];
  #timer: NodeJS.Timeout | null = null;
  /** Sent to the worker and not yet acknowledged as processed. */
  #unacked = 0;
  #totals: ExperimentTotals = { agreement: {}, outcomes: {}, predictions: {} };
  #nextId = 1;
  readonly #waiting = new Map<number, { resolve: (value: unknown) => void; reject: (err: Error) => void }>();
  #down: Error | null = null;
  #closed: Promise<void> | null = null;

  constructor(options: RecorderClientOptions) {
    this.#policies = options.policies;
    this.#maxQueue = options.maxQueue ?? 10_000;
    this.#batchMs = options.batchMs ?? 10;
    this.#onError = options.onError ?? (() => undefined);
    this.#onSinkError = options.onSinkError ?? (() => undefined);
    this.#queueFull = options.metrics.recordsDropped.labels('recorder', 'queue_full');
    this.#overBudget = options.metrics.recordsDropped.labels('recorder', 'memory_budget');
    this.#metrics = options.metrics;
    this.#maxBytes = options.settings.budgets.toWorker;
    options.metrics.recorderBudget.labels(bufferLabels.toWorker).set(this.#maxBytes);
    this.#workerDown = options.metrics.recordsDropped.labels('recorder', 'worker_down');
    this.#settings = options.settings;
    this.#restartMs = options.restartMs ?? 1_000;
    this.#restartDelayMs = this.#restartMs;
    this.#worker = this.#spawn();
  }

  #spawn(): Worker {
    // The heap limit is a backstop: the budgets keep the worker far below it, and if an accounting slip ever reached it
    // the worker would die and restart (counted as worker_down), never the serving process.
    const worker = new Worker(workerScript(), { workerData: this.#settings, name: 'switchyard-recorder', resourceLimits: { maxOldGenerationSizeMb: this.#settings.budgets.workerHeapMb, maxYoungGenerationSizeMb: this.#settings.budgets.workerYoungMb } });
    // The worker must not keep a process alive by itself; close() holds it until everything is written.
    worker.unref();
    worker.on('message', (message: FromWorker) => {
      // A reply proves the worker works: the next failure restarts it after the shortest delay again.
      this.#restartDelayMs = this.#restartMs;
      this.#receive(message);
    });
    worker.on('error', (err) => {
      if (this.#worker === worker) this.#fail(err);
    });
    worker.on('exit', (code) => {
      if (this.#closed === null && this.#worker === worker) this.#fail(new Error(`the recorder worker exited with code ${code}`));
    });
    if (this.#policiesMessage !== null) worker.postMessage(this.#policiesMessage);
    return worker;
  }

  /** Sends the recording policies of the routes (call on start and whenever a route's policy object changes). */
  setPolicies(routes: readonly [string, RecordingPolicy][]): void {
    this.#policiesMessage = { type: 'policies', routes: [...routes] };
    this.#post(this.#policiesMessage);
  }

  captureBytes(route: string, mirrored: boolean): number {
    return captureBytesFor(this.#policies.policyOf(route), mirrored);
  }

  served(o: ServedObservation): void {
    if (!isRecordable(o)) return;
    const policy = this.#policies.policyOf(o.route);
    const keepInput = policy !== undefined && captureLimits(policy).keepInputs && o.requestBody !== null;
    // Checked before the bodies are copied into strings: a dropped observation costs no copy.
    if (!this.#admit(256 + (keepInput ? o.requestBody!.length : 0) + (o.responseBody?.length ?? 0))) return;
    this.#enqueue({ ...o, kind: 'served', requestBody: keepInput ? o.requestBody!.toString('latin1') : null, responseBody: o.responseBody === null ? null : o.responseBody.toString('latin1') });
  }

  shadowed(o: ShadowObservation): void {
    if (!this.#admit(256 + (o.responseBody?.length ?? 0))) return;
    this.#enqueue({ ...o, kind: 'shadow', responseBody: o.responseBody === null ? null : o.responseBody.toString('latin1') });
  }

  /** Parsed pairs of a route and how many agreed (as of the worker's last report). */
  agreementOf(route: string): { agree: number; parsed: number } {
    return { ...(this.#totals.agreement[route] ?? { agree: 0, parsed: 0 }) };
  }

  /** Labelled outcomes per variant of a route (as of the worker's last report). */
  outcomesOf(route: string): Record<string, { n: number; correct: number }> {
    return Object.fromEntries(Object.entries(this.#totals.outcomes[route] ?? {}).map(([variant, o]) => [variant, { ...o }]));
  }

  /** Prediction counts per arm and the last drift results of a route (as of the worker's last report; null: none yet). */
  predictionsOf(route: string): RoutePredictionTotals | null {
    return this.#totals.predictions?.[route] ?? null;
  }

  /** Joins ground-truth labels in the worker; resolves with one status per item. */
  async feedback(items: readonly { requestId: string; label: unknown }[]): Promise<FeedbackResult[]> {
    this.#send();
    return (await this.#call((id) => ({ type: 'feedback', id, items: [...items] }))) as FeedbackResult[];
  }

  /** The worker's metric series (prom-client JSON), for the serving thread's /metrics. */
  async metricsJSON(timeoutMs = 2_000): Promise<unknown[]> {
    this.#metrics.recorderBytes.labels(bufferLabels.toWorker).set(this.#bytes);
    if (this.#down !== null || this.#closed !== null) return [];
    // A scrape must answer even when the worker is busy: without its series after the timeout, not never.
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<unknown[]>((resolve) => {
      timer = setTimeout(() => resolve([]), timeoutMs);
    });
    try {
      return await Promise.race([this.#call((id) => ({ type: 'metrics', id })) as Promise<unknown[]>, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends what is waiting and resolves when the worker has processed and written it (tests and shutdown). */
  async flush(): Promise<void> {
    this.#send();
    await this.#call((id) => ({ type: 'flush', id }));
  }

  /** Processes and writes everything, writes unpaired leftovers, closes the sink and stops the worker. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      if (this.#restartTimer !== null) clearTimeout(this.#restartTimer);
      this.#worker.ref();
      if (this.#down === null) {
        this.#send();
        await this.#call((id) => ({ type: 'close', id })).catch(() => undefined);
      }
      await this.#worker.terminate();
    })();
    return this.#closed;
  }

  /** Whether an observation of `bytes` may wait for the worker; counts it as lost when not. */
  #admit(bytes: number): boolean {
    if (this.#down !== null || this.#closed !== null) {
      this.#workerDown.inc();
      return false;
    }
    if (this.#unacked + this.#outbox.length >= this.#maxQueue) {
      this.#queueFull.inc();
      return false;
    }
    if (this.#bytes + bytes > this.#maxBytes) {
      this.#overBudget.inc();
      return false;
    }
    return true;
  }

  #enqueue(item: WireObservation): void {
    this.#bytes += wireBytes(item);
    this.#outbox.push(item);
    if (this.#timer === null) {
      this.#timer = setTimeout(() => this.#send(), this.#batchMs);
      this.#timer.unref();
    }
  }

  #send(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    if (this.#outbox.length === 0) return;
    const items = this.#outbox;
    this.#outbox = [];
    this.#unacked += items.length;
    this.#post({ type: 'observations', items });
  }

  #post(message: ToWorker): void {
    if (this.#down === null) this.#worker.postMessage(message);
  }

  #call(build: (id: number) => ToWorker): Promise<unknown> {
    if (this.#down !== null) return Promise.reject(this.#down);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      this.#post(build(id));
    });
  }

  #receive(message: FromWorker): void {
    if (message.type === 'ack') {
      this.#unacked = Math.max(0, this.#unacked - message.processed);
      this.#bytes = Math.max(0, this.#bytes - message.bytes);
      if (message.totals !== null) this.#totals = { ...message.totals, predictions: message.totals.predictions ?? this.#totals.predictions };
      return;
    }
    if (message.type === 'sink-error') {
      // Not a worker failure: the sink keeps trying and counts its drops; the operator should still hear of it.
      const now = Date.now();
      if (now - this.#lastSinkErrorAt >= 10_000) {
        this.#lastSinkErrorAt = now;
        this.#onSinkError(new Error(message.message));
      }
      return;
    }
    const waiting = this.#waiting.get(message.id);
    this.#waiting.delete(message.id);
    waiting?.resolve(message.result);
  }

  #fail(err: Error): void {
    if (this.#down !== null) return;
    this.#down = err;
    const lost = this.#unacked + this.#outbox.length;
    if (lost > 0) this.#workerDown.inc(lost);
    this.#outbox = [];
    this.#unacked = 0;
    this.#bytes = 0;
    for (const waiting of this.#waiting.values()) waiting.reject(err);
    this.#waiting.clear();
    this.#onError(err);
    if (this.#closed !== null) return;
    // What the failed worker held (half-joined pairs, the feedback join table) is gone; a new one starts empty.
    const delay = this.#restartDelayMs;
    this.#restartDelayMs = Math.min(30_000, delay * 2);
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = null;
      if (this.#closed !== null) return;
      void this.#worker.terminate();
      this.#worker = this.#spawn();
      this.#down = null;
    }, delay);
    this.#restartTimer.unref();
  }

  /** True while the worker is down and not yet restarted (observations are counted as lost meanwhile). */
  get down(): boolean {
    return this.#down !== null;
  }
}
