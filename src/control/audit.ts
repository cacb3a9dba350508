// Audit log of split changes: who did what to which route, before and after; bounded in memory, appended to NDJSON.
import { appendFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';

/** One recorded change. `before` and `after` are the route's live state around it. */
export interface AuditEvent {
  /** Monotonic per process, so clients can page and deduplicate. */
  readonly id: number;
  /** Token name for admin calls ("admin", "alice"), or the component ("controller", "flags"). */
  readonly who: string;
  /** e.g. split.set, pause, resume, rollback. */
  readonly action: string;
  readonly route: string;
  readonly before: unknown;
  readonly after: unknown;
  /** Extra facts, such as what was written to Unleash. */
  readonly detail?: unknown;
  /** ISO 8601 time. */
  readonly at: string;
}

/** Options of {@link AuditLog}. */
export interface AuditLogOptions {
  /** NDJSON file appended to; null keeps events in memory only. */
  file: string | null;
  /** Events kept in memory for GET /v1/events. Default 1000. */
  capacity?: number;
  logger?: Logger;
}

/**
 * Keeps the newest events in a ring and appends each to the file off the caller's path. Appends are chained so lines
 * never interleave; a failed write is logged and the event stays queryable in memory (it is not retried).
 */
export class AuditLog {
  readonly #ring: (AuditEvent | undefined)[];
  #next = 0;
  #count = 0;
  #nextId = 1;
  readonly #file: string | null;
  readonly #logger: Logger | undefined;
  #writes: Promise<void> = Promise.resolve();
  #dirReady: Promise<void> | null = null;

  constructor(options: AuditLogOptions) {
    const capacity = options.capacity ?? 1000;
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`audit capacity must be a positive integer, got ${capacity}`);
    this.#ring = new Array<AuditEvent | undefined>(capacity);
    this.#file = options.file;
    this.#logger = options.logger;
  }

  /** Records an event; returns it with its id and time. Never throws for I/O: the write happens later. */
  append(entry: Omit<AuditEvent, 'id' | 'at'> & { at?: string }): AuditEvent {
    const event: AuditEvent = Object.freeze({ id: this.#nextId++, ...entry, at: entry.at ?? new Date().toISOString() });
    this.#ring[this.#next] = event;
    this.#next = (this.#next + 1) % this.#ring.length;
    this.#count = Math.min(this.#count + 1, this.#ring.length);
    if (this.#file !== null) {
      const file = this.#file;
      const line = `${JSON.stringify(event)}\n`;
      this.#dirReady ??= mkdir(path.dirname(file), { recursive: true }).then(() => undefined);
      this.#writes = this.#writes
        .then(() => this.#dirReady)
        .then(() => appendFile(file, line))
        .catch((err: unknown) => {
          this.#dirReady = null;
          this.#logger?.error({ err, file, eventId: event.id }, 'audit event not written to disk (kept in memory)');
        });
    }
    return event;
  }

  /** Newest first, optionally for one route, at most `limit`. */
  list(filter: { route?: string | undefined; limit?: number | undefined } = {}): AuditEvent[] {
    const limit = filter.limit ?? 100;
    const out: AuditEvent[] = [];
    for (let i = 1; i <= this.#count && out.length < limit; i++) {
      const event = this.#ring[(this.#next - i + this.#ring.length) % this.#ring.length]!;
      if (filter.route === undefined || event.route === filter.route) out.push(event);
    }
    return out;
  }

  /** Resolves when every event appended so far reached the file (or failed and was logged). */
  flush(): Promise<void> {
    return this.#writes;
  }
}
