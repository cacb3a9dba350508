// Sizes the prediction-log sinks: records per second and CPU per record of the NDJSON and JetStream sinks on one thread, with typical pair records.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Metrics } from '../src/metrics/registry.js';
import { JetStreamSink } from '../src/record/sinks/jetstream.js';
import { NdjsonSink } from '../src/record/sinks/ndjson.js';
import type { RecordSink } from '../src/record/sinks/sink.js';
import { machine, numberFrom } from './lib/env.js';

/** A pair record as the recorder writes it for a JSON classifier with logged inputs (about 600 bytes). */
function pairRecord(i: number): object {
  return {
    type: 'pair', route: 'iris', requestId: `bench-${i}`, key: 'a3f1c9e0b2d4', at: new Date(1_765_000_000_000 + i).toISOString(), complete: true,
    input: { instances: [[5.1, 3.5, 1.4, 0.2]] },
    served: { variant: 'iris-v1', status: 200, latencyMs: 1.234, prediction: 'setosa', scores: [0.97, 0.02, 0.01], role: 'champion' },
    shadow: { variant: 'iris-v2', status: 200, latencyMs: 1.456, prediction: 'setosa', scores: [0.95, 0.04, 0.01] },
    agree: true, scoreDelta: -0.02,
  };
}

interface SinkRun {
  sink: string;
  records: number;
  seconds: number;
  recordsPerSecond: number;
  cpuMicrosPerRecord: number;
  bytesPerRecord: number;
  dropped: number;
}

/** Writes `records` records, never more than half the budget ahead of the sink, and times it to the last acknowledgement. */
async function drive(name: string, sink: RecordSink, records: number, budget: number, metrics: Metrics): Promise<SinkRun> {
  const bytesPerRecord = Buffer.byteLength(JSON.stringify(pairRecord(0))) + 1;
  const cpu = process.cpuUsage();
  const started = performance.now();
  for (let i = 0; i < records; i++) {
    if (sink.bufferedBytes > budget / 2) await sink.flush();
    sink.write(pairRecord(i));
  }
  await sink.flush();
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const dropped = (await metrics.recordsDropped.get()).values.filter((v) => v.labels.sink === name).reduce((sum, v) => sum + v.value, 0);
  return { sink: name, records, seconds, recordsPerSecond: records / seconds, cpuMicrosPerRecord: (used.user + used.system) / records, bytesPerRecord, dropped };
}

async function main(): Promise<void> {
  const records = numberFrom(process.env, 'SINKS_RECORDS', 100_000);
  const servers = process.env.SINKS_NATS_URL ?? 'nats://127.0.0.1:4222';
  const budget = 8 * 1_048_576;
  const runs: SinkRun[] = [];

  const dir = mkdtempSync(path.join(tmpdir(), 'swy-sinks-'));
  try {
    const metrics = new Metrics({ defaultMetrics: false });
    const ndjson = new NdjsonSink(metrics, { dir, maxQueueBytes: budget, gzip: false });
    runs.push(await drive('ndjson', ndjson, records, budget, metrics));
    await ndjson.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const stream = `SWY_BENCH_${Date.now().toString(36)}`;
  const metrics = new Metrics({ defaultMetrics: false });
  const sink = new JetStreamSink(metrics, { servers, stream, subject: `swybench.records.${stream}`, createStream: true, sourceId: stream, maxQueueBytes: budget });
  await sink.ready();
  try {
    runs.push(await drive('jetstream', sink, records, budget, metrics));
  } finally {
    await sink.close();
    const nc = await connect({ servers });
    await (await jetstreamManager(nc)).streams.delete(stream).catch(() => false);
    await nc.close();
  }

  const m = machine();
  console.log(`### Sinks (${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${m.nproc} CPUs ${m.cpuModel}, Node ${m.node}; ${records.toLocaleString('en-US')} pair records per sink, one thread, budget 8 MiB)\n`);
  console.log('| sink | records/s | CPU µs per record (this thread) | bytes per record | dropped |');
  console.log('|---|---|---|---|---|');
  for (const r of runs) console.log(`| ${r.sink} | ${Math.round(r.recordsPerSecond).toLocaleString('en-US')} | ${r.cpuMicrosPerRecord.toFixed(1)} | ${r.bytesPerRecord} | ${r.dropped} |`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
