// The diagnostics channels the data path publishes its upstream calls on: nothing is built or sent unless a subscriber listens.
import diagnostics from 'node:diagnostics_channel';
import type { UpstreamErrorKind } from './error-map.js';

/** Which call of a client request an upstream call is. */
export type UpstreamCallKind = 'served' | 'fallback' | 'mirror';

/**
 * One upstream call, published on {@link upstreamCallStart} just before it is sent and, the same object with its
 * outcome filled in, on {@link upstreamCallEnd} once it ended. Built only when the start channel has subscribers.
 */
export interface UpstreamCallMessage {
  readonly call: UpstreamCallKind;
  /** The same object for every call made for one client request (its served call, a fallback and its mirrors). */
  readonly request: object;
  readonly requestId: string;
  readonly route: string;
  readonly variant: string;
  readonly role: 'champion' | 'challenger';
  readonly method: string;
  /** The upstream's origin (scheme://host:port) and the path sent to it. */
  readonly upstream: string;
  readonly path: string;
  /**
   * The header fields about to be sent, flat [name, value, ...]. A start subscriber may set a field here (e.g.
   * `traceparent`); the call is dispatched after every subscriber returned. Shared by the served call and a fallback.
   */
  readonly headers: string[];
  /** For a fallback: the challenger that failed. */
  readonly fallbackFrom: string | null;
  /** Outcome, set before the end message: status 0 when no answer arrived. */
  status: number;
  errorKind: UpstreamErrorKind | null;
  latencyMs: number;
  /** True when this (challenger) call failed and the champion answered instead. */
  fellBack: boolean;
}

/** Published before an upstream call is sent (subscribers run synchronously and may add header fields). */
export const upstreamCallStart = diagnostics.channel('switchyard:upstream:start');
/** Published when an upstream call ended, with the start message's object. */
export const upstreamCallEnd = diagnostics.channel('switchyard:upstream:end');
