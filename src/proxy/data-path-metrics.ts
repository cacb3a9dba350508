// Pre-bound metric children for the request path, so a request only increments (no label hashing per call).
import type { Counter } from 'prom-client';
import type { Arm } from '../decision/snapshot.js';
import type { Metrics } from '../metrics/registry.js';
import type { UpstreamErrorKind } from './error-map.js';

type CounterChild = ReturnType<Counter<string>['labels']>;
type RequestSeries = ReturnType<Metrics['requests']['labels']>;
type DurationSeries = ReturnType<Metrics['requestDuration']['labels']>;
type HistogramChild = ReturnType<Metrics['streamGap']['labels']>;

/** Metric children of one arm's streamed answers (src/proxy/stream-probe.ts). */
export interface StreamMetrics {
  readonly ttft: HistogramChild;
  /** Observed once per gap between two chunks. */
  readonly gap: HistogramChild;
  readonly tokens: HistogramChild;
  readonly tokensPerSecond: HistogramChild;
  readonly interrupted: ReturnType<Metrics['streamInterrupted']['labels']>;
}

/** Metric children for one arm of one route; `requests` is indexed by status class (0 = 1xx ... 4 = 5xx). */
export interface ArmMetrics {
  readonly requests: readonly RequestSeries[];
  readonly duration: DurationSeries;
  error(kind: UpstreamErrorKind): void;
  fallback(): void;
  /** A request sent once more after its connection was closed before any answer (the failed try is not an error). */
  retry(): void;
  /** The children of streamed answers, bound on the first one (most arms never stream, and unused children export zeros). */
  streams(): StreamMetrics;
}

const classes = ['1xx', '2xx', '3xx', '4xx', '5xx'];

/** Caches children per compiled arm object; a policy reload compiles new arms, and the old ones are collected. */
export class DataPathMetrics {
  readonly #metrics: Metrics;
  readonly #byArm = new WeakMap<Arm, ArmMetrics>();
  readonly #fallbackByArm = new WeakMap<Arm, ArmMetrics>();
  readonly #rejected = new Map<string, CounterChild>();

  constructor(metrics: Metrics) {
    this.#metrics = metrics;
  }

  /** Children for an arm; `asFallback` labels the champion's answers given in place of a failed challenger. */
  forArm(route: string, arm: Arm, asFallback: boolean): ArmMetrics {
    const cache = asFallback ? this.#fallbackByArm : this.#byArm;
    let found = cache.get(arm);
    if (!found) {
      found = this.#bind(route, arm, asFallback ? 'fallback' : arm.role);
      cache.set(arm, found);
    }
    return found;
  }

  rejected(reason: string): void {
    let child = this.#rejected.get(reason);
    if (!child) {
      child = this.#metrics.rejected.labels(reason);
      this.#rejected.set(reason, child);
    }
    child.inc();
  }

  #bind(route: string, arm: Arm, role: string): ArmMetrics {
    const m = this.#metrics;
    const errors = new Map<UpstreamErrorKind, CounterChild>();
    const fallbacks = m.fallbacks.labels(route, arm.name);
    let retries: CounterChild | null = null;
    let streams: StreamMetrics | null = null;
    return {
      requests: classes.map((c) => m.requests.labels(route, arm.name, role, c)),
      duration: m.requestDuration.labels(route, arm.name, role),
      error(kind) {
        let child = errors.get(kind);
        if (!child) {
          child = m.upstreamErrors.labels(route, arm.name, kind);
          errors.set(kind, child);
        }
        child.inc();
      },
      fallback() {
        fallbacks.inc();
      },
      retry() {
        // Bound on first use: most arms never retry, and an unused child would export a zero series for each.
        (retries ??= m.upstreamRetries.labels(route, arm.name)).inc();
      },
      streams() {
        return (streams ??= {
          ttft: m.streamTtft.labels(route, arm.name),
          gap: m.streamGap.labels(route, arm.name),
          tokens: m.streamTokens.labels(route, arm.name),
          tokensPerSecond: m.streamTokensPerSecond.labels(route, arm.name),
          interrupted: m.streamInterrupted.labels(route, arm.name),
        });
      },
    };
  }
}
