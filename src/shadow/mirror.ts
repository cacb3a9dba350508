// Fire-and-forget mirrors to shadow challengers: own pools, bounded in-flight per route, drop-and-count, never awaited.
import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import type { Arm, RouteDecision } from '../decision/snapshot.js';
import type { Metrics } from '../metrics/registry.js';
import { classifyUpstreamError, type UpstreamErrorKind } from '../proxy/error-map.js';
import type { MirroredRequest, MirrorLauncher, MirrorSkipReason } from '../proxy/data-plane.js';
import { captureFor, type ResponseCapture } from '../proxy/response-capture.js';
import type { StreamMetrics } from '../proxy/data-path-metrics.js';
import { isEventStream, StreamProbe, unconfiguredStreaming } from '../proxy/stream-probe.js';
import { upstreamCallEnd, upstreamCallStart, type UpstreamCallMessage } from '../proxy/trace-channels.js';
import { UpstreamPools } from '../proxy/upstreams.js';
import type { ObservationPort } from '../record/port.js';
import { rewriteBody, rewriteHeaders, shadowHeader } from './rewrite.js';

type CounterChild = ReturnType<Metrics['shadowDropped']['labels']>;
type HistogramChild = ReturnType<Metrics['shadowDuration']['labels']>;
type ResultSeries = ReturnType<Metrics['shadowRequests']['labels']>;

interface ShadowChildren {
  results: Record<'ok' | 'timeout' | 'error', ResultSeries>;
  duration: HistogramChild;
}

/** One mirrored call: an undici handler (controller API) that copies a capped response and reports it; the client never sees it. */
class MirrorCall implements Dispatcher.DispatchHandler {
  readonly mirror: ShadowMirror;
  readonly decision: RouteDecision;
  readonly arm: Arm;
  readonly requestId: string;
  readonly joinId: number;
  readonly startedAt: number;
  readonly startedAtEpoch: number;
  readonly capture: ResponseCapture | null;
  status: number;
  contentType: string | null;
  done: boolean;
  /** The call as published to trace subscribers, or null when nobody listened at its start. */
  trace: UpstreamCallMessage | null;
  /** Measures a streamed 2xx answer like a served one (stream-probe.ts); null for every other answer. */
  stream: StreamProbe | null;

  constructor(mirror: ShadowMirror, decision: RouteDecision, arm: Arm, requestId: string, joinId: number, captureLimit: number) {
    this.mirror = mirror;
    this.decision = decision;
    this.arm = arm;
    this.requestId = requestId;
    this.joinId = joinId;
    this.startedAt = performance.now();
    this.startedAtEpoch = Date.now();
    this.capture = captureFor(captureLimit);
    this.status = 0;
    this.contentType = null;
    this.done = false;
    this.trace = null;
    this.stream = null;
  }

  onRequestStart(): void {}

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    this.status = statusCode;
    const contentType = headers['content-type'];
    if (contentType !== undefined) this.contentType = contentType;
    // A streamed shadow answer is measured as a served one is (Exchange in proxy/data-plane.ts), so the shadow gate
    // and the pair records see its time to first token, gaps and interruptions too.
    if (statusCode >= 200 && statusCode < 300) {
      const streaming = this.decision.route.streaming;
      const sse = isEventStream(this.contentType);
      if (sse || (streaming !== null && headers['content-length'] === undefined)) this.stream = new StreamProbe(this.startedAt, streaming ?? unconfiguredStreaming, this.mirror.streamMetrics(this.decision.route.name, this.arm.name), sse);
    }
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.capture !== null) this.capture.add(chunk);
    if (this.stream !== null) this.stream.chunk(chunk);
  }

  onResponseEnd(): void {
    this.finish(this.status >= 500 ? 'status_5xx' : null);
  }

  onResponseError(_controller: Dispatcher.DispatchController | null, err: Error): void {
    if (this.stream !== null) this.stream.cut();
    this.finish(classifyUpstreamError(err));
  }

  finish(errorKind: UpstreamErrorKind | null): void {
    if (this.done) return;
    this.done = true;
    const latencyMs = performance.now() - this.startedAt;
    this.mirror.settled(this, errorKind, latencyMs);
    const trace = this.trace;
    if (trace !== null) {
      trace.status = this.status;
      trace.errorKind = errorKind;
      trace.latencyMs = latencyMs;
      upstreamCallEnd.publish(trace);
    }
  }
}

/** Launches mirrors for requests the decision selects; a shadow failure only ever touches shadow metrics and records. */
export class ShadowMirror implements MirrorLauncher {
  readonly #pools: UpstreamPools;
  readonly #metrics: Metrics;
  readonly #observations: ObservationPort;
  readonly #inFlight = new Map<string, number>();
  readonly #dropped = new Map<string, CounterChild>();
  readonly #bound = new Map<string, ShadowChildren>();
  readonly #streams = new Map<string, StreamMetrics>();

  /** Shadow traffic gets its own pools so it never takes a connection the served path needs. */
  constructor(metrics: Metrics, observations: ObservationPort, pools = new UpstreamPools({ connections: 64 })) {
    this.#metrics = metrics;
    this.#observations = observations;
    this.#pools = pools;
  }

  /** Mirrors in flight for a route (for tests and /v1/routes). */
  inFlight(route: string): number {
    return this.#inFlight.get(route) ?? 0;
  }

  launch(request: MirroredRequest): number {
    const decision = request.decision;
    const bucket = request.bucket;
    const route = decision.route;
    const body = Buffer.isBuffer(request.body) ? request.body : null;
    const method = request.method;
    let launched = 0;
    for (const shadow of decision.shadows!) {
      if (bucket > shadow.upTo) continue;
      const inFlight = this.#inFlight.get(route.name) ?? 0;
      if (inFlight >= route.shadowMaxInFlight) {
        this.#drop(route.name, 'in_flight_full');
        continue;
      }
      let mirroredBody = body;
      let mirroredHeaders: string[];
      const rewrite = shadow.rewrite;
      if (rewrite === null) mirroredHeaders = [...request.headers, shadowHeader, '1'];
      else {
        // Rewritten here, after the served request was dispatched, on a copy: the served request is never touched.
        if (rewrite.json !== null) {
          const rewritten = rewriteBody(body, rewrite.json);
          if (typeof rewritten === 'string') {
            this.#drop(route.name, rewritten);
            continue;
          }
          mirroredBody = rewritten;
        }
        mirroredHeaders = rewriteHeaders(request.headers, rewrite);
      }
      this.#inFlight.set(route.name, inFlight + 1);
      launched++;
      const call = new MirrorCall(this, decision, shadow.arm, request.requestId, request.joinId, this.#observations.captureBytes(route.name, true));
      const pool = this.#pools.get(shadow.arm.origin, route.connectTimeoutMs);
      const path = shadow.arm.basePath + request.path;
      if (upstreamCallStart.hasSubscribers) {
        // Published before the dispatch, so a subscriber can still set header fields (its own traceparent) on the copy.
        call.trace = { call: 'mirror', request, requestId: request.requestId, route: route.name, variant: shadow.arm.name, role: 'challenger', method, upstream: shadow.arm.origin, path, headers: mirroredHeaders, fallbackFrom: null, status: 0, errorKind: null, latencyMs: 0, fellBack: false };
        upstreamCallStart.publish(call.trace);
      }
      // setImmediate: the primary's dispatch goes out first; the mirror never delays it (docs/performance.md, "Mirrors go out after the primary and are never awaited").
      setImmediate(() => {
        try {
          pool.dispatch(
            { path, method: method as Dispatcher.HttpMethod, headers: mirroredHeaders, body: mirroredBody, headersTimeout: route.shadowTimeoutMs, bodyTimeout: route.shadowTimeoutMs },
            call,
          );
        } catch (err) {
          call.onResponseError(null, err as Error);
        }
      });
    }
    return launched;
  }

  skipped(decision: RouteDecision, bucket: number, reason: MirrorSkipReason): void {
    for (const shadow of decision.shadows!) if (bucket <= shadow.upTo) this.#drop(decision.route.name, reason);
  }

  /** Called once per mirror when it ends, successfully or not. */
  settled(call: MirrorCall, errorKind: UpstreamErrorKind | null, latencyMs: number): void {
    const route = call.decision.route.name;
    this.#inFlight.set(route, (this.#inFlight.get(route) ?? 1) - 1);
    const result = errorKind === null ? 'ok' : errorKind === 'timeout' ? 'timeout' : 'error';
    const children = this.#children(route, call.arm.name);
    children.results[result].inc();
    children.duration.observe(latencyMs / 1000);
    this.#observations.shadowed({
      route,
      requestId: call.requestId,
      joinId: call.joinId,
      variant: call.arm.name,
      status: errorKind !== null && call.status < 500 ? 0 : call.status,
      errorKind,
      latencyMs,
      startedAt: call.startedAtEpoch,
      responseBody: call.capture === null ? null : call.capture.body(),
      responseTruncated: call.capture !== null && call.capture.truncated,
      contentType: call.contentType,
      // No client reads a mirror, so whatever ended it is the shadow's doing: always evidence.
      stream: call.stream === null ? null : call.stream.end(true),
    });
  }

  /** The streaming metric children of a route's shadow variant, bound on its first streamed answer. */
  streamMetrics(route: string, variant: string): StreamMetrics {
    const key = `${route}|${variant}`;
    let found = this.#streams.get(key);
    if (!found) {
      const m = this.#metrics;
      found = { ttft: m.streamTtft.labels(route, variant), gap: m.streamGap.labels(route, variant), tokens: m.streamTokens.labels(route, variant), tokensPerSecond: m.streamTokensPerSecond.labels(route, variant), interrupted: m.streamInterrupted.labels(route, variant) };
      this.#streams.set(key, found);
    }
    return found;
  }

  /** Metric children bound once per route and shadow variant (label lookups cost more than the increment). */
  #children(route: string, variant: string): ShadowChildren {
    const key = `${route}|${variant}`;
    let found = this.#bound.get(key);
    if (!found) {
      const m = this.#metrics;
      found = {
        results: { ok: m.shadowRequests.labels(route, 'ok'), timeout: m.shadowRequests.labels(route, 'timeout'), error: m.shadowRequests.labels(route, 'error') },
        duration: m.shadowDuration.labels(route, variant),
      };
      this.#bound.set(key, found);
    }
    return found;
  }

  #drop(route: string, reason: string): void {
    const key = `${route}|${reason}`;
    let child = this.#dropped.get(key);
    if (!child) {
      child = this.#metrics.shadowDropped.labels(route, reason);
      this.#dropped.set(key, child);
    }
    child.inc();
  }

  /** Abandons mirrors still in flight: shadows are lossy by contract and must never hold up shutdown. */
  close(): Promise<void> {
    return this.#pools.destroy();
  }
}
