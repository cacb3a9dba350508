// One structured log line per failed request and a sampled share of successful ones, written after the request's callback, within a per-second budget.
import type { Logger } from 'pino';
import { isClientFault } from '../record/port.js';
import { clientErrorFor, type UpstreamErrorKind } from './error-map.js';

/** What one log line says; the raw facts are queued and only formatted when the queue is written out. */
export interface RequestLogEntry {
  requestId: string;
  method: string;
  path: string;
  route: string | null;
  variant: string | null;
  /** The upstream's origin the call went to (null: refused before any call). */
  upstream: string | null;
  status: number;
  errorKind: UpstreamErrorKind | null;
  /** The transport error or our own error behind the failure; turned into the client-facing code when written. */
  cause: unknown;
  /** A refusal's reason label (switchyard_rejected_requests_total; `internal` for a bug's 500) or null for an upstream call. */
  refused: string | null;
  latencyMs: number;
  fellBack: boolean;
  fallbackFor: string | null;
  /** Limits that clientErrorFor puts in the code's message (not logged). */
  timeoutMs: number;
  bodyLimitBytes: number;
}

/** Settings of the request log (SWITCHYARD_REQUEST_LOG_SAMPLE, SWITCHYARD_REQUEST_LOG_MAX_PER_SECOND). */
export interface RequestLogSettings {
  /** Share of successful upstream calls that get a line (0..1; default 0: only failures). */
  sampleSuccess?: number;
  /** Most lines written per second; the rest are dropped and counted (default 1,000). */
  maxPerSecond?: number;
}

/** Counts a line that did not fit the budget. */
export interface DroppedCounter {
  inc(): void;
}

/**
 * Queues request log lines and writes them with pino on the next turn of the event loop, so a request's callback only
 * pushes a small object. Lines beyond `maxPerSecond` are dropped and counted, and one line says how many were dropped,
 * so a failing upstream at full traffic cannot turn the log into the bottleneck.
 */
export class RequestLog {
  readonly sampleSuccess: number;
  readonly #maxPerSecond: number;
  readonly #logger: Logger;
  readonly #dropped: DroppedCounter;
  #queue: RequestLogEntry[] = [];
  #scheduled = false;
  #windowStart = 0;
  #inWindow = 0;
  #droppedInWindow = 0;
  readonly #flush = () => this.#write();

  constructor(logger: Logger, settings: RequestLogSettings, dropped: DroppedCounter) {
    this.#logger = logger;
    this.sampleSuccess = settings.sampleSuccess ?? 0;
    this.#maxPerSecond = settings.maxPerSecond ?? 1_000;
    this.#dropped = dropped;
  }

  /** Queues one line; returns at once. */
  add(entry: RequestLogEntry): void {
    const now = Date.now();
    if (now - this.#windowStart >= 1_000) {
      if (this.#droppedInWindow > 0) this.#logger.warn({ dropped: this.#droppedInWindow }, `request log: ${this.#droppedInWindow} lines dropped in the last second (budget ${this.#maxPerSecond} per second; counted in switchyard_request_log_dropped_total)`);
      this.#windowStart = now;
      this.#inWindow = 0;
      this.#droppedInWindow = 0;
    }
    if (this.#inWindow >= this.#maxPerSecond) {
      this.#droppedInWindow++;
      this.#dropped.inc();
      return;
    }
    this.#inWindow++;
    this.#queue.push(entry);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
  }

  #write(): void {
    this.#scheduled = false;
    const queue = this.#queue;
    this.#queue = [];
    for (const entry of queue) {
      const failed = entry.errorKind !== null || entry.refused !== null;
      const error = clientErrorOf(entry);
      const line = {
        requestId: entry.requestId,
        method: entry.method,
        // Without the query: it may carry what should not reach a log (tokens, inputs).
        path: withoutQuery(entry.path),
        route: entry.route,
        variant: entry.variant,
        upstream: entry.upstream,
        // The upstream's status when one arrived, else the status of the error the client got (or would have got).
        status: entry.status !== 0 || error === null ? entry.status : error.statusCode,
        code: error === null ? null : error.code,
        errorKind: entry.errorKind,
        refused: entry.refused,
        latencyMs: Math.round(entry.latencyMs * 1000) / 1000,
        fellBack: entry.fellBack,
        fallbackFor: entry.fallbackFor,
      };
      if (!failed) this.#logger.info(line, 'request served');
      else if (entry.refused === 'internal') this.#logger.error(line, 'request failed');
      // The client's doing (or a refusal) is not an incident of ours: info, not warn.
      else if (entry.refused !== null || isClientFault(entry.errorKind)) this.#logger.info(line, 'request failed');
      else this.#logger.warn(line, 'request failed');
    }
  }
}

function withoutQuery(path: string): string {
  const q = path.indexOf('?');
  return q === -1 ? path : path.slice(0, q);
}

/** The error the client got (or would have got, before a fallback), whose stable SWY_ERR_* code the line carries; null when none. */
function clientErrorOf(entry: RequestLogEntry): { code: string; statusCode: number } | null {
  if (entry.refused !== null) return entry.cause as { code: string; statusCode: number };
  // The upstream's own 5xx reached the client as it was (or was replaced by the champion's answer): no code of ours.
  // A client that went away got nothing.
  if (entry.errorKind === null || entry.errorKind === 'status_5xx' || entry.errorKind === 'client_abort') return null;
  return clientErrorFor(entry.errorKind, entry.variant ?? '', entry.timeoutMs, entry.bodyLimitBytes, entry.route ?? '', entry.cause);
}
