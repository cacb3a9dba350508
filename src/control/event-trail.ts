// The audit trail GET /v1/events reads: this replica's log alone, or with Redis one fleet-wide ordered trail (a bounded Redis stream) every replica shows alike.
//
// Each replica appends its own events to its audit.ndjson as before (admin answers' `eventId` is that local id) and
// ships them, off every caller's path, to one Redis stream. A Lua script gives each event the next fleet sequence
// number and adds it with that number as its stream id (`<seq>-0`), so the stream is ordered, ids are plain integers a
// client can page with, and XADD ... MAXLEN ~ bounds the stream. Reads go to Redis, so every replica answers alike;
// while Redis is unreachable a replica answers from its own log (`source: "local"`) and ships the queued events when
// Redis returns. The queue has a byte budget: beyond it events are dropped from the fleet trail (counted), never from
// the local log.
import type { Cluster, Redis, Result } from 'ioredis';
import type { Logger } from 'pino';
import { matches, parseEvent, type AuditEvent, type AuditListener, type AuditLog, type EventPage, type EventQuery } from './audit.js';
import type { Metrics } from '../metrics/registry.js';
import { connect } from '../coordination/redis.js';
import type { RedisTarget } from '../coordination/redis-url.js';

declare module 'ioredis' {
  interface RedisCommander<Context> {
    /** AUDIT_ADD_SCRIPT: the event's fleet sequence number. */
    swyAuditAdd(stream: string, seq: string, maxLen: string, event: string): Result<number, Context>;
  }
}

/** Where GET /v1/events reads. */
export interface EventTrail {
  page(query: EventQuery): Promise<EventPage>;
  /**
   * Calls `listener` with each new event of the trail, with the ids `page` answers with: this replica's as they are
   * recorded, or with Redis the fleet's as they reach the stream (polled while anyone listens). With `after` (the
   * `lastId` of a page read before), the events since that page come first, so nothing falls between the two. Returns
   * the unsubscribe.
   */
  subscribe(listener: AuditListener, after?: number): () => void;
  start(): void;
  close(): Promise<void>;
}

/** This replica's log alone (no Redis). */
export class LocalEventTrail implements EventTrail {
  readonly #audit: AuditLog;

  constructor(audit: AuditLog) {
    this.#audit = audit;
  }

  page(query: EventQuery): Promise<EventPage> {
    return Promise.resolve(this.#audit.page(query));
  }

  subscribe(listener: AuditListener, after?: number): () => void {
    // Both synchronous: no event can be recorded between the catch-up and the subscription.
    if (after !== undefined) for (const event of this.#audit.page({ after, limit: Number.MAX_SAFE_INTEGER }).events) listener(event);
    return this.#audit.subscribe(listener);
  }

  start(): void {}

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * Next fleet sequence number, never at or below the stream's last id (so a lost counter cannot make XADD fail), then
 * XADD with that id and an approximate length bound. KEYS: stream, seq. ARGV: max length, event JSON.
 */
const AUDIT_ADD_SCRIPT = `
local seq = redis.call('INCR', KEYS[2])
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if last[1] then
  local lastSeq = tonumber(string.match(last[1][1], '^(%d+)'))
  if lastSeq >= seq then
    seq = lastSeq + 1
    redis.call('SET', KEYS[2], seq)
  end
end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], seq .. '-0', 'e', ARGV[2])
return seq
`;

/** Settings of the fleet trail. */
export interface FleetTrailSettings {
  target: RedisTarget;
  prefix: string;
  instanceId: string;
  timeoutMs: number;
  /** Approximate bound on the stream's length (XADD MAXLEN ~). Default 10,000. */
  maxLen?: number;
  /** Bytes of events waiting for Redis before new ones are dropped from the fleet trail (counted). Default 1 MiB. */
  queueBytes?: number;
  /** Retry delay while Redis is unreachable (ms). Default 1,000. */
  retryMs?: number;
  /** How often the stream is read for subscribers (ms). Default 500. */
  followMs?: number;
}

/** Stream and counter keys; one hash tag so the script runs on Redis Cluster. */
export function auditKeys(prefix: string): { stream: string; seq: string } {
  return { stream: `${prefix}:{audit}:events`, seq: `${prefix}:{audit}:seq` };
}

type StreamEntry = [id: string, fields: string[]];

/** The fleet-wide trail through a Redis stream. */
export class RedisEventTrail implements EventTrail {
  readonly #settings: Required<FleetTrailSettings>;
  readonly #audit: AuditLog;
  readonly #metrics: Metrics;
  readonly #logger: Logger;
  readonly #client: Redis | Cluster;
  readonly #keys: { stream: string; seq: string };
  readonly #queue: { json: string; bytes: number }[] = [];
  #queuedBytes = 0;
  #pumping: Promise<void> | null = null;
  #retry: NodeJS.Timeout | null = null;
  #unsubscribe: (() => void) | null = null;
  #closed = false;
  readonly #listeners = new Map<AuditListener, { after: number | null }>();
  #follow: { timer: NodeJS.Timeout; reading: boolean } | null = null;

  constructor(settings: FleetTrailSettings, deps: { audit: AuditLog; metrics: Metrics; logger: Logger }) {
    this.#settings = { maxLen: 10_000, queueBytes: 1024 * 1024, retryMs: 1_000, followMs: 500, ...settings };
    this.#audit = deps.audit;
    this.#metrics = deps.metrics;
    this.#logger = deps.logger;
    this.#keys = auditKeys(settings.prefix);
    this.#client = connect(settings.target, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: Math.max(settings.timeoutMs, 500),
      connectTimeout: Math.max(500, 4 * settings.timeoutMs),
      retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times - 1, 4), 1_000),
      connectionName: `switchyard:${settings.instanceId}:audit`,
    });
    this.#client.defineCommand('swyAuditAdd', { numberOfKeys: 2, lua: AUDIT_ADD_SCRIPT });
    // Connection errors are the coordination's to report (same Redis); here they only delay shipping.
    this.#client.on('error', (err: unknown) => this.#logger.debug({ code: (err as { code?: string }).code }, 'audit stream: redis connection error'));
    this.#client.on('ready', () => this.#pump());
    for (const result of ['published', 'dropped'] as const) this.#metrics.auditStream.labels(result).inc(0);
  }

  start(): void {
    if (this.#unsubscribe !== null || this.#closed) return;
    this.#unsubscribe = this.#audit.subscribe((event) => this.#enqueue(event));
    this.#client.connect().catch((err: unknown) => this.#logger.debug({ code: (err as { code?: string }).code }, 'audit stream: redis connect failed; retrying'));
  }

  #enqueue(event: AuditEvent): void {
    const { id, ...rest } = event;
    const json = JSON.stringify({ ...rest, instance: this.#settings.instanceId, originId: id });
    const bytes = Buffer.byteLength(json);
    if (this.#queuedBytes + bytes > this.#settings.queueBytes) {
      this.#metrics.auditStream.labels('dropped').inc();
      this.#logger.warn({ eventId: id, queuedBytes: this.#queuedBytes }, 'audit stream: queue full while Redis is unreachable; the event stays in the local log but not in the fleet trail');
      return;
    }
    this.#queue.push({ json, bytes });
    this.#queuedBytes += bytes;
    this.#pump();
  }

  /**
   * Ships queued events in order, up to 100 script calls per round trip (one pipeline on one connection keeps their
   * order); on an error the unshipped rest waits `retryMs` (or the next `ready`).
   */
  #pump(): void {
    if (this.#pumping !== null || this.#queue.length === 0 || this.#client.status !== 'ready') return;
    this.#pumping = (async () => {
      try {
        while (this.#queue.length > 0 && this.#client.status === 'ready') {
          const batch = this.#queue.slice(0, 100);
          const pipeline = this.#client.pipeline();
          for (const next of batch) pipeline.swyAuditAdd(this.#keys.stream, this.#keys.seq, String(this.#settings.maxLen), next.json);
          const results = (await pipeline.exec()) ?? [];
          let shipped = 0;
          while (shipped < batch.length && results[shipped] !== undefined && results[shipped]![0] === null) shipped++;
          for (const done of this.#queue.splice(0, shipped)) this.#queuedBytes -= done.bytes;
          this.#metrics.auditStream.labels('published').inc(shipped);
          if (shipped < batch.length) throw results[shipped]?.[0] ?? new Error('audit stream: pipeline answered short');
        }
      } catch (err) {
        this.#logger.debug({ code: (err as { code?: string }).code }, 'audit stream: shipping failed; retrying');
        if (!this.#closed && this.#retry === null) {
          this.#retry = setTimeout(() => {
            this.#retry = null;
            this.#pump();
          }, this.#settings.retryMs);
          this.#retry.unref();
        }
      } finally {
        this.#pumping = null;
      }
    })();
  }

  async page(query: EventQuery): Promise<EventPage> {
    if (this.#client.status !== 'ready') return this.#audit.page(query);
    try {
      return await this.#readFleet(query);
    } catch (err) {
      this.#logger.debug({ code: (err as { code?: string }).code }, 'audit stream: read failed; answering from the local log');
      return this.#audit.page(query);
    }
  }

  async #readFleet(query: EventQuery): Promise<EventPage> {
    const events: AuditEvent[] = [];
    // Filters may skip most entries: read big batches then, so a rare event costs few round trips.
    const filtered = query.route !== undefined || query.actions !== undefined || query.sinceMs !== undefined;
    const batch = filtered ? 1_000 : Math.min(1_000, Math.max(100, query.limit * 2));
    // A filtered query reads batches until it has `limit` events or has scanned this many (the stream is bounded anyway).
    let budget = Math.max(this.#settings.maxLen * 2, 1_000);
    const ascending = query.after !== undefined;
    let cursor = ascending ? query.after! : query.before !== undefined ? query.before : null;
    while (events.length < query.limit && budget > 0) {
      const entries = (ascending
        ? await this.#client.xrange(this.#keys.stream, `${cursor! + 1}-0`, '+', 'COUNT', batch)
        : await this.#client.xrevrange(this.#keys.stream, cursor === null ? '+' : `${cursor - 1}-0`, '-', 'COUNT', batch)) as StreamEntry[];
      for (const entry of entries) {
        const seq = Number.parseInt(entry[0], 10);
        cursor = seq;
        const event = eventOf(seq, entry[1]);
        if (event !== null && matches(event, query)) events.push(event);
        if (events.length >= query.limit) break;
      }
      budget -= entries.length;
      if (entries.length < batch || (cursor !== null && cursor <= 1 && !ascending)) break;
    }
    const [first, last] = await Promise.all([
      this.#client.xrange(this.#keys.stream, '-', '+', 'COUNT', 1) as Promise<StreamEntry[]>,
      this.#client.xrevrange(this.#keys.stream, '+', '-', 'COUNT', 1) as Promise<StreamEntry[]>,
    ]);
    return {
      events,
      lastId: last[0] ? Number.parseInt(last[0][0], 10) : 0,
      firstId: first[0] ? Number.parseInt(first[0][0], 10) : null,
      source: 'fleet',
    };
  }

  subscribe(listener: AuditListener, after?: number): () => void {
    // Each listener keeps its own place in the stream (null: from wherever the stream ends at the first read).
    this.#listeners.set(listener, { after: after ?? null });
    if (this.#follow === null && !this.#closed) {
      const follow = { timer: setInterval(() => void this.#readNew(follow), this.#settings.followMs), reading: false };
      follow.timer.unref();
      this.#follow = follow;
    }
    void this.#readNew(this.#follow!);
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0 && this.#follow !== null) {
        clearInterval(this.#follow.timer);
        this.#follow = null;
      }
    };
  }

  /** Reads the stream from the earliest listener's place and gives each listener, in order, the events past its own. */
  async #readNew(follow: { reading: boolean }): Promise<void> {
    if (follow.reading || this.#client.status !== 'ready' || this.#listeners.size === 0) return;
    follow.reading = true;
    try {
      if ([...this.#listeners.values()].some((place) => place.after === null)) {
        const last = (await this.#client.xrevrange(this.#keys.stream, '+', '-', 'COUNT', 1)) as StreamEntry[];
        const end = last[0] ? Number.parseInt(last[0][0], 10) : 0;
        for (const place of this.#listeners.values()) place.after ??= end;
      }
      for (;;) {
        const from = Math.min(...[...this.#listeners.values()].map((place) => place.after ?? 0));
        const entries = (await this.#client.xrange(this.#keys.stream, `${from + 1}-0`, '+', 'COUNT', 500)) as StreamEntry[];
        for (const entry of entries) {
          const seq = Number.parseInt(entry[0], 10);
          const event = eventOf(seq, entry[1]);
          for (const [listener, place] of this.#listeners) {
            if (place.after === null || place.after >= seq) continue;
            place.after = seq;
            if (event === null) continue;
            try {
              listener(event);
            } catch (err) {
              this.#logger.error({ err, eventId: seq }, 'a fleet trail subscriber threw');
            }
          }
        }
        if (entries.length < 500 || this.#listeners.size === 0) return;
      }
    } catch (err) {
      this.#logger.debug({ code: (err as { code?: string }).code }, 'audit stream: following failed; retrying');
    } finally {
      follow.reading = false;
    }
  }

  /** Events not yet shipped (tests, shutdown). */
  get pending(): number {
    return this.#queue.length;
  }

  /** Ships what is queued for up to `waitMs`, then disconnects. */
  async close(waitMs = 1_000): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe?.();
    if (this.#follow !== null) clearInterval(this.#follow.timer);
    this.#follow = null;
    if (this.#retry !== null) clearTimeout(this.#retry);
    const deadline = Date.now() + waitMs;
    while (this.#queue.length > 0 && this.#client.status === 'ready' && Date.now() < deadline) {
      this.#pump();
      await (this.#pumping ?? Promise.resolve());
    }
    this.#client.disconnect();
  }
}

function eventOf(seq: number, fields: string[]): AuditEvent | null {
  const at = fields.indexOf('e');
  if (at < 0 || at + 1 >= fields.length) return null;
  const json = fields[at + 1]!;
  // The stored event has no id of its own: the fleet sequence number is its id.
  return parseEvent(`{"id":${seq},${json.slice(1)}`);
}
