// Notifications: follows the audit log and posts rollback, promotion, step, approval, breach and flag-stale events to Slack-compatible, CloudEvents and signed-JSON sinks; bounded, retried with jitter, counted.
//
// Nothing here is awaited by serving or by the controller: the audit log calls `#accept` synchronously, which only
// formats the body and queues it per sink (bounded: beyond the bound the delivery is dropped and counted). Each sink
// sends one delivery at a time, in order, so a slow receiver delays only its own queue. docs/notifications.md says
// what each receiver gets and how to verify the signature.
import { createHmac, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { request } from 'undici';
import type { Metrics } from '../metrics/registry.js';
import type { AuditEvent, AuditLog } from './audit.js';
import { notifyEvents, type NotifyConfig, type NotifyEvent, type NotifySink } from './notify-config.js';

/** Header carrying `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">` on json sinks with a key. */
export const SIGNATURE_HEADER = 'x-switchyard-signature';
/** Unix seconds the signature covers; receivers refuse old ones (replays). */
export const TIMESTAMP_HEADER = 'x-switchyard-timestamp';

/** The audit actions that map onto notified events (the rollout controller records its steps as `rollout.step`). */
const eventOfAction: Readonly<Record<string, NotifyEvent>> = Object.freeze({
  ...Object.fromEntries(notifyEvents.map((e) => [e, e])),
  'rollout.step': 'step',
});

/** What one delivery sends. */
interface Delivery {
  readonly event: NotifyEvent;
  readonly body: string;
  readonly headers: Record<string, string>;
  /** Signs at send time (json sinks with a key), so the timestamp is that of each attempt. */
  readonly sign: boolean;
}

interface SinkQueue {
  readonly sink: NotifySink;
  readonly items: Delivery[];
  running: Promise<void> | null;
}

/** Signs `<timestamp>.<body>` with HMAC-SHA256 (the scheme receivers verify; docs/notifications.md). */
export function signature(key: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', key).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** Delays with "full jitter": uniform in [0, min(max, base·2^(attempt-1))], so many replicas do not retry in step. */
export function retryDelayMs(attempt: number, baseDelayMs: number, maxDelayMs: number, random: () => number = Math.random): number {
  return Math.floor(random() * Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1)));
}

/** Follows the audit log and delivers notified events to every configured sink. */
export class Notifier {
  readonly #config: NotifyConfig;
  readonly #metrics: Metrics;
  readonly #logger: Logger | undefined;
  readonly #instance: string;
  readonly #queues: SinkQueue[];
  #unsubscribe: (() => void) | null = null;
  #closed = false;
  readonly #timers = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();

  constructor(config: NotifyConfig, deps: { metrics: Metrics; logger?: Logger; instanceId: string }) {
    this.#config = config;
    this.#metrics = deps.metrics;
    this.#logger = deps.logger;
    this.#instance = deps.instanceId;
    this.#queues = config.sinks.map((sink) => ({ sink, items: [], running: null }));
    for (const sink of config.sinks) {
      for (const event of sink.events ?? notifyEvents) for (const result of ['delivered', 'failed', 'dropped'] as const) this.#metrics.notifications.labels(sink.name, event, result).inc(0);
    }
  }

  /** Configured sinks (for logs and status). */
  get sinks(): readonly NotifySink[] {
    return this.#config.sinks;
  }

  /** Follows `audit` from now on. */
  follow(audit: AuditLog): void {
    if (this.#unsubscribe !== null || this.#queues.length === 0) return;
    this.#unsubscribe = audit.subscribe((event) => this.notify(event));
  }

  /** Queues `event` for every sink that wants it (no-op for actions that are not notified). Never throws, never waits. */
  notify(event: AuditEvent): void {
    const type = eventOfAction[event.action];
    if (type === undefined || this.#closed) return;
    for (const queue of this.#queues) {
      const { sink } = queue;
      if (sink.events !== undefined && !sink.events.includes(type)) continue;
      if (sink.routes !== undefined && !sink.routes.includes(event.route)) continue;
      if (queue.items.length >= this.#config.queue.maxPerSink) {
        this.#metrics.notifications.labels(sink.name, type, 'dropped').inc();
        this.#logger?.warn({ sink: sink.name, event: type, eventId: event.id }, 'notification dropped: the sink\'s queue is full');
        continue;
      }
      let delivery: Delivery;
      try {
        delivery = this.#format(sink, type, event);
      } catch (err) {
        this.#logger?.error({ err, sink: sink.name, eventId: event.id }, 'notification could not be formatted');
        this.#metrics.notifications.labels(sink.name, type, 'failed').inc();
        continue;
      }
      queue.items.push(delivery);
      queue.running ??= this.#drain(queue);
    }
  }

  #format(sink: NotifySink, type: NotifyEvent, event: AuditEvent): Delivery {
    const base = { 'user-agent': 'switchyard-notifier', 'x-switchyard-event': type, ...(sink.headers ?? {}) };
    switch (sink.kind) {
      case 'slack':
        return { event: type, body: JSON.stringify({ text: slackText(type, event) }), headers: { ...base, 'content-type': 'application/json' }, sign: false };
      case 'cloudevents': {
        // CloudEvents 1.0, structured content mode (JSON event format): the whole event is the body.
        const cloudEvent = {
          specversion: '1.0',
          id: `${this.#instance}/${event.id}`,
          source: `/switchyard/${encodeURIComponent(this.#instance)}`,
          type: `io.switchyard.${type}`,
          subject: event.route,
          time: event.at,
          datacontenttype: 'application/json',
          data: payloadOf(type, event, this.#instance),
        };
        return { event: type, body: JSON.stringify(cloudEvent), headers: { ...base, 'content-type': 'application/cloudevents+json; charset=utf-8' }, sign: false };
      }
      case 'json':
        return { event: type, body: JSON.stringify(payloadOf(type, event, this.#instance)), headers: { ...base, 'content-type': 'application/json', 'x-switchyard-delivery': randomUUID() }, sign: sink.key !== undefined };
    }
  }

  async #drain(queue: SinkQueue): Promise<void> {
    try {
      while (queue.items.length > 0 && !this.#closed) {
        const delivery = queue.items[0]!;
        const delivered = await this.#deliver(queue.sink, delivery);
        queue.items.shift();
        this.#metrics.notifications.labels(queue.sink.name, delivery.event, delivered ? 'delivered' : 'failed').inc();
      }
    } finally {
      queue.running = null;
    }
  }

  /** One delivery with retries: 2xx delivers; 4xx other than 429 fails at once; 429, 5xx and transport errors retry. */
  async #deliver(sink: NotifySink, delivery: Delivery): Promise<boolean> {
    const { attempts, baseDelayMs, maxDelayMs, timeoutMs } = this.#config.retry;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      let retryAfterMs: number | null = null;
      try {
        const headers = { ...delivery.headers };
        if (delivery.sign && sink.key !== undefined) {
          const timestamp = String(Math.floor(Date.now() / 1000));
          headers[TIMESTAMP_HEADER] = timestamp;
          headers[SIGNATURE_HEADER] = signature(sink.key, timestamp, delivery.body);
        }
        const res = await request(sink.url, { method: 'POST', body: delivery.body, headers, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
        await res.body.dump();
        if (res.statusCode >= 200 && res.statusCode < 300) return true;
        if (res.statusCode !== 429 && res.statusCode >= 300 && res.statusCode < 500) {
          this.#logger?.warn({ sink: sink.name, status: res.statusCode, event: delivery.event }, 'notification refused by the receiver (not retried: fix the sink\'s URL, headers or secret)');
          return false;
        }
        const retryAfter = Number(res.headers['retry-after']);
        if (res.statusCode === 429 && Number.isFinite(retryAfter) && retryAfter >= 0) retryAfterMs = Math.min(retryAfter * 1000, maxDelayMs);
        this.#logger?.warn({ sink: sink.name, status: res.statusCode, attempt, event: delivery.event }, 'notification not accepted; retrying');
      } catch (err) {
        this.#logger?.warn({ sink: sink.name, attempt, code: (err as { code?: string }).code, event: delivery.event }, 'notification failed; retrying');
      }
      if (attempt < attempts && !this.#closed) await this.#sleep(retryAfterMs ?? retryDelayMs(attempt, baseDelayMs, maxDelayMs));
      if (this.#closed) return false;
    }
    this.#logger?.error({ sink: sink.name, attempts, event: delivery.event }, 'notification failed after every attempt');
    return false;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const entry = { timer: setTimeout(() => {
        this.#timers.delete(entry);
        resolve();
      }, ms), resolve };
      entry.timer.unref();
      this.#timers.add(entry);
    });
  }

  /** Resolves once every queued delivery has finished (tests). */
  async settle(): Promise<void> {
    while (this.#queues.some((q) => q.running !== null)) await Promise.all(this.#queues.map((q) => q.running));
  }

  /** Stops following; waits up to `waitMs` for queued deliveries, then abandons the rest (their retries are cut short). */
  async close(waitMs = 2_000): Promise<void> {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.settle(), new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs).unref()))]);
    clearTimeout(timer);
    this.#closed = true;
    for (const entry of this.#timers) {
      clearTimeout(entry.timer);
      entry.resolve();
    }
    this.#timers.clear();
  }
}

/** The JSON body of json sinks and the `data` of CloudEvents: the audit event, named by its notified type. */
function payloadOf(type: NotifyEvent, event: AuditEvent, instance: string): Record<string, unknown> {
  return { type, id: event.id, route: event.route, who: event.who, at: event.at, instance, action: event.action, before: event.before, after: event.after, detail: event.detail ?? null };
}

interface VerdictLike { name?: string; state?: string; reason?: string }
interface ArmLike { name?: string; role?: string; requests?: number; errorRate?: number | null; medianLatencyMs?: number | null }

function percent(value: number | null | undefined): string {
  return value === null || value === undefined ? 'n/a' : `${(value * 100).toFixed(2)} %`;
}

/** A short, readable Slack message (mrkdwn) with the evidence: guardrail verdicts and per-arm counts. */
export function slackText(type: NotifyEvent, event: AuditEvent): string {
  const detail = (event.detail ?? {}) as Record<string, unknown>;
  const route = `\`${event.route}\``;
  const lines: string[] = [];
  switch (type) {
    case 'rollback':
      lines.push(`:rotating_light: *Rollback* of route ${route}: all traffic is back on the champion (reason: *${String(detail.reason ?? 'unknown')}*, by ${event.who}).`);
      break;
    case 'promote':
      lines.push(`:white_check_mark: *Promoted* on route ${route}: challenger ${String(detail.challenger ?? '')} now takes 100 % (by ${event.who}).`);
      break;
    case 'step':
      lines.push(`:arrow_forward: *Rollout step* on route ${route}: challenger ${String(detail.challenger ?? '')} at ${String(detail.percent ?? '?')} %${detail.step !== undefined ? ` (step ${String(detail.step)})` : ''}, by ${event.who}.`);
      break;
    case 'approval.needed':
      lines.push(`:raising_hand: *Approval needed* on route ${route}${detail.step !== undefined ? ` before step ${String(detail.step)}` : ''}${detail.percent !== undefined ? ` (${String(detail.percent)} %)` : ''}: run \`switchyard approve ${event.route}\`.`);
      break;
    case 'breach':
      lines.push(`:warning: *Guardrail breach* on route ${route}: ${String(detail.guardrail ?? '')}${detail.reason !== undefined ? ` (${String(detail.reason)})` : ''}.`);
      break;
    case 'drift':
      lines.push(`:chart_with_upwards_trend: *Drift* on route ${route}: ${String(detail.reason ?? `${String(detail.feature ?? '')} of ${String(detail.variant ?? '')}`)}.`);
      break;
    case 'flag.stale':
      lines.push(`:hourglass: *Flags stale* for route ${route}: Unleash has not confirmed the flag for ${String(detail.ageSeconds ?? '?')} s; the route keeps its last split.`);
      break;
  }
  const evidence = Array.isArray(detail.evidence) ? (detail.evidence as VerdictLike[]) : [];
  for (const v of evidence.filter((e) => e.state === 'breach').slice(0, 5)) lines.push(`• ${String(v.name)}: *breach*: ${String(v.reason ?? '')}`);
  const arms = Array.isArray(detail.arms) ? (detail.arms as ArmLike[]) : [];
  for (const arm of arms.slice(0, 6)) {
    lines.push(`• ${String(arm.name)} (${String(arm.role)}): ${String(arm.requests ?? 0)} requests, errors ${percent(arm.errorRate)}${typeof arm.medianLatencyMs === 'number' ? `, median ${arm.medianLatencyMs.toFixed(1)} ms` : ''}`);
  }
  lines.push(`_${event.at} · event ${event.id}_`);
  return lines.join('\n');
}
