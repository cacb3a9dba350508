// Open-loop load generator (undici): a fixed arrival schedule, latency from the intended send time, exact percentiles in µs.
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Pool, type Dispatcher } from 'undici';
import { quietWindow, type QuietWindowOptions } from './lib/quiet-window.js';
import { percentileSorted } from './lib/stats.js';

/** Options for {@link runOpenLoop}. */
export interface OpenLoopOptions {
  /** Full URL of the call (origin and path). */
  url: string;
  /** Arrivals per second, on a fixed schedule (not Poisson): request i is due at start + i / rate. */
  rate: number;
  seconds: number;
  /** Upper bound on open connections; a request waits in the pool when all are busy, and that wait counts. */
  connections?: number;
  method?: Dispatcher.HttpMethod;
  body?: string;
  headers?: Record<string, string>;
  /**
   * Headers of request i on top of `headers` (e.g. a distinct sticky key and x-request-id per request), asked at its
   * send time; the companion gets the same. The preconnect round sends `headers` only.
   */
  headersFor?: (index: number) => Record<string, string>;
  /** How long to wait for stragglers after the last send before counting them as unfinished. */
  drainTimeoutMs?: number;
  /** Per-request headers and body timeout. */
  requestTimeoutMs?: number;
  /** Requests sent concurrently before the schedule starts to open connections (not measured). */
  preconnect?: number;
  /**
   * Seconds of the same schedule sent first and left out of every percentile (wrk2's "calibration" period). Each
   * run starts a new metronome thread and connection pool; in their first 1-1.5 s the generator itself sends late
   * (send-lag p99 ≈ 1.2 ms, max ≈ 5 ms against ≈ 0.1 ms afterwards, measured on the 2-vCPU machine), and that start-up
   * transient, not the target, set the p99 of a 5 s run. Default 0.
   */
  leadInSeconds?: number;
  /** Called synchronously just before the first measured send, after the lead-in (e.g. to take a CPU snapshot). */
  onStart?: () => void;
  /** Also return every request's latency in schedule order (to look for stalls over time). */
  keepSamples?: boolean;
  /**
   * A second URL (normally the direct upstream) sent the same request at the same due times, on its own connections.
   * Both series then share the machine's stalls, and `quiet` gives both over the bins where the companion was not
   * stalled (see lib/quiet-window.ts).
   */
  companionUrl?: string;
  /** How the companion marks stalls; defaults: 10 ms bins, stalled above 1 ms, one bin left out on each side. */
  quiet?: Partial<Omit<QuietWindowOptions, 'rate'>>;
}

/** The companion series of a run with `companionUrl`. */
export interface CompanionResult {
  url: string;
  ok2xx: number;
  non2xx: number;
  errors: number;
  unfinished: number;
  latencyUs: LatencyUs;
  samplesMs?: Float64Array;
}

/** Both series over the bins in which the companion was not stalled. */
export interface QuietResult extends Omit<QuietWindowOptions, 'rate'> {
  bins: number;
  stalledBins: number;
  /** Share of the measured window left out, 0..1. */
  excludedShare: number;
  latencyUs: LatencyUs;
  companionLatencyUs: LatencyUs;
}

const defaultQuietOptions: Readonly<Omit<QuietWindowOptions, 'rate'>> = Object.freeze({ binMs: 10, stallMs: 1, padBins: 1 });

/** Percentiles of a latency sample, in microseconds. */
export interface LatencyUs {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

/** What one open-loop run measured. */
export interface OpenLoopResult {
  url: string;
  rate: number;
  seconds: number;
  connections: number;
  scheduled: number;
  /** Responses received (any status). */
  completed: number;
  ok2xx: number;
  non2xx: number;
  /** Transport errors (connect, reset, timeout). */
  errors: number;
  /** Requests still without an answer when the drain timeout passed. */
  unfinished: number;
  /** Seconds sent before the measured window (its requests count in the totals above, not in any percentile). */
  leadInSeconds: number;
  /** Answers to requests due in the measured window (for CPU per request over the window onStart opened). */
  measuredCompleted: number;
  errorCodes: Record<string, number>;
  /** From the first due time to the last answer. */
  elapsedS: number;
  achievedRps: number;
  /** End-to-end latency from the intended send time: includes queueing and generator lag (corrected for coordinated omission). */
  latencyUs: LatencyUs;
  /** Latency from the moment the request was handed to undici. */
  serviceUs: LatencyUs;
  /** How late the generator sent (event-loop stalls, wake-up latency); it is part of latencyUs. */
  sendLagUs: { p50: number; p99: number; max: number };
  /** End-to-end latency over the whole run, lead-in included (for comparison; the figures above leave it out). */
  wholeRunLatencyUs: LatencyUs;
  /** With `keepSamples`: latency (ms, NaN when unanswered) of request i, which was due at i / rate seconds (lead-in included). */
  samplesMs?: Float64Array;
  /** With `companionUrl`: the companion's own figures over the measured window. */
  companion?: CompanionResult;
  /** With `companionUrl`: both series over the companion's quiet bins. */
  quiet?: QuietResult;
}

function summarise(samples: Float64Array): LatencyUs {
  const finite = samples.filter((v) => !Number.isNaN(v)).sort();
  let sum = 0;
  for (const v of finite) sum += v;
  const us = (ms: number) => Math.round(ms * 10_000) / 10; // ms -> µs with 0.1 µs resolution
  return {
    p50: us(percentileSorted(finite, 0.5)),
    p90: us(percentileSorted(finite, 0.9)),
    p99: us(percentileSorted(finite, 0.99)),
    p999: us(percentileSorted(finite, 0.999)),
    max: us(percentileSorted(finite, 1)),
    mean: us(finite.length > 0 ? sum / finite.length : Number.NaN),
  };
}

/** Bookkeeping for one run; the handlers below report into it. */
class Schedule {
  readonly intendedMs: Float64Array;
  readonly sentMs: Float64Array;
  readonly latencyMs: Float64Array;
  readonly serviceMs: Float64Array;
  readonly errorCodes: Record<string, number> = {};
  ok2xx = 0;
  non2xx = 0;
  errors = 0;
  settled = 0;
  lastAnswerMs = 0;
  onSettled: (() => void) | null = null;

  constructor(readonly total: number) {
    this.intendedMs = new Float64Array(total);
    this.sentMs = new Float64Array(total);
    this.latencyMs = new Float64Array(total).fill(Number.NaN);
    this.serviceMs = new Float64Array(total).fill(Number.NaN);
  }

  answered(index: number, status: number): void {
    const now = performance.now();
    this.latencyMs[index] = now - (this.intendedMs[index] as number);
    this.serviceMs[index] = now - (this.sentMs[index] as number);
    if (status >= 200 && status < 300) this.ok2xx++;
    else this.non2xx++;
    this.lastAnswerMs = now;
    this.settle();
  }

  failed(err: Error): void {
    const code = (err as { code?: string }).code ?? err.name;
    this.errorCodes[code] = (this.errorCodes[code] ?? 0) + 1;
    this.errors++;
    this.settle();
  }

  settle(): void {
    this.settled++;
    if (this.settled === this.total) this.onSettled?.();
  }
}

/*
 * The metronome thread. Node timers have 1 ms granularity, so at 2,000 req/s requests due in between would leave in
 * bursts up to 1 ms late (p50 lag ≈ 0.5 ms, measured). Atomics.wait sleeps with sub-millisecond precision without
 * spinning; each wake-up posts a message, which wakes the main event loop at once.
 */
const metronomeSource = `
const { parentPort, workerData } = require('node:worker_threads');
const { periodMs, total } = workerData;
const sleeper = new Int32Array(new SharedArrayBuffer(4));
const now = () => performance.timeOrigin + performance.now();
parentPort.once('message', (startEpochMs) => {
  let index = 0;
  while (index < total) {
    const wait = startEpochMs + index * periodMs - now();
    if (wait > 0) Atomics.wait(sleeper, 0, 0, wait);
    parentPort.postMessage(0);
    index = Math.max(index + 1, Math.floor((now() - startEpochMs) / periodMs) + 1);
  }
});
parentPort.postMessage('ready');
`;

/** A metronome thread, started and ready before the schedule begins (a worker takes tens of ms to boot). */
interface Metronome {
  /** Starts ticking at each due time of the schedule (absolute epoch ms), calling `tick` on the main thread. */
  start(startEpochMs: number, tick: () => void): void;
  stop(): Promise<void>;
}

async function startMetronome(periodMs: number, total: number): Promise<Metronome> {
  const worker = new Worker(metronomeSource, { eval: true, workerData: { periodMs, total } });
  await new Promise<void>((resolve, reject) => {
    worker.once('message', () => resolve());
    worker.once('error', reject);
  });
  // Never keeps the process alive, even if a run throws before stop().
  worker.unref();
  let listener: (() => void) | null = null;
  return {
    start(startEpochMs, tick) {
      listener = tick;
      worker.on('message', tick);
      worker.postMessage(startEpochMs);
    },
    async stop() {
      if (listener !== null) worker.off('message', listener);
      await worker.terminate();
    },
  };
}

/** One in-flight request: a minimal undici dispatch handler that discards the body. */
class Call implements Dispatcher.DispatchHandler {
  status = 0;
  constructor(readonly schedule: Schedule | null, readonly index: number, readonly done: ((err: Error | null) => void) | null) {}
  onConnect(): void {}
  onHeaders(statusCode: number): boolean {
    this.status = statusCode;
    return true;
  }
  onData(): boolean {
    return true;
  }
  onComplete(): void {
    if (this.schedule !== null) this.schedule.answered(this.index, this.status);
    this.done?.(null);
  }
  onError(err: Error): void {
    if (this.schedule !== null) this.schedule.failed(err);
    this.done?.(err);
  }
}

/**
 * Sends `rate × seconds` requests on a fixed schedule regardless of how fast answers come back (open loop), so a slow
 * target builds a queue that shows in the percentiles instead of slowing the generator down (coordinated omission).
 */
export async function runOpenLoop(options: OpenLoopOptions): Promise<OpenLoopResult> {
  const target = new URL(options.url);
  const connections = options.connections ?? 64;
  const timeout = options.requestTimeoutMs ?? 10_000;
  const pool = new Pool(target.origin, { connections, pipelining: 1, headersTimeout: timeout, bodyTimeout: timeout, keepAliveTimeout: 30_000 });
  const fixedRequest: Dispatcher.DispatchOptions = {
    path: target.pathname + target.search,
    method: options.method ?? 'GET',
    headers: options.headers ?? {},
    body: options.body ?? null,
  };
  const companionTarget = options.companionUrl === undefined ? null : new URL(options.companionUrl);
  const companionPool = companionTarget === null ? null : new Pool(companionTarget.origin, { connections, pipelining: 1, headersTimeout: timeout, bodyTimeout: timeout, keepAliveTimeout: 30_000 });
  const fixedCompanionRequest: Dispatcher.DispatchOptions | null = companionTarget === null ? null : { ...fixedRequest, path: companionTarget.pathname + companionTarget.search };
  try {
    // Open connections first so connection setup is not measured (one round, not a closed-loop warm-up).
    const preconnect = options.preconnect ?? connections;
    const open = (p: Pool, r: Dispatcher.DispatchOptions) => Array.from({ length: preconnect }, () => new Promise<void>((resolve) => p.dispatch(r, new Call(null, 0, () => resolve()))));
    await Promise.all([...open(pool, fixedRequest), ...(companionPool === null ? [] : open(companionPool, fixedCompanionRequest!))]);

    const leadIn = Math.max(0, Math.round(options.rate * (options.leadInSeconds ?? 0)));
    const total = leadIn + Math.max(1, Math.round(options.rate * options.seconds));
    const periodMs = 1000 / options.rate;
    const schedule = new Schedule(total);
    const companion = companionPool === null ? null : new Schedule(total);
    const clock = await startMetronome(periodMs, total);
    const allSettled = Promise.all([new Promise<void>((resolve) => (schedule.onSettled = resolve)), companion === null ? null : new Promise<void>((resolve) => (companion.onSettled = resolve))]);
    if (leadIn === 0) options.onStart?.();
    const startMs = performance.now();
    for (let i = 0; i < total; i++) schedule.intendedMs[i] = startMs + i * periodMs;
    if (companion !== null) companion.intendedMs.set(schedule.intendedMs);

    let next = 0;
    const sendDue = (): void => {
      const now = performance.now();
      while (next < total && (schedule.intendedMs[next] as number) <= now) {
        if (next === leadIn && leadIn > 0) options.onStart?.();
        schedule.sentMs[next] = now;
        const extra = options.headersFor?.(next);
        const request = extra === undefined ? fixedRequest : { ...fixedRequest, headers: { ...options.headers, ...extra } };
        const companionRequest = extra === undefined || fixedCompanionRequest === null ? fixedCompanionRequest : { ...fixedCompanionRequest, headers: request.headers };
        if (companion === null) pool.dispatch(request, new Call(schedule, next, null));
        else {
          // Which of the two leaves first alternates, so neither series is always second on the wire.
          companion.sentMs[next] = now;
          const targetCall = new Call(schedule, next, null);
          const companionCall = new Call(companion, next, null);
          if (next % 2 === 0) {
            pool.dispatch(request, targetCall);
            companionPool!.dispatch(companionRequest!, companionCall);
          } else {
            companionPool!.dispatch(companionRequest!, companionCall);
            pool.dispatch(request, targetCall);
          }
        }
        next++;
      }
    };
    clock.start(performance.timeOrigin + startMs, sendDue);
    const lastDue = startMs + (total - 1) * periodMs;
    let drainTimer: NodeJS.Timeout | undefined;
    await Promise.race([allSettled, new Promise<void>((resolve) => (drainTimer = setTimeout(resolve, lastDue - performance.now() + (options.drainTimeoutMs ?? 5_000))))]);
    clearTimeout(drainTimer);
    await clock.stop();

    const completed = schedule.ok2xx + schedule.non2xx;
    const endMs = schedule.lastAnswerMs > 0 ? schedule.lastAnswerMs : performance.now();
    const lag = new Float64Array(Math.max(0, next - leadIn));
    for (let i = leadIn; i < next; i++) lag[i - leadIn] = (schedule.sentMs[i] as number) - (schedule.intendedMs[i] as number);
    let measuredCompleted = 0;
    for (let i = leadIn; i < total; i++) if (!Number.isNaN(schedule.latencyMs[i] as number)) measuredCompleted++;
    const lagUs = summarise(lag);
    const elapsedS = (endMs - startMs) / 1000;
    return {
      url: options.url,
      rate: options.rate,
      seconds: options.seconds,
      connections,
      scheduled: total,
      completed,
      ok2xx: schedule.ok2xx,
      non2xx: schedule.non2xx,
      errors: schedule.errors,
      unfinished: total - schedule.settled,
      leadInSeconds: leadIn / options.rate,
      measuredCompleted,
      errorCodes: schedule.errorCodes,
      elapsedS,
      achievedRps: completed / elapsedS,
      latencyUs: summarise(schedule.latencyMs.subarray(leadIn)),
      serviceUs: summarise(schedule.serviceMs.subarray(leadIn)),
      sendLagUs: { p50: lagUs.p50, p99: lagUs.p99, max: lagUs.max },
      wholeRunLatencyUs: summarise(schedule.latencyMs),
      ...(options.keepSamples ? { samplesMs: schedule.latencyMs } : {}),
      ...(companion === null ? {} : companionResults(options, companion, schedule, leadIn)),
    };
  } finally {
    await pool.destroy();
    await companionPool?.destroy();
  }
}

function companionResults(options: OpenLoopOptions, companion: Schedule, schedule: Schedule, leadIn: number): { companion: CompanionResult; quiet: QuietResult } {
  const quietOptions = { ...defaultQuietOptions, ...options.quiet };
  const window = quietWindow(schedule.latencyMs.subarray(leadIn), companion.latencyMs.subarray(leadIn), { rate: options.rate, ...quietOptions });
  return {
    companion: {
      url: options.companionUrl!,
      ok2xx: companion.ok2xx,
      non2xx: companion.non2xx,
      errors: companion.errors,
      unfinished: companion.total - companion.settled,
      latencyUs: summarise(companion.latencyMs.subarray(leadIn)),
      ...(options.keepSamples ? { samplesMs: companion.latencyMs } : {}),
    },
    quiet: {
      ...quietOptions,
      bins: window.bins,
      stalledBins: window.stalledBins,
      excludedShare: window.excludedShare,
      latencyUs: summarise(window.target),
      companionLatencyUs: summarise(window.companion),
    },
  };
}

const usage = 'Usage: node dist/bench/openloop.js <url> [rate=2000] [seconds=5] [connections=64] [GET|POST] [body]';

async function main(): Promise<void> {
  const [url, rate = '2000', seconds = '5', connections = '64', method = 'GET', body] = process.argv.slice(2);
  if (url === undefined || url === '--help') {
    console.log(usage);
    return;
  }
  const result = await runOpenLoop({
    url,
    rate: Number(rate),
    seconds: Number(seconds),
    connections: Number(connections),
    method: method as Dispatcher.HttpMethod,
    body,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
  });
  console.log(JSON.stringify(result, null, 2));
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
