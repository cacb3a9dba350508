// The only outlet from the request path to analysis: a synchronous, non-blocking port that may drop but never waits.

/**
 * How an exchange failed, as the proxy reports it (classified in proxy/error-map.ts). The upstream's kinds are the `kind`
 * label of switchyard_upstream_errors_total (`busy`: every connection of the route to that upstream stayed taken for the
 * route's requestMs, so the request was never sent); the client's (`body_too_large`, `client_abort`, `client_timeout`:
 * see isClientFault below) are counted as rejected requests instead.
 */
export type UpstreamErrorKind = 'connect' | 'timeout' | 'reset' | 'status_5xx' | 'busy' | 'body_too_large' | 'client_abort' | 'client_timeout' | 'other';

/** What the request path saw for one served request (one per arm tried: a fallback yields two). */
export interface ServedObservation {
  route: string;
  /** The client's x-request-id (or one we made up): written to records and used by feedback, never to pair. */
  requestId: string;
  /**
   * Process-unique id of a mirrored request (0 when not mirrored), also carried by its ShadowObservations: the served
   * and shadow answers are paired on it, because clients may send the same x-request-id on concurrent requests.
   */
  joinId: number;
  stickyKey: string | null;
  variant: string;
  role: 'champion' | 'challenger';
  /** canary/ab for challengers, champion otherwise. */
  mode: 'champion' | 'canary' | 'ab';
  /** Upstream status, or 0 when the transport failed before a status arrived. */
  status: number;
  /** Why the exchange failed (null: it did not); client-side kinds ({@link isClientFault}) are not the variant's failure. */
  errorKind: UpstreamErrorKind | null;
  /**
   * The upstream's time: from when the request was handed to it (for a buffered body, once the body had arrived; for
   * a streamed body, once its last byte had been handed over) to the end of the answer. The client's pace is not in it.
   */
  latencyMs: number;
  /** True when this (challenger) failure was answered by the champion instead. */
  fellBack: boolean;
  /** Set on the champion's answer that replaced a failed challenger; analysis must not count it for the champion. */
  fallbackFor: string | null;
  startedAt: number;
  /** How many shadow mirrors were launched for this request (their answers arrive as ShadowObservations). */
  mirrored: number;
  /** The request body when it was kept (bounded), else null. */
  requestBody: Buffer | null;
  /** A capped copy of the response body when the port asked for one, else null. */
  responseBody: Buffer | null;
  responseTruncated: boolean;
  contentType: string | null;
  /** What the answer's stream looked like, for a streamed 2xx answer (see {@link StreamSummary}); absent or null otherwise. */
  stream?: StreamSummary | null;
}

/**
 * One streamed answer as the request path measured it (src/proxy/stream-probe.ts): a 2xx answer of a route with a
 * `streaming` policy, or any text/event-stream answer. A few numbers, built once when the answer ends.
 */
export interface StreamSummary {
  /** From the upstream's start (the origin of latencyMs) to the first body byte. */
  ttftMs: number;
  /** Gaps between consecutive body chunks, those longer than the route's gap threshold, and the longest (ms). */
  gaps: number;
  gapsOver: number;
  maxGapMs: number;
  /** The threshold the gaps were judged against (ms). */
  gapThresholdMs: number;
  /** The answer ended without its terminal marker, or the upstream failed after the headers. */
  interrupted: boolean;
  /** Output tokens: the usage the last event reported when present, else the events (SSE) or chunks counted. */
  tokens: number;
  tokensFromUsage: boolean;
  /** Tokens per second of generation (first byte to last); null when the answer came in one chunk. */
  tokensPerSecond: number | null;
}

/**
 * True for the kinds of failure the client caused: it went away (mid-upload or mid-answer), sent a body over the
 * route's limit, or stopped sending its body for the route's body idle timeout. They say nothing about the variant
 * that happened to serve the request, so no guardrail, breaker, upstream-error metric or prediction record may count
 * them against it; an observation of one is still emitted so the port can tell it apart from a request that never
 * reached an arm.
 */
export function isClientFault(kind: UpstreamErrorKind | null): boolean {
  return kind === 'client_abort' || kind === 'body_too_large' || kind === 'client_timeout';
}

/**
 * Whether an outcome is evidence about the variant for guardrails and the prediction log: not a client fault, and not
 * a request refused because its route's connections were all taken (`busy`: slow clients can take them all; an
 * upstream that is itself slow already shows in the timeouts and latency of the requests that hold them).
 */
export function isVariantEvidence(kind: UpstreamErrorKind | null): boolean {
  return kind !== 'busy' && !isClientFault(kind);
}

/**
 * Whether a served observation goes to the prediction log; the one filter the serving thread (recorder-client.ts) and
 * the recorder worker (pair-recorder.ts) both apply. A challenger failure replaced by the champion is not the answer
 * the client got (the fallback observation is); what is not variant evidence (a client fault, a busy route) is nobody's
 * prediction and no variant's failure, as the guardrail windows ignore it too, so a mirror's shadow half then stays
 * unpaired; and an unsampled plain success (no mirror, no body copied, no error) carries nothing to record.
 */
export function isRecordable(o: ServedObservation): boolean {
  if (o.fellBack || !isVariantEvidence(o.errorKind)) return false;
  return o.mirrored > 0 || o.responseBody !== null || o.errorKind !== null;
}

/** Receives observations. Implementations must return at once and never throw. */
export interface ObservationPort {
  /** Bytes of response body to copy for this request (0: none); mirrored requests are always paired. */
  captureBytes(route: string, mirrored: boolean): number;
  served(observation: ServedObservation): void;
  /** A shadow challenger's answer to a mirrored request. */
  shadowed(observation: ShadowObservation): void;
}

/** What a shadow challenger answered to a mirrored request; never seen by the client. */
export interface ShadowObservation {
  route: string;
  requestId: string;
  /** The mirrored request's {@link ServedObservation.joinId}. */
  joinId: number;
  variant: string;
  status: number;
  errorKind: UpstreamErrorKind | null;
  latencyMs: number;
  startedAt: number;
  responseBody: Buffer | null;
  responseTruncated: boolean;
  contentType: string | null;
  /** The shadow answer's stream, measured like a served one (absent: not measured). */
  stream?: StreamSummary | null;
}

/** A port that keeps nothing: used when no analysis or pair log is configured. */
export const nopObservationPort: ObservationPort = Object.freeze({
  captureBytes: () => 0,
  served: () => undefined,
  shadowed: () => undefined,
});

/** Fans one observation out to several ports (e.g. the guardrail window and the pair recorder). */
export function fanOut(ports: readonly ObservationPort[]): ObservationPort {
  if (ports.length === 0) return nopObservationPort;
  if (ports.length === 1) return ports[0]!;
  return {
    captureBytes: (route, mirrored) => {
      let max = 0;
      for (const port of ports) max = Math.max(max, port.captureBytes(route, mirrored));
      return max;
    },
    served: (observation) => {
      for (const port of ports) port.served(observation);
    },
    shadowed: (observation) => {
      for (const port of ports) port.shadowed(observation);
    },
  };
}
