// A sink that writes one JSON line per record to stdout (for log shippers); drops and counts when stdout backs up.
import type { Metrics } from '../../metrics/registry.js';
import { dropCounter, type RecordSink } from './sink.js';

/** Creates the stdout sink; `maxPendingBytes` (the sink budget) bounds what may wait in the stream buffer before records are dropped. */
export function createStdoutSink(metrics: Metrics, maxPendingBytes = 8 * 1024 * 1024, stream: NodeJS.WritableStream & { writableLength?: number } = process.stdout): RecordSink {
  const counts = dropCounter(metrics, 'stdout');
  return {
    name: 'stdout',
    get bufferedBytes() {
      return stream.writableLength ?? 0;
    },
    write(record) {
      if ((stream.writableLength ?? 0) > maxPendingBytes) {
        counts.dropped('memory_budget');
        return false;
      }
      stream.write(`${JSON.stringify(record)}\n`);
      counts.written(1);
      return true;
    },
    flush: async () => undefined,
    close: async () => undefined,
  };
}
