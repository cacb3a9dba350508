// Reads every record of a JetStream stream (what the jetstream sink wrote), for the offline report.
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';

/** Where to read: servers, the stream, and optionally one subject (one replica's records). */
export interface JetStreamSource {
  servers: string;
  stream: string;
  subject?: string;
}

/**
 * Yields the records of the stream's messages from the first to the last one stored when reading began (records
 * appended later are left for the next run), each line parsed as JSON; a line that is not JSON is counted in `skipped`.
 * An ordered consumer: no durable state is left on the server, and a gap makes the client recreate it in place.
 */
export async function* readJetStreamRecords<T>(source: JetStreamSource, skipped: { lines: number }): AsyncGenerator<T> {
  const nc = await connect({ servers: source.servers.split(',').map((s) => s.trim()), name: 'switchyard-analyze', maxReconnectAttempts: 3 });
  try {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(source.stream, source.subject === undefined ? {} : { subjects_filter: source.subject });
    const last = info.state.last_seq;
    // Nothing to read (a consumer would wait for the next message): an empty stream, or no message on the subject.
    if (info.state.messages === 0 || (source.subject !== undefined && (info.state.subjects?.[source.subject] ?? 0) === 0)) return;
    const consumer = await jetstream(nc).consumers.get(source.stream, source.subject === undefined ? {} : { filter_subjects: [source.subject] });
    const messages = await consumer.consume({ max_messages: 512 });
    const decoder = new TextDecoder();
    for await (const message of messages) {
      // One message holds one or more records, one per line (jetstream.ts).
      for (const line of decoder.decode(message.data).split('\n')) {
        if (line === '') continue;
        try {
          yield JSON.parse(line) as T;
        } catch {
          skipped.lines++;
        }
      }
      if (message.seq >= last || message.info.pending === 0) break;
    }
  } finally {
    await nc.close();
  }
}
