// CloudEvents 1.0 over HTTP sink: each record POSTed as a structured-mode event (or batches in batched mode) to one URL; bounded, drop-and-count, retried on 5xx.
import { Pool } from 'undici';
import type { Metrics } from '../../metrics/registry.js';
import { dropCounter, type CloudEventsSinkSettings, type RecordSink } from './sink.js';

/** The event types records become: `dev.switchyard.prediction.<record type>` (pair, served, feedback). */
export const cloudEventTypePrefix = 'dev.switchyard.prediction.';

interface Pending {
  body: string;
  contentType: string;
  records: number;
  /** What it counts against the budget: its events' bytes. */
  bytes: number;
  attempts: number;
}

/** A record as a structured-mode CloudEvent (CloudEvents 1.0, JSON format): the record is `data`. */
export function toCloudEvent(record: { type?: unknown; route?: unknown; at?: unknown }, source: string, seq: number): Record<string, unknown> {
  return {
    specversion: '1.0',
    id: `${source}-${seq}`,
    source: `/switchyard/${source}`,
    type: `${cloudEventTypePrefix}${typeof record.type === 'string' ? record.type : 'record'}`,
    ...(typeof record.route === 'string' ? { subject: record.route } : {}),
    time: typeof record.at === 'string' ? record.at : new Date().toISOString(),
    datacontenttype: 'application/json',
    data: record,
  };
}

/**
 * Sends records to an HTTP endpoint as CloudEvents (the JSON event format Knative brokers and Kafka bridges accept).
 * Structured mode sends one event per request (`application/cloudevents+json`); batched mode up to `batchSize` events
 * per request (`application/cloudevents-batch+json`), which costs the receiver far fewer requests. Events leave in
 * order with up to `concurrency` requests open. A 5xx, 429 or transport error is retried (doubling from 200 ms, with
 * jitter, `attempts` in all) with the same event ids, so a receiver can drop duplicates; any other status drops the
 * events as `rejected`. Bytes waiting or in flight stay under `maxQueueBytes`; beyond it records are dropped and counted.
 */
export class CloudEventsSink implements RecordSink {
  readonly name = 'cloudevents';
  readonly #settings: Required<CloudEventsSinkSettings>;
  readonly #maxQueueBytes: number;
  readonly #counts;
  readonly #pool: Pool;
  readonly #path: string;
  readonly #queue: Pending[] = [];
  #batch: string[] = [];
  #batchBytes = 0;
  #queuedBytes = 0;
  #inFlight = 0;
  #seq = 0;
  #lingerTimer: NodeJS.Timeout | null = null;
  #closed = false;
  #idleWaiters: (() => void)[] = [];
  readonly #retryTimers = new Set<NodeJS.Timeout>();

  constructor(metrics: Metrics, settings: CloudEventsSinkSettings, maxQueueBytes: number) {
    this.#settings = { concurrency: 8, batchSize: 0, attempts: 5, timeoutMs: 10_000, ...settings };
    this.#maxQueueBytes = maxQueueBytes;
    this.#counts = dropCounter(metrics, 'cloudevents');
    const url = new URL(settings.url);
    this.#path = `${url.pathname}${url.search}`;
    this.#pool = new Pool(url.origin, { connections: this.#settings.concurrency, headersTimeout: this.#settings.timeoutMs, bodyTimeout: this.#settings.timeoutMs });
  }

  get bufferedBytes(): number {
    return this.#queuedBytes + this.#batchBytes;
  }

  write(record: object): boolean {
    if (this.#closed) {
      this.#counts.dropped('shutdown');
      return false;
    }
    const event = JSON.stringify(toCloudEvent(record as { type?: unknown }, this.#settings.source, this.#seq + 1));
    const bytes = Buffer.byteLength(event);
    if (this.bufferedBytes + bytes > this.#maxQueueBytes) {
      this.#counts.dropped('memory_budget');
      return false;
    }
    this.#seq++;
    if (this.#settings.batchSize <= 1) {
      this.#enqueue({ body: event, contentType: 'application/cloudevents+json; charset=utf-8', records: 1, bytes, attempts: 0 });
      return true;
    }
    this.#batch.push(event);
    this.#batchBytes += bytes;
    if (this.#batch.length >= this.#settings.batchSize) this.#seal();
    else this.#lingerTimer ??= setTimeout(() => this.#seal(), 10);
    return true;
  }

  flush(): Promise<void> {
    this.#seal();
    if (this.bufferedBytes === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Sends what is waiting (bounded by the retries' own limits), then closes the connections. */
  async close(): Promise<void> {
    await this.flush();
    this.#closed = true;
    for (const timer of this.#retryTimers) clearTimeout(timer);
    await this.#pool.close();
  }

  #seal(): void {
    if (this.#lingerTimer !== null) {
      clearTimeout(this.#lingerTimer);
      this.#lingerTimer = null;
    }
    if (this.#batch.length === 0) return;
    const body = `[${this.#batch.join(',')}]`;
    const records = this.#batch.length;
    this.#batch = [];
    const bytes = this.#batchBytes;
    this.#batchBytes = 0;
    this.#enqueue({ body, contentType: 'application/cloudevents-batch+json; charset=utf-8', records, bytes, attempts: 0 });
  }

  #enqueue(item: Pending): void {
    this.#queue.push(item);
    this.#queuedBytes += item.bytes;
    this.#pump();
  }

  #pump(): void {
    while (this.#inFlight < this.#settings.concurrency && this.#queue.length > 0) {
      const item = this.#queue.shift()!;
      this.#inFlight++;
      item.attempts++;
      this.#pool.request({ path: this.#path, method: 'POST', headers: { 'content-type': item.contentType }, body: item.body }).then(
        async (res) => {
          await res.body.dump();
          this.#settled(item, res.statusCode);
        },
        () => this.#settled(item, 0),
      );
    }
  }

  #settled(item: Pending, status: number): void {
    this.#inFlight--;
    if (status >= 200 && status < 300) {
      this.#counts.written(item.records);
      this.#release(item.bytes);
    } else if ((status === 0 || status === 429 || status >= 500) && item.attempts < this.#settings.attempts && !this.#closed) {
      // Sent again later with the same ids; it keeps its bytes in the budget meanwhile.
      const delay = 200 * 2 ** (item.attempts - 1) * (0.5 + Math.random());
      const timer = setTimeout(() => {
        this.#retryTimers.delete(timer);
        this.#queue.unshift(item);
        this.#pump();
      }, delay);
      this.#retryTimers.add(timer);
    } else {
      this.#counts.dropped(status === 0 || status === 429 || status >= 500 ? 'publish_failed' : 'rejected', item.records);
      this.#release(item.bytes);
    }
    this.#pump();
  }

  #release(bytes: number): void {
    this.#queuedBytes -= bytes;
    if (this.#queue.length === 0 && this.#inFlight === 0 && this.#retryTimers.size === 0 && this.#batch.length === 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const wake of waiters) wake();
    }
  }
}
