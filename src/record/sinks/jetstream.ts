// NATS JetStream sink: records published in order per replica with a dedup id, acknowledged by the stream; bounded, drop-and-count, never blocking serving.
import { jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Metrics } from '../../metrics/registry.js';
import { dropCounter, type RecordSink } from './sink.js';

/** Settings of the JetStream sink (SWITCHYARD_NATS_* variables; README, "Prediction log sinks"). */
export interface JetStreamSinkOptions {
  /** NATS server URLs, comma separated (nats://host:port). */
  servers: string;
  /** The stream that stores the records. */
  stream: string;
  /** The subject this replica publishes on; one subject per replica keeps each replica's records in order. */
  subject: string;
  /** Create the stream (subjects `<prefix>.>`, file storage) when it does not exist yet. */
  createStream: boolean;
  /** Prefix of the records' dedup ids: unique per process, so a restart never reuses one. */
  sourceId: string;
  /** Bytes of records queued or awaiting an acknowledgement (the sink budget, budgets.ts). */
  maxQueueBytes: number;
  /** Publishes awaiting an acknowledgement at once (default 256). */
  maxInFlight?: number;
  /** How long a publish waits for its acknowledgement before it is sent again (default 5,000 ms). */
  ackTimeoutMs?: number;
  /** Attempts per message before its records are dropped as `publish_failed` (default 5). */
  attempts?: number;
  /** Records are packed into one message (NDJSON lines) up to this many bytes (default 64 KiB; 0: one per message). */
  maxBatchBytes?: number;
  /** How long a message waits for more records before it is sent (default 10 ms). */
  lingerMs?: number;
  /** What `close` waits for queued records before counting them as `shutdown` drops (default 5,000 ms). */
  closeTimeoutMs?: number;
}

interface Queued {
  data: Uint8Array;
  msgId: string;
  records: number;
  attempts: number;
}

/** The subject token a replica id becomes: NATS subject tokens hold no dots, wildcards or whitespace. */
export function subjectToken(id: string): string {
  const token = id.replace(/[^A-Za-z0-9_-]/g, '_');
  return token === '' ? '_' : token;
}

/**
 * Publishes records as JetStream messages of NDJSON lines (one record per line, several per message: one publish and
 * one acknowledgement per message is what makes the sink cost a few µs per record instead of tens; bench/README.md,
 * Sinks). Each message has a `Nats-Msg-Id` of `<sourceId>-<seq of its first record>`: a message sent again after a
 * lost acknowledgement is stored once (within the stream's duplicate window), so delivery is at least once into the
 * sink and exactly once in the stream. Messages leave in the order their records were written; one sent again after a
 * timeout keeps its place at the queue's front, and every record carries `sink.seq` so consumers can restore the order
 * across retries.
 *
 * Bounds: queued and unacknowledged bytes together stay under `maxQueueBytes`; beyond it a record is dropped and
 * counted (`unavailable` while the server cannot be reached, `memory_budget` otherwise). While NATS is down nothing is
 * published (the client's own reconnect buffer is not used), so what a replica loses in an outage is what exceeds
 * its budget, counted.
 */
export class JetStreamSink implements RecordSink {
  readonly name = 'jetstream';
  readonly #options: Required<JetStreamSinkOptions>;
  readonly #counts;
  readonly #queue: Queued[] = [];
  #queueBytes = 0;
  #inFlight = 0;
  #inFlightBytes = 0;
  #inFlightRecords = 0;
  #seq = 0;
  /** Lines of the message being filled, and their bytes. */
  #batch: string[] = [];
  #batchBytes = 0;
  #batchFirstSeq = 0;
  #lingerTimer: NodeJS.Timeout | null = null;
  readonly #encoder = new TextEncoder();
  #nc: NatsConnection | null = null;
  #js: JetStreamClient | null = null;
  #connected = false;
  #closing = false;
  #idleWaiters: (() => void)[] = [];
  readonly #ready: Promise<void>;
  readonly #onError: (err: unknown) => void;

  constructor(metrics: Metrics, options: JetStreamSinkOptions, onError: (err: unknown) => void = () => undefined) {
    this.#options = { maxInFlight: 64, ackTimeoutMs: 5_000, attempts: 5, closeTimeoutMs: 5_000, maxBatchBytes: 65_536, lingerMs: 10, ...options };
    this.#counts = dropCounter(metrics, 'jetstream');
    this.#onError = onError;
    this.#ready = this.#connect();
  }

  get bufferedBytes(): number {
    return this.#batchBytes + this.#queueBytes + this.#inFlightBytes;
  }

  /** Resolves once the first connection is up and the stream exists (rejects never: failures are reported and retried by the client). */
  ready(): Promise<void> {
    return this.#ready;
  }

  write(record: object): boolean {
    if (this.#closing) {
      this.#counts.dropped('shutdown');
      return false;
    }
    const line = JSON.stringify({ ...record, sink: { source: this.#options.sourceId, seq: this.#seq + 1 } });
    const bytes = Buffer.byteLength(line) + 1;
    if (this.bufferedBytes + bytes > this.#options.maxQueueBytes) {
      this.#counts.dropped(this.#connected ? 'memory_budget' : 'unavailable');
      return false;
    }
    this.#seq++;
    if (this.#batch.length === 0) this.#batchFirstSeq = this.#seq;
    this.#batch.push(line);
    this.#batchBytes += bytes;
    if (this.#batchBytes >= this.#options.maxBatchBytes) this.#seal();
    else this.#lingerTimer ??= setTimeout(() => this.#seal(), this.#options.lingerMs);
    return true;
  }

  /** Closes the message being filled and queues it for publishing. */
  #seal(): void {
    if (this.#lingerTimer !== null) {
      clearTimeout(this.#lingerTimer);
      this.#lingerTimer = null;
    }
    if (this.#batch.length === 0) return;
    const data = this.#encoder.encode(`${this.#batch.join('\n')}\n`);
    this.#queue.push({ data, msgId: `${this.#options.sourceId}-${this.#batchFirstSeq}`, records: this.#batch.length, attempts: 0 });
    this.#queueBytes += data.byteLength;
    this.#batch = [];
    this.#batchBytes = 0;
    this.#pump();
  }

  /** Resolves when every record written so far was acknowledged or dropped (and counted). */
  flush(): Promise<void> {
    this.#seal();
    if (this.bufferedBytes === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Waits up to closeTimeoutMs for what is queued, counts the rest as `shutdown` drops, and closes the connection. */
  async close(): Promise<void> {
    this.#closing = true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.flush(), new Promise<void>((resolve) => (timer = setTimeout(resolve, this.#options.closeTimeoutMs)))]);
    clearTimeout(timer);
    const left = this.#queue.reduce((sum, item) => sum + item.records, 0) + this.#inFlightRecords;
    if (left > 0) this.#counts.dropped('shutdown', left);
    this.#queue.length = 0;
    this.#queueBytes = 0;
    const nc = this.#nc;
    this.#nc = null;
    this.#js = null;
    this.#connected = false;
    if (nc !== null) await nc.close().catch(() => undefined);
    this.#wakeIdle(true);
  }

  async #connect(): Promise<void> {
    try {
      // Reconnect for ever, and never buffer publishes inside the client while disconnected: our queue is the only
      // buffer, so it is the only thing the budget has to bound.
      const nc = await connect({ servers: this.#options.servers.split(',').map((s) => s.trim()), name: `switchyard-${this.#options.sourceId}`, maxReconnectAttempts: -1, reconnectTimeWait: 500, waitOnFirstConnect: true });
      if (this.#closing) {
        await nc.close();
        return;
      }
      this.#nc = nc;
      if (this.#options.createStream) await this.#ensureStream(nc);
      this.#js = jetstream(nc, { timeout: this.#options.ackTimeoutMs });
      this.#connected = true;
      void this.#watch(nc);
      this.#pump();
    } catch (err) {
      this.#onError(err);
    }
  }

  async #ensureStream(nc: NatsConnection): Promise<void> {
    const jsm = await jetstreamManager(nc);
    try {
      await jsm.streams.info(this.#options.stream);
    } catch {
      const prefix = this.#options.subject.split('.').slice(0, -1).join('.');
      await jsm.streams.add({ name: this.#options.stream, subjects: [prefix === '' ? this.#options.subject : `${prefix}.>`] });
    }
  }

  async #watch(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect') this.#connected = false;
      else if (status.type === 'reconnect') {
        this.#connected = true;
        this.#pump();
      }
    }
  }

  #pump(): void {
    const js = this.#js;
    if (js === null || !this.#connected) return;
    while (this.#inFlight < this.#options.maxInFlight && this.#queue.length > 0) {
      const item = this.#queue.shift()!;
      this.#queueBytes -= item.data.byteLength;
      this.#inFlight++;
      this.#inFlightBytes += item.data.byteLength;
      this.#inFlightRecords += item.records;
      item.attempts++;
      js.publish(this.#options.subject, item.data, { msgID: item.msgId, timeout: this.#options.ackTimeoutMs }).then(
        () => this.#settled(item, true),
        (err: unknown) => this.#settled(item, false, err),
      );
    }
  }

  #settled(item: Queued, acknowledged: boolean, err?: unknown): void {
    this.#inFlight--;
    this.#inFlightBytes -= item.data.byteLength;
    this.#inFlightRecords -= item.records;
    if (this.#nc === null) return; // closed: close() counted it
    if (acknowledged) this.#counts.written(item.records);
    else if (item.attempts >= this.#options.attempts || this.#closing) {
      this.#counts.dropped('publish_failed', item.records);
      this.#onError(err);
    } else {
      // Sent again with the same dedup id: stored once even if the first one did arrive.
      this.#queue.unshift(item);
      this.#queueBytes += item.data.byteLength;
    }
    this.#pump();
    if (this.bufferedBytes === 0) this.#wakeIdle(false);
  }

  #wakeIdle(all: boolean): void {
    if (!all && this.bufferedBytes !== 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const wake of waiters) wake();
  }
}
