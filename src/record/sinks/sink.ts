// The record sink plug point: a small interface, one file per implementation, and a factory.
import type { Metrics } from '../../metrics/registry.js';

/** Where the JetStream sink publishes (SWITCHYARD_NATS_*; README, "Prediction log sinks"). */
export interface NatsSinkSettings {
  servers: string;
  stream: string;
  subject: string;
  createStream: boolean;
  /** Unique per process: the prefix of every record's dedup id. */
  sourceId: string;
}

/** Receives prediction records. `write` returns at once: false means the record was dropped (and counted). */
export interface RecordSink {
  readonly name: string;
  /** Bytes of records accepted and not yet written (counted against the sink budget). */
  readonly bufferedBytes: number;
  write(record: object): boolean;
  /** Writes what is queued and fsyncs; resolves when it is on disk (or dropped and counted). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** Where the CloudEvents sink sends (SWITCHYARD_CLOUDEVENTS_*; README, "Leaving the box"). */
export interface CloudEventsSinkSettings {
  /** The receiver (http or https), e.g. a Knative broker's ingress. */
  url: string;
  /** This replica's source id: events are `/switchyard/<source>` with ids `<source>-<seq>`. */
  source: string;
  /** Events per request: 0 or 1 sends structured mode (one event per request), more sends batched mode. */
  batchSize?: number;
  /** Requests open at once (default 8). */
  concurrency?: number;
  /** Attempts per request on 5xx, 429 or transport errors (default 5). */
  attempts?: number;
  /** Timeout for the receiver's answer (default 10,000 ms). */
  timeoutMs?: number;
}

/** Counts drops for a sink; shared by implementations so every loss is visible in one metric. */
export function dropCounter(metrics: Metrics, sink: string) {
  const written = metrics.recordsWritten.labels(sink);
  const children = new Map<string, ReturnType<typeof metrics.recordsDropped.labels>>();
  return {
    dropped(reason: string, count = 1) {
      let child = children.get(reason);
      if (!child) {
        child = metrics.recordsDropped.labels(sink, reason);
        children.set(reason, child);
      }
      child.inc(count);
    },
    written(count: number) {
      written.inc(count);
    },
  };
}

/** A sink that keeps nothing (SWITCHYARD_PAIRS_SINK=none). */
export const nopSink: RecordSink = {
  name: 'none',
  bufferedBytes: 0,
  write: () => true,
  flush: async () => undefined,
  close: async () => undefined,
};
