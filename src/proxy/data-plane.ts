// The request path: match a route, pick the arm, stream the request to it through undici and the answer back.
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import type { Dispatcher, Pool } from 'undici';
import { SWY_ERR_BODY_TOO_LARGE, SWY_ERR_CLIENT_TIMEOUT, SWY_ERR_DRAINING, SWY_ERR_HEADERS_TOO_LARGE, SWY_ERR_INTERNAL, SWY_ERR_METHOD_NOT_ALLOWED, SWY_ERR_NO_ROUTE, SWY_ERR_BAD_REQUEST, SWY_ERR_UPSTREAM_BUSY } from '../errors.js';
import { randomBucket, stickyBucket } from '../decision/bucket.js';
import { matchRoute, servingArm } from '../decision/split.js';
import type { Arm, CompiledRoute, RouteDecision, SnapshotRef } from '../decision/snapshot.js';
import { isClientFault, type ObservationPort } from '../record/port.js';
import { classifyUpstreamError, clientErrorFor, type UpstreamErrorKind } from './error-map.js';
import type { RequestLog } from './request-log.js';
import { ResponseCapture } from './response-capture.js';
import { isEventStream, StreamProbe, unconfiguredStreaming } from './stream-probe.js';
import { upstreamCallEnd, upstreamCallStart, type UpstreamCallMessage } from './trace-channels.js';
import { cookieValue, isValidHost, maxRequestHeaderFields, queryValue, responseHeaders, scanRequestHeaders, type ResponseFraming } from './headers.js';
import type { ArmMetrics, DataPathMetrics } from './data-path-metrics.js';
import type { Lane, UpstreamPools } from './upstreams.js';

/** What a mirror needs of the request it copies; the data path's per-request context is one. */
export interface MirroredRequest {
  readonly decision: RouteDecision;
  readonly bucket: number;
  readonly method: string;
  /** The request target as the client sent it (the upstream's base path is put in front). */
  readonly path: string;
  /** The forwarded header fields, flat [name, value, ...]; a mirror sends a copy. */
  readonly headers: readonly string[];
  /** The kept body (mirrors are launched only for requests whose body was kept or that have none). */
  readonly body: Buffer | IncomingMessage | Transform | null;
  readonly requestId: string;
  /** The process-unique id its served and shadow answers are paired on; see record/port.ts. */
  readonly joinId: number;
}

/**
 * Why a request's mirrors were not sent, decided before its body is read: too large or streamed to keep, a method not
 * mirrored, or shed while the route's champion is slow (the shadow budget, src/decision/champion-latency.ts).
 */
export type MirrorSkipReason = 'body_too_large' | 'body_streamed' | 'method' | 'shed';

/** Starts mirrors for one request; supplied by the shadow layer, null when no route mirrors. */
export interface MirrorLauncher {
  /** Called after the primary was dispatched; must return at once (it schedules its own work). Returns mirrors launched. */
  launch(request: MirroredRequest): number;
  /** Counts the mirrors a request would have had, by why they were not sent. */
  skipped(decision: RouteDecision, bucket: number, reason: MirrorSkipReason): void;
}

/** Everything the request path needs, wired once by the composition root. */
export interface DataPlaneDeps {
  snapshots: SnapshotRef;
  pools: UpstreamPools;
  metrics: DataPathMetrics;
  observations: ObservationPort;
  mirror: MirrorLauncher | null;
  /** Request bodies up to this size are kept in memory when a fallback, mirror or record needs them. */
  keepBodyBytes: number;
  /** Gets a line per failed request (and a sampled share of successful ones); null: no request log. */
  requestLog?: RequestLog | null;
}

/** Mutable lifecycle flags shared with the server (draining on SIGTERM). */
export interface Lifecycle {
  draining: boolean;
}

const jsonType = 'application/json; charset=utf-8';
/**
 * The last join id handed out: mirrored requests are paired with their shadow answers on this process-unique number,
 * never on the client's x-request-id, which two requests may share.
 */
let lastJoinId = 0;

/**
 * Where a response's current exchange is kept, so the response's shared 'close' and 'timeout' listeners can reach it.
 * A module-private symbol: no name another module (or Node itself) could use or overwrite, and no cast where it is set.
 */
const exchangeSlot: unique symbol = Symbol('switchyard.exchange');

declare module 'http' {
  interface ServerResponse {
    [exchangeSlot]?: Exchange;
  }
}

/** Writes a JSON error once; the body shape is stable: {"error":{"code","message","requestId"}}. */
function sendError(res: ServerResponse, err: { statusCode?: number; code: string; message: string }, requestId: string, variant: string | null, close = false): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ error: { code: err.code, message: err.message, requestId } });
  const headers: string[] = ['content-type', jsonType, 'content-length', String(Buffer.byteLength(body)), 'x-request-id', requestId];
  if (variant !== null) headers.push('x-switchyard-variant', variant);
  if (close) headers.push('connection', 'close');
  res.writeHead(err.statusCode ?? 500, headers);
  res.end(body);
}

/** Counts bytes of a streamed (chunked) body and fails the stream past the limit, so the limit holds without buffering. */
class BodyLimit extends Transform {
  #seen = 0;
  readonly #limit: number;
  readonly #route: string;
  constructor(limit: number, route: string) {
    super();
    this.#limit = limit;
    this.#route = route;
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#seen += chunk.length;
    if (this.#seen > this.#limit) callback(new SWY_ERR_BODY_TOO_LARGE(this.#limit, this.#route));
    else callback(null, chunk);
  }
}

/**
 * Thrown from `onRequestStart` for an exchange that already ended while it waited for a connection: undici then drops
 * the request without writing it and keeps the connection (aborting would destroy it). One shared instance: no stack
 * per use.
 */
const endedWhileWaiting = Object.assign(new Error('the exchange ended before it got an upstream connection'), { code: 'SWY_ERR_ENDED_WHILE_WAITING' });
/** Ends an exchange whose client left before the answer was complete (counted as client_abort). */
const clientLeft = Object.assign(new Error('the client went away before the answer was complete'), { code: 'SWY_ERR_CLIENT_ABORTED' });

/** The wait for one of the lane's connections lasted the route's requestMs: refuse the request (it was never sent). */
function connectionWaitTimedOut(exchange: Exchange): void {
  exchange.queueTimer = null;
  const route = exchange.ctx.decision.route;
  exchange.fail(new SWY_ERR_UPSTREAM_BUSY(route.name, exchange.arm.name, route.requestTimeoutMs));
}

/**
 * True when the request may be sent again after `err`: the upstream closed or reset the connection before any byte
 * of an answer arrived, the body can be replayed (none, or kept in memory), it was not retried yet, and sending it
 * twice is harmless: GET and HEAD always, other methods (POST) on a route declared `sideEffectFree`.
 */
function mayRetry(exchange: Exchange, err: Error): boolean {
  if (exchange.retried || exchange.status !== 0 || exchange.streamed || exchange.ctx.res.headersSent) return false;
  const code = (err as { code?: unknown }).code;
  if (code !== 'UND_ERR_SOCKET' && code !== 'ECONNRESET' && code !== 'EPIPE') return false;
  const method = exchange.ctx.method;
  return method === 'GET' || method === 'HEAD' || exchange.ctx.decision.route.policy.sideEffectFree;
}

/**
 * Returns true when a request path holds something an upstream could resolve outside the route prefix: a dot segment,
 * plain or percent-encoded, or a backslash. WHATWG URL parsers (`new URL()`) read a backslash as "/", so
 * `/v1/models/main\..\admin` is `/v1/admin` to them; RFC 3986 does not allow a raw backslash in a path at all. An
 * encoded one (%5C) is data, unless it would make a dot segment for a server that decodes it into a separator.
 */
function unsafePath(path: string): boolean {
  // On every request: the common path holds no ".", "%" or backslash, and a one-character scan costs less than half of a
  // two-character one (V8), so those come first and the pairs are looked for only when their first character is there.
  if (path.indexOf('\\') === -1 && (path.indexOf('.') === -1 || path.indexOf('/.') === -1) && (path.indexOf('%') === -1 || (path.indexOf('%2') === -1 && path.indexOf('%5') === -1))) return false;
  const end = path.indexOf('?');
  const raw = end === -1 ? path : path.slice(0, end);
  if (raw.indexOf('\\') !== -1) return true;
  const pathname = raw.replace(/%2e/gi, '.').replace(/%2f|%5c/gi, '/');
  return pathname.split('/').some((segment) => segment === '.' || segment === '..');
}

/**
 * One client request as the data path handles it, built once in `#route`: the served exchange, a fallback and the
 * mirrors all read it instead of taking a dozen arguments each.
 */
class RequestContext implements MirroredRequest {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly decision: RouteDecision;
  /** The arm the bucket chose. */
  readonly arm: Arm;
  readonly method: string;
  readonly path: string;
  readonly requestId: string;
  readonly stickyKey: string | null;
  readonly bucket: number;
  readonly headers: string[];
  /** Set once known: none, the kept buffer (after it has fully arrived), or the stream that carries it upstream. */
  body: Buffer | IncomingMessage | Transform | null;
  /** Whether this request is mirrored (decided before the body is read). */
  mirrors: boolean;
  /** How many mirrors were launched, and the id their answers are paired on (0: not mirrored). */
  mirrored: number;
  joinId: number;

  constructor(req: IncomingMessage, res: ServerResponse, decision: RouteDecision, arm: Arm, method: string, path: string, requestId: string, stickyKey: string | null, bucket: number, headers: string[], mirrors: boolean) {
    this.req = req;
    this.res = res;
    this.decision = decision;
    this.arm = arm;
    this.method = method;
    this.path = path;
    this.requestId = requestId;
    this.stickyKey = stickyKey;
    this.bucket = bucket;
    this.headers = headers;
    this.body = null;
    this.mirrors = mirrors;
    this.mirrored = 0;
    this.joinId = 0;
  }
}

/** What the data path keeps per compiled arm, found with one lookup per exchange: its metric children and its lane. */
interface ArmRuntime {
  readonly metrics: ArmMetrics;
  /** Children for the champion's answers given in place of a failed challenger; bound on the first fallback. */
  fallbackMetrics: ArmMetrics | null;
  lane: Lane;
}

/**
 * One upstream exchange, implemented as an undici dispatch handler (the controller API of undici 7 and 8): it streams
 * the upstream answer straight to the client: `dispatch` with our own handler avoids the per-response stream of
 * `request()` + pipe (docs/performance.md, "Upstream calls: undici `dispatch` with our own handler").
 */
class Exchange implements Dispatcher.DispatchHandler, ResponseFraming {
  readonly plane: DataPlane;
  readonly ctx: RequestContext;
  readonly arm: Arm;
  readonly armMetrics: ArmMetrics;
  /** The route's connections to this arm's upstream. */
  readonly lane: Lane;
  /**
   * When the upstream's time starts (performance.now()). An exchange is created once the request can be handed to the
   * upstream: a buffered body has fully arrived by then, so the client's upload is already behind it. A streamed body
   * (chunked, or above the keep limit) is dispatched at once and flows at the client's pace, so the end of that stream
   * (undici has read, and so written, its last byte) moves the start there: what the upstream did after the whole
   * request reached it is what counts, never how fast the client sent it.
   */
  startedAt: number;
  readonly startedAtEpoch: number;
  readonly streamed: boolean;
  readonly canFallBack: boolean;
  readonly fallbackFrom: Exchange | null;
  /** A capped copy of the answer for the prediction log, or null when this request records none. */
  readonly capture: ResponseCapture | null;
  status: number;
  contentType: string | null;
  /** Body bytes the upstream announced (-1: unknown), and how many have arrived; lets the last chunk go out with end(). */
  expectedBytes: number;
  receivedBytes: number;
  /** undici's handle on the call once it holds a connection (abort, pause, resume); null while it waits for one. */
  controller: Dispatcher.DispatchController | null;
  suppressed: boolean;
  done: boolean;
  /** Bounds the wait for a connection; armed only when the lane had none free at dispatch (see `start`). */
  queueTimer: NodeJS.Timeout | null;
  retried: boolean;
  /** The error that ended the exchange (for the request log), if any. */
  failure: unknown;
  /** The call as published to trace subscribers, or null when nobody listened at its start. */
  trace: UpstreamCallMessage | null;
  /** Measures a streamed 2xx answer (stream-probe.ts); null for every other answer. */
  stream: StreamProbe | null;

  constructor(plane: DataPlane, ctx: RequestContext, arm: Arm, fallbackFrom: Exchange | null, captureLimit: number) {
    const runtime = plane.runtimeOf(ctx.decision.route, arm);
    this.plane = plane;
    this.ctx = ctx;
    this.arm = arm;
    this.armMetrics = fallbackFrom === null ? runtime.metrics : (runtime.fallbackMetrics ??= plane.metrics.forArm(ctx.decision.route.name, arm, true));
    this.lane = runtime.lane;
    this.startedAt = performance.now();
    this.startedAtEpoch = Date.now();
    const body = ctx.body;
    this.streamed = body !== null && !Buffer.isBuffer(body);
    // A fallback needs a replayable body: none, or one we kept in memory.
    this.canFallBack = arm.fallback && fallbackFrom === null && !this.streamed;
    this.fallbackFrom = fallbackFrom;
    this.capture = captureLimit > 0 ? new ResponseCapture(captureLimit) : null;
    this.status = 0;
    this.contentType = null;
    this.expectedBytes = -1;
    this.receivedBytes = 0;
    this.controller = null;
    this.suppressed = false;
    this.done = false;
    this.queueTimer = null;
    this.retried = false;
    this.failure = null;
    this.trace = null;
    this.stream = null;
  }

  start(): void {
    const lane = this.lane;
    // Beyond the lane's connections undici queues the request with no time limit. Only then is a timer armed: one per
    // request would cost every request, and below the limit a connection is free or being opened (connectMs bounds it).
    if (++lane.inFlight > lane.connections) this.queueTimer = setTimeout(connectionWaitTimedOut, this.ctx.decision.route.requestTimeoutMs, this);
    // Tracing costs one check when nobody listens (docs/performance.md, "Tracing through diagnostics_channel").
    if (upstreamCallStart.hasSubscribers) this.#publishStart();
    if (this.streamed) (this.ctx.body as IncomingMessage | Transform).once('end', () => this.bodySent());
    this.dispatchTo(lane.pool);
  }

  #publishStart(): void {
    const ctx = this.ctx;
    const trace: UpstreamCallMessage = {
      call: this.fallbackFrom === null ? 'served' : 'fallback',
      request: ctx,
      requestId: ctx.requestId,
      route: ctx.decision.route.name,
      variant: this.arm.name,
      role: this.arm.role,
      method: ctx.method,
      upstream: this.arm.origin,
      path: this.arm.basePath + ctx.path,
      headers: ctx.headers,
      fallbackFrom: this.fallbackFrom === null ? null : this.fallbackFrom.arm.name,
      status: 0,
      errorKind: null,
      latencyMs: 0,
      fellBack: false,
    };
    this.trace = trace;
    upstreamCallStart.publish(trace);
  }

  dispatchTo(pool: Pool): void {
    const ctx = this.ctx;
    const route = ctx.decision.route;
    pool.dispatch(
      {
        path: this.arm.basePath + ctx.path,
        method: ctx.method as Dispatcher.HttpMethod,
        headers: ctx.headers,
        body: ctx.body,
        headersTimeout: route.requestTimeoutMs,
        bodyTimeout: route.requestTimeoutMs,
      },
      this,
    );
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    if (this.queueTimer !== null) {
      clearTimeout(this.queueTimer);
      this.queueTimer = null;
    }
    // Refused or abandoned while it waited: undici drops it unsent (see endedWhileWaiting).
    if (this.done) throw endedWhileWaiting;
    this.controller = controller;
  }

  /**
   * Ends the exchange from our side with `err`: through undici when the request holds a connection (abort reports the
   * error back at once), directly while it still waits for one.
   */
  fail(err: Error): void {
    if (this.done) return;
    if (this.controller !== null) this.controller.abort(err);
    if (!this.done) this.#failed(err);
  }

  /**
   * A streamed body ended: undici has read its last byte and written it, so the upstream's time starts here (see
   * `startedAt`). The slow chunked upload in test/integration/client-faults.test.ts fails if this stops being called.
   */
  bodySent(): void {
    if (this.done) return;
    // An upstream that answered before the upload ended was timed from the dispatch: its answer did not wait for it.
    if (this.status === 0) this.startedAt = performance.now();
    // The whole body is in: the body idle timer stops (unless the answer already finished and node:http set its own
    // keep-alive timer on the socket in its place).
    const ctx = this.ctx;
    if (!ctx.res.writableFinished) ctx.req.socket?.setTimeout(0);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    // An informational answer (103 Early Hints, or any 1xx) precedes the real one: skipped, the final one is served.
    if (statusCode < 200) return;
    this.status = statusCode;
    if (statusCode >= 500 && this.canFallBack) {
      // The champion will answer instead; drain and discard the challenger's body.
      this.suppressed = true;
      return;
    }
    const ctx = this.ctx;
    const out = responseHeaders(headers, this.arm.name, ctx.requestId, this);
    if (this.fallbackFrom !== null) out.push('x-switchyard-fallback-from', this.fallbackFrom.arm.name);
    if (this.plane.lifecycle.draining) out.push('connection', 'close');
    ctx.res.writeHead(statusCode, out);
    // A streamed answer is measured (docs/statistics.md, "Streaming service levels"): any event stream, and an answer
    // without a Content-Length on a route with a streaming policy. Every other answer pays the two tests.
    if (statusCode < 300) {
      const streaming = ctx.decision.route.streaming;
      const sse = isEventStream(this.contentType);
      if (sse || (streaming !== null && this.expectedBytes === -1)) this.stream = new StreamProbe(this.startedAt, streaming ?? unconfiguredStreaming, this.armMetrics.streams(), sse);
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.suppressed) return;
    if (this.capture !== null) this.capture.add(chunk);
    if (this.stream !== null) this.stream.chunk(chunk);
    this.receivedBytes += chunk.length;
    const res = this.ctx.res;
    if (this.receivedBytes === this.expectedBytes) {
      // The announced body is complete: end() sends it together with the head in one write.
      res.end(chunk);
      return;
    }
    if (res.write(chunk)) return;
    // Back-pressure: undici pauses until the client drains (no unbounded buffering in the proxy).
    controller.pause();
    if (this.stream !== null) this.stream.pausedForClient();
    res.once('drain', () => controller.resume());
  }

  onResponseEnd(): void {
    if (this.done) return;
    if (this.suppressed) {
      this.finish(this.status, 'status_5xx', true);
      this.plane.fallBack(this);
      return;
    }
    const res = this.ctx.res;
    if (!res.writableEnded) res.end();
    this.finish(this.status, this.status >= 500 ? 'status_5xx' : null, false);
  }

  onResponseError(_controller: Dispatcher.DispatchController | null, err: Error): void {
    this.#failed(err);
  }

  #failed(err: Error): void {
    if (this.done) return;
    const kind = classifyUpstreamError(err);
    const ctx = this.ctx;
    const route = ctx.decision.route;
    if (kind === 'reset' && mayRetry(this, err)) {
      // The keep-alive race: the upstream closed a kept-alive connection as this request went out on it. Not the
      // variant's failure unless the retry fails too: only the final outcome is finished and counted.
      this.retried = true;
      this.controller = null;
      this.armMetrics.retry();
      this.dispatchTo(this.lane.fresh());
      return;
    }
    this.failure = err;
    if (this.stream !== null) this.stream.cut();
    if (isClientFault(kind)) {
      // The client's doing: no fallback (the champion would get the same request), and a client that left gets nothing.
      this.finish(this.status, kind, false);
      if (kind === 'body_too_large' || kind === 'client_timeout') sendError(ctx.res, clientErrorFor(kind, this.arm.name, route.requestTimeoutMs, route.bodyLimitBytes, route.name, err), ctx.requestId, this.arm.name, true);
      return;
    }
    if (this.canFallBack && !ctx.res.headersSent) {
      this.finish(0, kind, true);
      this.plane.fallBack(this);
      return;
    }
    this.finish(0, kind, false);
    // A body still arriving will not be read: the connection closes after the answer.
    sendError(ctx.res, clientErrorFor(kind, this.arm.name, route.requestTimeoutMs, route.bodyLimitBytes, route.name, err), ctx.requestId, this.arm.name, !ctx.req.complete);
  }

  /** Records metrics, the observation, the log line and the trace end once per exchange. */
  finish(status: number, errorKind: UpstreamErrorKind | null, fellBack: boolean): void {
    this.done = true;
    this.lane.inFlight--;
    if (this.queueTimer !== null) {
      clearTimeout(this.queueTimer);
      this.queueTimer = null;
    }
    const latencyMs = performance.now() - this.startedAt;
    const plane = this.plane;
    if (isClientFault(errorKind)) {
      // Not the arm's request, answer or error: counted with the other refusals the client caused.
      plane.metrics.rejected(errorKind!);
    } else {
      const m = this.armMetrics;
      m.requests[status === 0 ? 4 : Math.min(4, Math.max(0, Math.floor(status / 100) - 1))]!.inc();
      m.duration.observe(latencyMs / 1000);
      if (errorKind !== null) m.error(errorKind);
      if (fellBack) m.fallback();
      const championLatency = this.ctx.decision.route.championLatency;
      if (championLatency !== null && this.arm.index === 0) championLatency.observe(latencyMs);
    }
    const ctx = this.ctx;
    const role = this.arm.role;
    const capture = this.capture;
    plane.observations.served({
      route: ctx.decision.route.name,
      requestId: ctx.requestId,
      joinId: ctx.joinId,
      stickyKey: ctx.stickyKey,
      variant: this.arm.name,
      role,
      mode: role === 'champion' ? 'champion' : servedMode(ctx.decision, this.arm),
      status,
      errorKind,
      latencyMs,
      fellBack,
      fallbackFor: this.fallbackFrom === null ? null : this.fallbackFrom.arm.name,
      startedAt: this.startedAtEpoch,
      mirrored: fellBack ? 0 : ctx.mirrored,
      requestBody: Buffer.isBuffer(ctx.body) ? ctx.body : null,
      responseBody: capture === null ? null : capture.body(),
      responseTruncated: capture !== null && capture.truncated,
      contentType: this.contentType,
      stream: this.stream === null ? null : this.stream.end(!isClientFault(errorKind)),
    });
    const log = plane.requestLog;
    if (log !== null && (errorKind !== null || (log.sampleSuccess > 0 && Math.random() < log.sampleSuccess))) {
      const route = ctx.decision.route;
      log.add({
        requestId: ctx.requestId,
        method: ctx.method,
        path: ctx.path,
        route: route.name,
        variant: this.arm.name,
        upstream: this.arm.origin,
        status,
        errorKind,
        cause: this.failure,
        refused: null,
        latencyMs,
        fellBack,
        fallbackFor: this.fallbackFrom === null ? null : this.fallbackFrom.arm.name,
        timeoutMs: route.requestTimeoutMs,
        bodyLimitBytes: route.bodyLimitBytes,
      });
    }
    const trace = this.trace;
    if (trace !== null) {
      trace.status = status;
      trace.errorKind = errorKind;
      trace.latencyMs = latencyMs;
      trace.fellBack = fellBack;
      upstreamCallEnd.publish(trace);
    }
  }
}

function servedMode(decision: RouteDecision, arm: Arm): 'canary' | 'ab' {
  for (const range of decision.served) if (range.arm === arm) return range.mode === 'ab' ? 'ab' : 'canary';
  return 'canary';
}

/** The data plane: a plain `node:http` request listener (fastify serves only the admin port; docs/performance.md, "Plain node:http on the data path"). */
export class DataPlane {
  readonly snapshots: SnapshotRef;
  readonly pools: UpstreamPools;
  readonly metrics: DataPathMetrics;
  readonly observations: ObservationPort;
  readonly mirror: MirrorLauncher | null;
  readonly keepBodyBytes: number;
  readonly requestLog: RequestLog | null;
  readonly lifecycle: Lifecycle;
  inFlight: number;
  #idle: (() => void) | null;
  /** One 'close' listener for every response (`this` is the response), instead of a closure per request. */
  readonly #onResponseClose: (this: ServerResponse) => void;
  /** One 'timeout' listener for every response whose request has a body (`this` is the response). */
  readonly #onBodyIdle: (this: ServerResponse) => void;
  /** Metrics and lane of each compiled arm, so a request builds no lookup key (arms are recompiled on reload, per route). */
  readonly #runtimeOfArm = new WeakMap<Arm, ArmRuntime>();

  constructor(deps: DataPlaneDeps, lifecycle: Lifecycle) {
    this.snapshots = deps.snapshots;
    this.pools = deps.pools;
    this.metrics = deps.metrics;
    this.observations = deps.observations;
    this.mirror = deps.mirror;
    this.keepBodyBytes = deps.keepBodyBytes;
    this.requestLog = deps.requestLog ?? null;
    this.lifecycle = lifecycle;
    this.inFlight = 0;
    this.#idle = null;
    const closed = (req: IncomingMessage, res: ServerResponse) => this.#closed(req, res);
    this.#onResponseClose = function onResponseClose(this: ServerResponse) {
      closed(this.req, this);
    };
    const bodyIdle = (res: ServerResponse) => this.#bodyIdle(res);
    this.#onBodyIdle = function onBodyIdle(this: ServerResponse) {
      bodyIdle(this);
    };
  }

  /** An arm's metric children and the route's lane to its upstream (created with the route's connect timeout on first use). */
  runtimeOf(route: CompiledRoute, arm: Arm): ArmRuntime {
    let runtime = this.#runtimeOfArm.get(arm);
    if (runtime === undefined) {
      runtime = { metrics: this.metrics.forArm(route.name, arm, false), fallbackMetrics: null, lane: this.pools.lane(route.name, arm.origin, route.connectTimeoutMs) };
      this.#runtimeOfArm.set(arm, runtime);
    } else if (runtime.lane.closed) {
      // A reload may have closed the lane of an arm a request matched just before it: ask the registry again, as before.
      runtime.lane = this.pools.lane(route.name, arm.origin, route.connectTimeoutMs);
    }
    return runtime;
  }

  /** The `request` listener of the data server. */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    this.inFlight++;
    // 'close' fires once per response, so a plain listener (no once-wrapper) suffices.
    res.on('close', this.#onResponseClose);
    try {
      this.#route(req, res);
    } catch (err) {
      // A bug must not take the process down with it; answer 500 and keep serving.
      this.#refuse(req, res, 'internal', new SWY_ERR_INTERNAL((err as Error).message), randomUUID(), null);
    }
  };

  /** Resolves when no request is in flight (used by the SIGTERM drain). */
  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#idle = resolve;
    });
  }

  #closed(req: IncomingMessage, res: ServerResponse): void {
    this.inFlight--;
    const exchange = res[exchangeSlot];
    // The client went away: stop the upstream call instead of streaming into a closed socket, or drop the request
    // before it is sent when it still waits for a connection.
    if (exchange !== undefined && !exchange.done) exchange.fail(clientLeft);
    if (!req.complete && !req.destroyed) req.destroy();
    if (this.inFlight === 0 && this.#idle) {
      const idle = this.#idle;
      this.#idle = null;
      idle();
    }
  }

  /**
   * No body byte arrived for the route's bodyIdleMs (node:http's socket timeout, armed in #route): answer 408 and close,
   * unless bytes wait unread, which means we or the upstream are behind, not the client.
   */
  #bodyIdle(res: ServerResponse): void {
    const req = res.req;
    const socket = req.socket;
    if (req.complete) return;
    if (req.readableLength > 0) {
      // The timer does not run again by itself: re-arm it for the client's next pause.
      socket?.setTimeout(socket.timeout ?? 0);
      return;
    }
    const idleMs = socket?.timeout ?? 0;
    const exchange = res[exchangeSlot];
    if (exchange !== undefined) {
      // Streaming to the upstream, or waiting for a connection to do so: the exchange answers 408 as a client fault.
      exchange.fail(new SWY_ERR_CLIENT_TIMEOUT(idleMs));
      return;
    }
    // Still reading a body to keep before dispatch: nothing was sent anywhere.
    if (res.writableEnded) return;
    const route = matchRoute(this.snapshots.current, req.url ?? '/');
    this.#refuse(req, res, 'client_timeout', new SWY_ERR_CLIENT_TIMEOUT(idleMs), scanRequestHeaders(req.rawHeaders, null).requestId ?? randomUUID(), route === null ? null : route.route.name, true);
  }

  /**
   * Answers a request the data path will not forward: counts it by reason (switchyard_rejected_requests_total, except a
   * bug's 500), sends the JSON error and queues its log line.
   */
  #refuse(req: IncomingMessage, res: ServerResponse, reason: string, err: Error & { statusCode?: number; code: string }, requestId: string, route: string | null, close = false): void {
    if (reason !== 'internal') this.metrics.rejected(reason);
    sendError(res, err, requestId, null, close);
    this.requestLog?.add({
      requestId,
      method: req.method ?? '',
      path: req.url ?? '',
      route,
      variant: null,
      upstream: null,
      status: err.statusCode ?? 500,
      errorKind: null,
      cause: err,
      refused: reason,
      latencyMs: 0,
      fellBack: false,
      fallbackFor: null,
      timeoutMs: 0,
      bodyLimitBytes: 0,
    });
  }

  #route(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    const snapshot = this.snapshots.current;
    if (this.lifecycle.draining) {
      this.#refuse(req, res, 'draining', new SWY_ERR_DRAINING(), randomUUID(), null, true);
      return;
    }
    if (url.charCodeAt(0) !== 47 /* "/" */ || unsafePath(url)) {
      this.#refuse(req, res, 'bad_path', new SWY_ERR_BAD_REQUEST('the request path must start with "/" and hold no "." or ".." segment (also percent-encoded, or between %5C) and no backslash (send it as %5C)'), randomUUID(), null);
      return;
    }
    const raw = req.rawHeaders;
    if (raw.length > 2 * maxRequestHeaderFields) {
      // node:http kept only the first fields (see maxRequestHeaderFields): framing may be among those it dropped.
      this.#refuse(req, res, 'headers_too_large', new SWY_ERR_HEADERS_TOO_LARGE(`${maxRequestHeaderFields} header fields`), randomUUID(), null, true);
      return;
    }
    const decision = matchRoute(snapshot, url);
    const route = decision?.route;
    const scanned = scanRequestHeaders(raw, route && route.stickiness.kind === 'header' ? route.stickiness.name : null);
    const requestId = scanned.requestId ?? randomUUID();
    if (scanned.duplicateHost || (scanned.host !== null && !isValidHost(scanned.host))) {
      const problem = scanned.duplicateHost ? 'must appear once' : 'must be host[:port] only, without userinfo, path, query, fragment, backslash or spaces (RFC 9110 §7.2)';
      this.#refuse(req, res, 'bad_host', new SWY_ERR_BAD_REQUEST(`the Host header ${problem}`), requestId, null, true);
      return;
    }
    if (!decision || !route) {
      const q = url.indexOf('?');
      this.#refuse(req, res, 'no_route', new SWY_ERR_NO_ROUTE(req.method ?? '', q === -1 ? url : url.slice(0, q)), requestId, null);
      return;
    }
    const method = req.method ?? 'GET';
    if (!route.methods.has(method)) {
      res.setHeader('allow', route.methodList.join(', '));
      this.#refuse(req, res, 'method', new SWY_ERR_METHOD_NOT_ALLOWED(route.name, method), requestId, route.name);
      return;
    }
    if (scanned.contentLength > route.bodyLimitBytes) {
      // The body is not read, so the connection cannot be reused.
      this.#refuse(req, res, 'body_too_large', new SWY_ERR_BODY_TOO_LARGE(route.bodyLimitBytes, route.name), requestId, route.name, true);
      return;
    }

    let stickyKey: string | null = null;
    const stickiness = route.stickiness;
    if (stickiness.kind === 'header') stickyKey = scanned.stickyValue;
    else if (stickiness.kind === 'query') stickyKey = queryValue(url, stickiness.name);
    else if (stickiness.kind === 'cookie') stickyKey = cookieValue(scanned.cookie, stickiness.name);
    if (stickyKey === '') stickyKey = null;
    const bucket = stickyKey === null ? randomBucket() : stickyBucket(stickyKey, decision.groupId);
    const arm = servingArm(decision, bucket);

    const forward = scanned.forward;
    forward.push('x-request-id', requestId);
    forward.push('x-forwarded-for', scanned.forwardedFor === null ? (req.socket.remoteAddress ?? '') : `${scanned.forwardedFor}, ${req.socket.remoteAddress ?? ''}`);
    if (scanned.host !== null) forward.push('x-forwarded-host', scanned.host);

    const hasBody = scanned.contentLength > 0 || scanned.chunked;
    if (hasBody) {
      // A client that stops sending its body must not hold a socket, or an upstream connection, for ever: node:http's
      // socket timeout runs while no byte arrives and is stopped once the body is in (#bufferThenDispatch,
      // Exchange.bodySent); #bodyIdle answers it.
      req.socket.setTimeout(route.policy.timeouts.bodyIdleMs);
      res.on('timeout', this.#onBodyIdle);
    }
    // shadowUpTo is 0 when nothing is mirrored, and buckets start at 1 (compiled into the snapshot, src/decision/snapshot.ts).
    let mirrors = bucket <= decision.shadowUpTo && this.mirror !== null;
    if (mirrors && !route.shadowMethods.has(method)) {
      this.mirror!.skipped(decision, bucket, 'method');
      mirrors = false;
    }
    if (mirrors && route.championLatency !== null && route.championLatency.shedding) {
      // The shadow budget: while the champion is slow its mirrors go first (nor is the body kept for them).
      this.mirror!.skipped(decision, bucket, 'shed');
      mirrors = false;
    }
    if (mirrors && hasBody && (scanned.chunked || scanned.contentLength > route.shadowMaxBodyBytes)) {
      // Mirroring needs the body kept once; larger or unframed bodies are served but not mirrored (counted).
      this.mirror!.skipped(decision, bucket, scanned.chunked ? 'body_streamed' : 'body_too_large');
      mirrors = false;
    }
    const ctx = new RequestContext(req, res, decision, arm, method, url, requestId, stickyKey, bucket, forward, mirrors);
    if (!hasBody) {
      this.#dispatch(ctx);
      return;
    }
    const keepLimit = mirrors ? route.shadowMaxBodyBytes : this.keepBodyBytes;
    // Small bodies with a Content-Length are read once and sent as one buffer: undici then writes head and body in
    // one writev instead of piping a stream (measured: fewer syscalls and stream events per request), and the copy
    // serves fallback replays, mirrors and records. Larger and chunked bodies stream.
    if (!scanned.chunked && scanned.contentLength <= keepLimit) {
      this.#bufferThenDispatch(ctx, scanned.contentLength);
      return;
    }
    ctx.body = scanned.chunked ? req.pipe(new BodyLimit(route.bodyLimitBytes, route.name)) : req;
    this.#dispatch(ctx);
  }

  #bufferThenDispatch(ctx: RequestContext, length: number): void {
    const req = ctx.req;
    // node:http hands each body chunk over as its own copy, so a body that arrives in one chunk is kept as it is; only
    // one that arrives in pieces is copied into a buffer of the announced length.
    let body: Buffer | null = null;
    let offset = 0;
    req.on('data', (chunk: Buffer) => {
      if (offset === 0 && chunk.length === length) {
        body = chunk;
        offset = length;
        return;
      }
      // Content-Length bounds the copy; a client sending more than it announced is cut off by Node's parser.
      body ??= Buffer.allocUnsafe(length);
      offset += chunk.copy(body, offset);
    });
    // A request emits 'end' once and is dropped afterwards: a plain listener saves the once-wrapper and its removal.
    req.on('end', () => {
      // Answered 408 while the body idled (#bodyIdle): the rest came too late.
      if (ctx.res.writableEnded) return;
      req.socket?.setTimeout(0);
      // The exchange, and with it the upstream's time, starts only now: the client's upload is not the variant's.
      ctx.body = body === null ? Buffer.alloc(0) : offset === length ? body : body.subarray(0, offset);
      this.#dispatch(ctx);
    });
  }

  #dispatch(ctx: RequestContext): void {
    const exchange = new Exchange(this, ctx, ctx.arm, null, this.observations.captureBytes(ctx.decision.route.name, ctx.mirrors));
    ctx.res[exchangeSlot] = exchange;
    exchange.start();
    // Mirrors are scheduled after the primary is dispatched and never awaited (docs/performance.md, "Mirrors go out after the primary and are never awaited").
    if (ctx.mirrors) {
      ctx.joinId = ++lastJoinId;
      ctx.mirrored = this.mirror!.launch(ctx);
    }
  }

  /** Replays a failed challenger exchange on the champion; the client sees the champion's answer. */
  fallBack(failed: Exchange): void {
    const ctx = failed.ctx;
    const exchange = new Exchange(this, ctx, ctx.decision.route.arms[0]!, failed, failed.capture === null ? 0 : failed.capture.limit);
    ctx.res[exchangeSlot] = exchange;
    exchange.start();
  }
}
