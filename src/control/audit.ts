// Audit log of control changes: who did what to which route, before and after; reloaded from and appended to NDJSON, bounded in bytes in memory, followed by subscribers.
import { appendFile, mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';

/** One recorded change. `before` and `after` are the route's live state around it. */
export interface AuditEvent {
  /** Increasing, and continued across restarts from audit.ndjson, so clients can page (`?after=`) and deduplicate. */
  readonly id: number;
  /** Token name for admin calls ("admin", "alice"), or the component ("controller", "flags"). */
  readonly who: string;
  /** e.g. split.set, pause, resume, rollback, promote, step, approval.needed, approve, breach, flag.stale. */
  readonly action: string;
  readonly route: string;
  readonly before: unknown;
  readonly after: unknown;
  /** Extra facts, such as what was written to Unleash. */
  readonly detail?: unknown;
  /** ISO 8601 time. */
  readonly at: string;
  /** The replica that recorded it (set on the fleet-wide trail, control/event-trail.ts). */
  readonly instance?: string;
  /** Its id on that replica, which the admin API's `eventId` answers refer to (fleet-wide trail only). */
  readonly originId?: number;
}

/** A query of the trail: the filters are ANDed. */
export interface EventQuery {
  /** Events with a greater id, oldest first (following the trail). Without it: the newest events, newest first. */
  after?: number | undefined;
  /** With `after` absent: events with a smaller id, newest first (paging back). */
  before?: number | undefined;
  limit: number;
  route?: string | undefined;
  /** Actions to keep (e.g. ["rollback", "promote"]); absent: all. */
  actions?: readonly string[] | undefined;
  /** Only events at or after this time (epoch ms). */
  sinceMs?: number | undefined;
}

/** One page of events. */
export interface EventPage {
  events: AuditEvent[];
  /** The greatest id the trail holds (0 when empty): pass it as `after` to follow only newer events. */
  lastId: number;
  /** The smallest id still held; older events have aged out (memory byte budget, or the Redis stream's length bound). */
  firstId: number | null;
  /** Where the events come from: this replica's log, or the fleet-wide Redis stream. */
  source: 'local' | 'fleet';
}

/** What reloading audit.ndjson found. */
export interface AuditLoadReport {
  file: string;
  /** Events read back into memory (the newest ones that fit the byte budget). */
  loaded: number;
  /** The last id on disk; new events continue after it. */
  lastId: number;
  /** Lines that were not whole events (a torn last line after a crash, or damage), skipped and reported. */
  skippedLines: number;
  /** True when the file did not end with a newline: its last line was torn by a crash mid-write. */
  tornTail: boolean;
}

/** Options of {@link AuditLog}. */
export interface AuditLogOptions {
  /** NDJSON file appended to; null keeps events in memory only. */
  file: string | null;
  /** At most this many events in memory. Default 10,000. */
  capacity?: number;
  /** At most this many bytes (of serialised events) in memory. Default 4 MiB. */
  maxBytes?: number;
  logger?: Logger;
}

/** Something that follows new events; it must not throw (a throw is caught and logged) and must not block. */
export type AuditListener = (event: AuditEvent) => void;

/** How much of the file's tail a reload reads beyond the byte budget (so the last id is found even if a line is huge). */
const RELOAD_SLACK_BYTES = 256 * 1024;

interface Held {
  event: AuditEvent;
  bytes: number;
}

/**
 * Keeps the newest events (by count and by bytes) in memory and appends each to the file off the caller's path.
 * Appends are chained so lines never interleave; a failed write is logged and the event stays queryable in memory (it
 * is not retried).
 */
export class AuditLog {
  readonly #held: Held[] = [];
  /** Index of the oldest held event in #held (a deque without shifting on every eviction). */
  #head = 0;
  #bytes = 0;
  #nextId = 1;
  readonly #capacity: number;
  readonly #maxBytes: number;
  readonly #file: string | null;
  readonly #logger: Logger | undefined;
  readonly #listeners = new Set<AuditListener>();
  #writes: Promise<void> = Promise.resolve();
  #dirReady: Promise<void> | null = null;
  /** The file's last line was torn: the next append starts with a newline so it is not glued onto it. */
  #needsNewline = false;
  /** What the reload found (null: nothing was reloaded). */
  loadReport: AuditLoadReport | null = null;
  /**
   * False when the reloaded file repeats ids (written by a version that restarted them at 1 on every start): paging by
   * id then scans instead of searching. New events always continue after the largest id.
   */
  #ordered = true;

  constructor(options: AuditLogOptions) {
    const capacity = options.capacity ?? 10_000;
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`audit capacity must be a positive integer, got ${capacity}`);
    const maxBytes = options.maxBytes ?? 4 * 1024 * 1024;
    if (!Number.isInteger(maxBytes) || maxBytes < 1024) throw new RangeError(`audit maxBytes must be an integer of at least 1024, got ${maxBytes}`);
    this.#capacity = capacity;
    this.#maxBytes = maxBytes;
    this.#file = options.file;
    this.#logger = options.logger;
  }

  /**
   * Opens the log and reloads the newest events of its file, so the trail and its ids survive a restart. A torn or
   * damaged line is skipped and reported (logged, and in `loadReport`); an unreadable file is logged and the log
   * starts empty rather than stopping the router.
   */
  static async open(options: AuditLogOptions): Promise<AuditLog> {
    const log = new AuditLog(options);
    if (options.file !== null) await log.#reload(options.file);
    return log;
  }

  async #reload(file: string): Promise<void> {
    let text: string;
    let fromStart: boolean;
    try {
      const handle = await open(file, 'r');
      try {
        const { size } = await handle.stat();
        const length = Math.min(size, this.#maxBytes + RELOAD_SLACK_BYTES);
        const buffer = Buffer.alloc(length);
        await handle.read(buffer, 0, length, size - length);
        text = buffer.toString('utf8');
        fromStart = length === size;
      } finally {
        await handle.close();
      }
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') return;
      this.#logger?.error({ err, file }, 'audit log could not be read back; the trail starts empty (ids restart at 1)');
      return;
    }
    const lines = text.split('\n');
    const tornTail = text.length > 0 && !text.endsWith('\n');
    // The read started mid-file: its first piece is the end of a line that is not ours to judge.
    if (!fromStart) lines.shift();
    let skipped = 0;
    let lastId = 0;
    const events: AuditEvent[] = [];
    for (const line of lines) {
      if (line.trim() === '') continue;
      const event = parseEvent(line);
      if (event === null) {
        skipped++;
        continue;
      }
      events.push(event);
      lastId = Math.max(lastId, event.id);
    }
    for (let i = 1; i < events.length && this.#ordered; i++) if (events[i]!.id <= events[i - 1]!.id) this.#ordered = false;
    if (!this.#ordered) this.#logger?.info({ file }, 'audit log: older events repeat ids (written before ids continued across restarts); new events continue after the largest');
    for (const event of events) this.#hold(event, Buffer.byteLength(JSON.stringify(event)) + 1);
    this.#nextId = lastId + 1;
    this.#needsNewline = tornTail;
    this.loadReport = { file, loaded: this.size, lastId, skippedLines: skipped, tornTail };
    if (skipped > 0) {
      this.#logger?.warn({ file, skippedLines: skipped, tornTail, lastId }, tornTail ? 'audit log: the last line was torn (a crash mid-write); it is skipped and new events start on a fresh line' : 'audit log: damaged lines skipped');
    }
    if (events.length > 0) this.#logger?.info({ file, loaded: this.size, lastId }, 'audit trail reloaded');
  }

  /** Events held in memory. */
  get size(): number {
    return this.#held.length - this.#head;
  }

  /** Bytes of the events held in memory (their serialised size). */
  get bytes(): number {
    return this.#bytes;
  }

  /** The greatest id given out so far (0 when none). */
  get lastId(): number {
    return this.#nextId - 1;
  }

  #hold(event: AuditEvent, bytes: number): void {
    this.#held.push({ event, bytes });
    this.#bytes += bytes;
    while (this.size > 1 && (this.size > this.#capacity || this.#bytes > this.#maxBytes)) {
      this.#bytes -= this.#held[this.#head]!.bytes;
      this.#held[this.#head] = undefined as unknown as Held;
      this.#head++;
    }
    // Compact once the evicted prefix dominates, so eviction stays O(1) amortised.
    if (this.#head > 1024 && this.#head * 2 > this.#held.length) {
      this.#held.splice(0, this.#head);
      this.#head = 0;
    }
  }

  /** Records an event; returns it with its id and time. Never throws for I/O: the write happens later. */
  append(entry: Omit<AuditEvent, 'id' | 'at'> & { at?: string }): AuditEvent {
    const event: AuditEvent = Object.freeze({ id: this.#nextId++, ...entry, at: entry.at ?? new Date().toISOString() });
    const json = JSON.stringify(event);
    this.#hold(event, Buffer.byteLength(json) + 1);
    if (this.#file !== null) {
      const file = this.#file;
      const line = `${this.#needsNewline ? '\n' : ''}${json}\n`;
      this.#needsNewline = false;
      this.#dirReady ??= mkdir(path.dirname(file), { recursive: true }).then(() => undefined);
      this.#writes = this.#writes
        .then(() => this.#dirReady)
        .then(() => appendFile(file, line))
        .catch((err: unknown) => {
          this.#dirReady = null;
          this.#logger?.error({ err, file, eventId: event.id }, 'audit event not written to disk (kept in memory)');
        });
    }
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (err) {
        this.#logger?.error({ err, eventId: event.id }, 'an audit subscriber threw; the event is recorded');
      }
    }
    return event;
  }

  /**
   * Calls `listener` with every event appended from now on, synchronously after it is recorded (the notifier, the
   * fleet trail and the status page's live updates follow the log this way). Returns the unsubscribe function.
   */
  subscribe(listener: AuditListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** Newest first, optionally for one route, at most `limit` (default 100). */
  list(filter: { route?: string | undefined; limit?: number | undefined } = {}): AuditEvent[] {
    return this.page({ route: filter.route, limit: filter.limit ?? 100 }).events;
  }

  /** One page of the events held in memory (see {@link EventQuery} for the order). */
  page(query: EventQuery): EventPage {
    const events: AuditEvent[] = [];
    const end = this.#held.length;
    if (query.after !== undefined) {
      // Ids increase along the deque: binary search for the first id above `after` (a scan when old ids repeat).
      let lo = this.#head;
      let hi = end;
      while (this.#ordered && lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (this.#held[mid]!.event.id <= query.after) lo = mid + 1;
        else hi = mid;
      }
      for (let i = lo; i < end && events.length < query.limit; i++) {
        const event = this.#held[i]!.event;
        if (event.id > query.after && matches(event, query)) events.push(event);
      }
    } else {
      for (let i = end - 1; i >= this.#head && events.length < query.limit; i--) {
        const event = this.#held[i]!.event;
        if (query.before !== undefined && event.id >= query.before) continue;
        if (matches(event, query)) events.push(event);
      }
    }
    return { events, lastId: this.lastId, firstId: this.size > 0 ? this.#held[this.#head]!.event.id : null, source: 'local' };
  }

  /** Resolves when every event appended so far reached the file (or failed and was logged). */
  flush(): Promise<void> {
    return this.#writes;
  }
}

/** Whether an event passes a query's filters (route, actions, since); the id bounds are the caller's. */
export function matches(event: AuditEvent, query: Pick<EventQuery, 'route' | 'actions' | 'sinceMs'>): boolean {
  if (query.route !== undefined && event.route !== query.route) return false;
  if (query.actions !== undefined && !query.actions.includes(event.action)) return false;
  if (query.sinceMs !== undefined && !(Date.parse(event.at) >= query.sinceMs)) return false;
  return true;
}

/** Parses one stored line; null when it is not a whole event (torn, damaged, or not ours). */
export function parseEvent(line: string): AuditEvent | null {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return null;
  }
  if (value === null || typeof value !== 'object') return null;
  const e = value as Record<string, unknown>;
  if (!Number.isSafeInteger(e.id) || (e.id as number) < 1 || typeof e.action !== 'string' || typeof e.route !== 'string' || typeof e.who !== 'string' || typeof e.at !== 'string') return null;
  return Object.freeze(e) as unknown as AuditEvent;
}
