// The request path: match a route, pick the arm, stream the request to it through undici and the answer back.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import type { Dispatcher, Pool } from 'undici';
import { SWY_ERR_BODY_TOO_LARGE, SWY_ERR_CLIENT_TIMEOUT, SWY_ERR_DRAINING, SWY_ERR_HEADERS_TOO_LARGE, SWY_ERR_INTERNAL, SWY_ERR_METHOD_NOT_ALLOWED, SWY_ERR_NO_ROUTE, SWY_ERR_BAD_REQUEST, SWY_ERR_UPSTREAM_BUSY } from '../errors.js';
import { randomBucket, stickyBucket } from '../decision/bucket.js';
import { matchRoute, servingArm } from '../decision/split.js';
import type { Arm, CompiledRoute, RouteDecision, SnapshotRef } from '../decision/snapshot.js';
import { isClientFault, type ObservationPort } from '../record/port.js';
import { classifyUpstreamError, clientErrorFor, type UpstreamErrorKind } from './error-map.js';
import { cookieValue, isValidHost, maxRequestHeaderFields, queryValue, responseHeaders, scanRequestHeaders, type ResponseFraming } from './headers.js';
import type { ArmMetrics, DataPathMetrics } from './data-path-metrics.js';
import type { Lane, UpstreamPools } from './upstreams.js';

/** Starts mirrors for one request; supplied by the shadow layer, null when no route mirrors. */
export interface MirrorLauncher {
  /** Called after the primary was dispatched; must return at once (it schedules its own work). Returns mirrors launched. */
  launch(decision: RouteDecision, bucket: number, method: string, path: string, headers: readonly string[], body: Buffer | null, requestId: string, joinId: number): number;
  /** Counts a mirror that could not be sent because the body was not kept. */
  skipped(decision: RouteDecision, bucket: number, reason: 'body_too_large' | 'body_streamed' | 'method'): void;
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
 * Thrown from `onConnect` for an exchange that already ended while it waited for a connection: undici then drops the
 * request without writing it and keeps the connection (abort() would destroy it). One shared instance: no stack per use.
 */
const endedWhileWaiting = Object.assign(new Error('the exchange ended before it got an upstream connection'), { code: 'SWY_ERR_ENDED_WHILE_WAITING' });
/** Ends an exchange whose client left while it waited for a connection (counted as client_abort). */
const clientLeftWhileWaiting = Object.assign(new Error('the client went away while the request waited for an upstream connection'), { code: 'SWY_ERR_CLIENT_ABORTED' });

/** The wait for one of the lane's connections lasted the route's requestMs: refuse the request (it was never sent). */
function connectionWaitTimedOut(exchange: Exchange): void {
  exchange.queueTimer = null;
  const route = exchange.decision.route;
  exchange.fail(new SWY_ERR_UPSTREAM_BUSY(route.name, exchange.arm.name, route.requestTimeoutMs));
}

/**
 * True when the request may be sent again after `err`: the upstream closed or reset the connection before any byte
 * of an answer arrived, the body can be replayed (none, or kept in memory), it was not retried yet, and sending it
 * twice is harmless: GET and HEAD always, other methods (POST) on a route declared `sideEffectFree`.
 */
function mayRetry(exchange: Exchange, err: Error): boolean {
  if (exchange.retried || exchange.status !== 0 || exchange.streamed || exchange.res.headersSent) return false;
  const code = (err as { code?: unknown }).code;
  if (code !== 'UND_ERR_SOCKET' && code !== 'ECONNRESET' && code !== 'EPIPE') return false;
  const method = exchange.req.method;
  return method === 'GET' || method === 'HEAD' || exchange.decision.route.policy.sideEffectFree;
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
 * One upstream exchange, implemented as an undici dispatch handler: it streams the upstream answer straight to the
 * client: `dispatch` with our own handler avoids the per-response stream of `request()` + pipe
 * (docs/performance.md, "Upstream calls: undici `dispatch` with our own handler").
 */
class Exchange implements Dispatcher.DispatchHandler, ResponseFraming {
  readonly plane: DataPlane;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly decision: RouteDecision;
  readonly arm: Arm;
  readonly armMetrics: ArmMetrics;
  /** The route's connections to this arm's upstream. */
  readonly lane: Lane;
  readonly requestId: string;
  readonly stickyKey: string | null;
  readonly path: string;
  readonly headers: string[];
  readonly body: Buffer | IncomingMessage | Transform | null;
  /**
   * When the upstream's time starts (performance.now()). An exchange is created once the request can be handed to the
   * upstream: a buffered body has fully arrived by then, so the client's upload is already behind it. A streamed body
   * (chunked, or above the keep limit) is dispatched at once and flows at the client's pace, so `onRequestSent`, which
   * undici calls when it has written the last body byte, moves the start there: what the upstream did after the whole
   * request reached it is what counts, never how fast the client sent it.
   */
  startedAt: number;
  readonly startedAtEpoch: number;
  readonly streamed: boolean;
  readonly canFallBack: boolean;
  readonly fallbackFrom: Exchange | null;
  mirrored: number;
  /** The process-unique id its served and shadow answers are paired on (0: not mirrored); see record/port.ts. */
  joinId: number;
  captureLimit: number;
  captured: Buffer[] | null;
  capturedBytes: number;
  truncated: boolean;
  status: number;
  contentType: string | null;
  /** Body bytes the upstream announced (-1: unknown), and how many have arrived; lets the last chunk go out with end(). */
  expectedBytes: number;
  receivedBytes: number;
  abort: ((reason?: Error) => void) | null;
  resume: (() => void) | null;
  suppressed: boolean;
  done: boolean;
  /** Bounds the wait for a connection; armed only when the lane had none free at dispatch (see `start`). */
  queueTimer: NodeJS.Timeout | null;
  retried: boolean;

  constructor(plane: DataPlane, req: IncomingMessage, res: ServerResponse, decision: RouteDecision, arm: Arm, requestId: string, stickyKey: string | null, path: string, headers: string[], body: Buffer | IncomingMessage | Transform | null, fallbackFrom: Exchange | null, captureLimit: number) {
    this.plane = plane;
    this.req = req;
    this.res = res;
    this.decision = decision;
    this.arm = arm;
    this.armMetrics = plane.metrics.forArm(decision.route.name, arm, fallbackFrom !== null);
    this.lane = plane.laneFor(decision.route, arm);
    this.requestId = requestId;
    this.stickyKey = stickyKey;
    this.path = path;
    this.headers = headers;
    this.body = body;
    this.startedAt = performance.now();
    this.startedAtEpoch = Date.now();
    this.streamed = body !== null && !Buffer.isBuffer(body);
    // A fallback needs a replayable body: none, or one we kept in memory.
    this.canFallBack = arm.fallback && fallbackFrom === null && !this.streamed;
    this.fallbackFrom = fallbackFrom;
    this.mirrored = fallbackFrom === null ? 0 : fallbackFrom.mirrored;
    this.joinId = fallbackFrom === null ? 0 : fallbackFrom.joinId;
    this.captureLimit = captureLimit;
    this.captured = null;
    this.capturedBytes = 0;
    this.truncated = false;
    this.status = 0;
    this.contentType = null;
    this.expectedBytes = -1;
    this.receivedBytes = 0;
    this.abort = null;
    this.resume = null;
    this.suppressed = false;
    this.done = false;
    this.queueTimer = null;
    this.retried = false;
  }

  start(): void {
    const lane = this.lane;
    // Beyond the lane's connections undici queues the request with no time limit. Only then is a timer armed: one per
    // request would cost every request, and below the limit a connection is free or being opened (connectMs bounds it).
    if (++lane.inFlight > lane.connections) this.queueTimer = setTimeout(connectionWaitTimedOut, this.decision.route.requestTimeoutMs, this);
    this.dispatchTo(lane.pool);
  }

  dispatchTo(pool: Pool): void {
    const route = this.decision.route;
    pool.dispatch(
      {
        path: this.arm.basePath + this.path,
        method: this.req.method as Dispatcher.HttpMethod,
        headers: this.headers,
        body: this.body,
        headersTimeout: route.requestTimeoutMs,
        bodyTimeout: route.requestTimeoutMs,
      },
      this,
    );
  }

  onConnect(abort: (reason?: Error) => void): void {
    if (this.queueTimer !== null) {
      clearTimeout(this.queueTimer);
      this.queueTimer = null;
    }
    // Refused or abandoned while it waited: undici drops it unsent (see endedWhileWaiting).
    if (this.done) throw endedWhileWaiting;
    this.abort = abort;
  }

  /**
   * Ends the exchange from our side with `err`: through undici when the request holds a connection (abort calls
   * onError at once), directly while it still waits for one.
   */
  fail(err: Error): void {
    if (this.done) return;
    if (this.abort !== null) this.abort(err);
    if (!this.done) this.onError(err);
  }

  /**
   * undici wrote the last request byte: a streamed body's upstream time starts here (see `startedAt`). undici calls
   * this on a dispatch handler that has it (core/request.js) though its typings omit it; the slow chunked upload in
   * test/integration/client-faults.test.ts fails if it ever stops.
   */
  onRequestSent(): void {
    if (!this.streamed) return;
    // An upstream that answered before the upload ended was timed from the dispatch: its answer did not wait for it.
    if (this.status === 0) this.startedAt = performance.now();
    // The whole body is in: the body idle timer stops (unless the answer already finished and node:http set its own
    // keep-alive timer on the socket in its place).
    if (!this.res.writableFinished) this.req.socket?.setTimeout(0);
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    // An informational answer (103 Early Hints, or any 1xx) precedes the real one: skipped, the final one is served.
    if (statusCode < 200) return true;
    this.status = statusCode;
    this.resume = resume;
    if (statusCode >= 500 && this.canFallBack) {
      // The champion will answer instead; drain and discard the challenger's body.
      this.suppressed = true;
      return true;
    }
    const headers = responseHeaders(rawHeaders, this.arm.name, this.requestId, this);
    if (this.fallbackFrom !== null) headers.push('x-switchyard-fallback-from', this.fallbackFrom.arm.name);
    if (this.plane.lifecycle.draining) headers.push('connection', 'close');
    this.res.writeHead(statusCode, headers);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.suppressed) return true;
    if (this.captureLimit > 0 && !this.truncated) this.capture(chunk);
    this.receivedBytes += chunk.length;
    if (this.receivedBytes === this.expectedBytes) {
      // The announced body is complete: end() sends it together with the head in one write.
      this.res.end(chunk);
      return true;
    }
    if (this.res.write(chunk)) return true;
    // Back-pressure: undici pauses until the client drains (no unbounded buffering in the proxy).
    this.res.once('drain', this.resume!);
    return false;
  }

  capture(chunk: Buffer): void {
    const room = this.captureLimit - this.capturedBytes;
    if (chunk.length > room) {
      this.truncated = true;
      if (room <= 0) return;
      chunk = chunk.subarray(0, room);
    }
    (this.captured ??= []).push(chunk);
    this.capturedBytes += chunk.length;
  }

  onComplete(): void {
    if (this.done) return;
    if (this.suppressed) {
      this.finish(this.status, 'status_5xx', true);
      this.plane.fallBack(this);
      return;
    }
    if (!this.res.writableEnded) this.res.end();
    this.finish(this.status, this.status >= 500 ? 'status_5xx' : null, false);
  }

  onError(err: Error): void {
    if (this.done) return;
    const kind: UpstreamErrorKind = this.req.destroyed && !this.res.writableFinished && (err as { code?: string }).code === 'UND_ERR_ABORTED' ? 'client_abort' : classifyUpstreamError(err);
    const route = this.decision.route;
    if (kind === 'reset' && mayRetry(this, err)) {
      // The keep-alive race: the upstream closed a kept-alive connection as this request went out on it. Not the
      // variant's failure unless the retry fails too: only the final outcome is finished and counted.
      this.retried = true;
      this.abort = null;
      this.armMetrics.retry();
      this.dispatchTo(this.lane.fresh());
      return;
    }
    if (isClientFault(kind)) {
      // The client's doing: no fallback (the champion would get the same request), and a client that left gets nothing.
      this.finish(this.status, kind, false);
      if (kind === 'body_too_large' || kind === 'client_timeout') sendError(this.res, clientErrorFor(kind, this.arm.name, route.requestTimeoutMs, route.bodyLimitBytes, route.name, err), this.requestId, this.arm.name, true);
      return;
    }
    if (this.canFallBack && !this.res.headersSent) {
      this.finish(0, kind, true);
      this.plane.fallBack(this);
      return;
    }
    this.finish(0, kind, false);
    // A body still arriving will not be read: the connection closes after the answer.
    sendError(this.res, clientErrorFor(kind, this.arm.name, route.requestTimeoutMs, route.bodyLimitBytes, route.name, err), this.requestId, this.arm.name, !this.req.complete);
  }

  /** Records metrics and the observation once per exchange. */
  finish(status: number, errorKind: UpstreamErrorKind | null, fellBack: boolean): void {
    this.done = true;
    this.lane.inFlight--;
    if (this.queueTimer !== null) {
      clearTimeout(this.queueTimer);
      this.queueTimer = null;
    }
    const latencyMs = performance.now() - this.startedAt;
    if (isClientFault(errorKind)) {
      // Not the arm's request, answer or error: counted with the other refusals the client caused.
      this.plane.metrics.rejected(errorKind!);
    } else {
      const m = this.armMetrics;
      m.requests[status === 0 ? 4 : Math.min(4, Math.max(0, Math.floor(status / 100) - 1))]!.inc();
      m.duration.observe(latencyMs / 1000);
      if (errorKind !== null) m.error(errorKind);
      if (fellBack) m.fallback();
    }
    const role = this.arm.role;
    this.plane.observations.served({
      route: this.decision.route.name,
      requestId: this.requestId,
      joinId: this.joinId,
      stickyKey: this.stickyKey,
      variant: this.arm.name,
      role,
      mode: role === 'champion' ? 'champion' : servedMode(this.decision, this.arm),
      status,
      errorKind,
      latencyMs,
      fellBack,
      fallbackFor: this.fallbackFrom === null ? null : this.fallbackFrom.arm.name,
      startedAt: this.startedAtEpoch,
      mirrored: fellBack ? 0 : this.mirrored,
      requestBody: Buffer.isBuffer(this.body) ? this.body : null,
      responseBody: this.captured === null ? null : this.captured.length === 1 ? this.captured[0]! : Buffer.concat(this.captured),
      responseTruncated: this.truncated,
      contentType: this.contentType,
    });
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
  readonly lifecycle: Lifecycle;
  inFlight: number;
  #idle: (() => void) | null;
  /** One 'close' listener for every response (`this` is the response), instead of a closure per request. */
  readonly #onResponseClose: (this: ServerResponse) => void;
  /** One 'timeout' listener for every response whose request has a body (`this` is the response). */
  readonly #onBodyIdle: (this: ServerResponse) => void;
  /** The lane of each compiled arm, so a request does not build a lookup key (arms are recompiled on reload, per route). */
  readonly #laneOfArm = new WeakMap<Arm, Lane>();

  constructor(deps: DataPlaneDeps, lifecycle: Lifecycle) {
    this.snapshots = deps.snapshots;
    this.pools = deps.pools;
    this.metrics = deps.metrics;
    this.observations = deps.observations;
    this.mirror = deps.mirror;
    this.keepBodyBytes = deps.keepBodyBytes;
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

  /** The route's lane to an arm's upstream (created with the route's connect timeout on first use). */
  laneFor(route: CompiledRoute, arm: Arm): Lane {
    let lane = this.#laneOfArm.get(arm);
    // A reload may have closed the lane of an arm a request matched just before it: ask the registry again, as before.
    if (lane === undefined || lane.closed) {
      lane = this.pools.lane(route.name, arm.origin, route.connectTimeoutMs);
      this.#laneOfArm.set(arm, lane);
    }
    return lane;
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
      sendError(res, new SWY_ERR_INTERNAL((err as Error).message), randomUUID(), null);
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
    const exchange = (res as ServerResponse & { exchange?: Exchange }).exchange;
    if (exchange && !exchange.done) {
      // The client went away: stop the upstream call instead of streaming into a closed socket, or drop the request
      // before it is sent when it still waits for a connection.
      if (exchange.abort) exchange.abort();
      else exchange.fail(clientLeftWhileWaiting);
    }
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
    const exchange = (res as ServerResponse & { exchange?: Exchange }).exchange;
    if (exchange !== undefined) {
      // Streaming to the upstream, or waiting for a connection to do so: the exchange answers 408 as a client fault.
      exchange.fail(new SWY_ERR_CLIENT_TIMEOUT(idleMs));
      return;
    }
    // Still reading a body to keep before dispatch: nothing was sent anywhere.
    if (res.writableEnded) return;
    this.metrics.rejected('client_timeout');
    sendError(res, new SWY_ERR_CLIENT_TIMEOUT(idleMs), scanRequestHeaders(req.rawHeaders, null).requestId ?? randomUUID(), null, true);
  }

  #route(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    const snapshot = this.snapshots.current;
    if (this.lifecycle.draining) {
      this.metrics.rejected('draining');
      sendError(res, new SWY_ERR_DRAINING(), randomUUID(), null, true);
      return;
    }
    if (url.charCodeAt(0) !== 47 /* "/" */ || unsafePath(url)) {
      this.metrics.rejected('bad_path');
      sendError(res, new SWY_ERR_BAD_REQUEST('the request path must start with "/" and hold no "." or ".." segment (also percent-encoded, or between %5C) and no backslash (send it as %5C)'), randomUUID(), null);
      return;
    }
    const raw = req.rawHeaders;
    if (raw.length > 2 * maxRequestHeaderFields) {
      // node:http kept only the first fields (see maxRequestHeaderFields): framing may be among those it dropped.
      this.metrics.rejected('headers_too_large');
      sendError(res, new SWY_ERR_HEADERS_TOO_LARGE(`${maxRequestHeaderFields} header fields`), randomUUID(), null, true);
      return;
    }
    const decision = matchRoute(snapshot, url);
    const route = decision?.route;
    const scanned = scanRequestHeaders(raw, route && route.stickiness.kind === 'header' ? route.stickiness.name : null);
    const requestId = scanned.requestId ?? randomUUID();
    if (scanned.duplicateHost || (scanned.host !== null && !isValidHost(scanned.host))) {
      this.metrics.rejected('bad_host');
      const problem = scanned.duplicateHost ? 'must appear once' : 'must be host[:port] only, without userinfo, path, query, fragment, backslash or spaces (RFC 9110 §7.2)';
      sendError(res, new SWY_ERR_BAD_REQUEST(`the Host header ${problem}`), requestId, null, true);
      return;
    }
    if (!decision || !route) {
      this.metrics.rejected('no_route');
      const q = url.indexOf('?');
      sendError(res, new SWY_ERR_NO_ROUTE(req.method ?? '', q === -1 ? url : url.slice(0, q)), requestId, null);
      return;
    }
    const method = req.method ?? 'GET';
    if (!route.methods.has(method)) {
      this.metrics.rejected('method');
      res.setHeader('allow', route.methodList.join(', '));
      sendError(res, new SWY_ERR_METHOD_NOT_ALLOWED(route.name, method), requestId, null);
      return;
    }
    if (scanned.contentLength > route.bodyLimitBytes) {
      this.metrics.rejected('body_too_large');
      // The body is not read, so the connection cannot be reused.
      sendError(res, new SWY_ERR_BODY_TOO_LARGE(route.bodyLimitBytes, route.name), requestId, null, true);
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

    scanned.forward.push('x-request-id', requestId);
    scanned.forward.push('x-forwarded-for', scanned.forwardedFor === null ? (req.socket.remoteAddress ?? '') : `${scanned.forwardedFor}, ${req.socket.remoteAddress ?? ''}`);
    if (scanned.host !== null) scanned.forward.push('x-forwarded-host', scanned.host);

    const hasBody = scanned.contentLength > 0 || scanned.chunked;
    if (hasBody) {
      // A client that stops sending its body must not hold a socket, or an upstream connection, for ever: node:http's
      // socket timeout runs while no byte arrives and is stopped once the body is in (#bufferThenDispatch,
      // Exchange.onRequestSent); #bodyIdle answers it.
      req.socket.setTimeout(route.policy.timeouts.bodyIdleMs);
      res.on('timeout', this.#onBodyIdle);
    }
    let mirrors = decision.shadows !== null && this.mirror !== null && bucket <= maxShadow(decision);
    if (mirrors && !route.shadowMethods.has(method)) {
      this.mirror!.skipped(decision, bucket, 'method');
      mirrors = false;
    }
    if (!hasBody) {
      this.#dispatch(req, res, decision, arm, requestId, stickyKey, url, scanned.forward, null, bucket, mirrors);
      return;
    }
    if (mirrors && (scanned.chunked || scanned.contentLength > route.shadowMaxBodyBytes)) {
      // Mirroring needs the body kept once; larger or unframed bodies are served but not mirrored (counted).
      this.mirror!.skipped(decision, bucket, scanned.chunked ? 'body_streamed' : 'body_too_large');
      mirrors = false;
    }
    const keepLimit = mirrors ? route.shadowMaxBodyBytes : this.keepBodyBytes;
    // Small bodies with a Content-Length are read once and sent as one buffer: undici then writes head and body in
    // one writev instead of piping a stream (measured: fewer syscalls and stream events per request), and the copy
    // serves fallback replays, mirrors and records. Larger and chunked bodies stream.
    if (!scanned.chunked && scanned.contentLength <= keepLimit) {
      this.#bufferThenDispatch(req, res, decision, arm, requestId, stickyKey, url, scanned.forward, scanned.contentLength, bucket, mirrors);
      return;
    }
    const body = scanned.chunked ? req.pipe(new BodyLimit(route.bodyLimitBytes, route.name)) : req;
    this.#dispatch(req, res, decision, arm, requestId, stickyKey, url, scanned.forward, body, bucket, false);
  }

  #bufferThenDispatch(req: IncomingMessage, res: ServerResponse, decision: RouteDecision, arm: Arm, requestId: string, stickyKey: string | null, url: string, headers: string[], length: number, bucket: number, mirrors: boolean): void {
    const body = Buffer.allocUnsafe(length);
    let offset = 0;
    req.on('data', (chunk: Buffer) => {
      // Content-Length bounds the copy; a client sending more than it announced is cut off by Node's parser.
      offset += chunk.copy(body, offset);
    });
    // A request emits 'end' once and is dropped afterwards: a plain listener saves the once-wrapper and its removal.
    req.on('end', () => {
      // Answered 408 while the body idled (#bodyIdle): the rest came too late.
      if (res.writableEnded) return;
      req.socket?.setTimeout(0);
      // The exchange, and with it the upstream's time, starts only now: the client's upload is not the variant's.
      this.#dispatch(req, res, decision, arm, requestId, stickyKey, url, headers, offset === length ? body : body.subarray(0, offset), bucket, mirrors);
    });
  }

  #dispatch(req: IncomingMessage, res: ServerResponse, decision: RouteDecision, arm: Arm, requestId: string, stickyKey: string | null, url: string, headers: string[], body: Buffer | IncomingMessage | Transform | null, bucket: number, mirrors: boolean): void {
    const exchange = new Exchange(this, req, res, decision, arm, requestId, stickyKey, url, headers, body, null, this.observations.captureBytes(decision.route.name, mirrors));
    (res as ServerResponse & { exchange?: Exchange }).exchange = exchange;
    exchange.start();
    // Mirrors are scheduled after the primary is dispatched and never awaited (docs/performance.md, "Mirrors go out after the primary and are never awaited").
    if (mirrors) {
      exchange.joinId = ++lastJoinId;
      exchange.mirrored = this.mirror!.launch(decision, bucket, req.method ?? 'POST', url, headers, body === null || Buffer.isBuffer(body) ? body : null, requestId, exchange.joinId);
    }
  }

  /** Replays a failed challenger exchange on the champion; the client sees the champion's answer. */
  fallBack(failed: Exchange): void {
    const champion = failed.decision.route.arms[0]!;
    const exchange = new Exchange(this, failed.req, failed.res, failed.decision, champion, failed.requestId, failed.stickyKey, failed.path, failed.headers, failed.body, failed, failed.captureLimit);
    (failed.res as ServerResponse & { exchange?: Exchange }).exchange = exchange;
    exchange.start();
  }
}

function maxShadow(decision: RouteDecision): number {
  let max = 0;
  for (const shadow of decision.shadows!) if (shadow.upTo > max) max = shadow.upTo;
  return max;
}
