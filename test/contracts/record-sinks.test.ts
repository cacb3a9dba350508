// Every RecordSink runs the same contract: NDJSON files, stdout, JetStream (the machine's NATS), CloudEvents (a real receiver), and the sink that keeps nothing.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { CloudEventsSink } from '../../src/record/sinks/cloudevents.js';
import { JetStreamSink } from '../../src/record/sinks/jetstream.js';
import { NdjsonSink } from '../../src/record/sinks/ndjson.js';
import { nopSink } from '../../src/record/sinks/sink.js';
import { createStdoutSink } from '../../src/record/sinks/stdout.js';
import { describeRecordSink } from './record-sink.js';

const lines = (text: string): object[] => text.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as object);

describeRecordSink('ndjson', async (metrics) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'swy-sink-contract-'));
  const sink = new NdjsonSink(metrics, { dir });
  const kept = async () => {
    const out: object[] = [];
    for (const file of (await readdir(dir)).sort()) {
      const raw = await readFile(path.join(dir, file));
      out.push(...lines((file.endsWith('.gz') ? gunzipSync(raw) : raw).toString()));
    }
    return out;
  };
  return { sink, kept, cleanup: () => rm(dir, { recursive: true, force: true }) };
});

describeRecordSink('stdout', async (metrics) => {
  // The sink's own stream parameter: a real stream whose bytes the test reads back instead of the process' stdout.
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  return { sink: createStdoutSink(metrics, 8 * 1024 * 1024, stream), kept: async () => lines(Buffer.concat(chunks).toString()) };
});

describeRecordSink('none', async () => ({ sink: nopSink, kept: async () => null }));

describeRecordSink('jetstream', async (metrics) => {
  const id = randomBytes(4).toString('hex');
  const stream = `SWY_CONTRACT_${id}`;
  const servers = 'nats://127.0.0.1:4222';
  const sink = new JetStreamSink(metrics, { servers, stream, subject: `swycontract${id}.records.r1`, createStream: true, sourceId: `r1-${id}`, maxQueueBytes: 8 * 1024 * 1024 });
  await sink.ready();
  const nc = await connect({ servers });
  const jsm = await jetstreamManager(nc);
  const kept = async () => {
    const { state } = await jsm.streams.info(stream);
    const out: object[] = [];
    for (let seq = state.first_seq; state.messages > 0 && seq <= state.last_seq; seq++) {
      const message = await jsm.streams.getMessage(stream, { seq });
      // The sink adds where each record came from; the record itself is what the contract compares.
      for (const record of lines(message?.string() ?? '')) out.push(Object.fromEntries(Object.entries(record).filter(([key]) => key !== 'sink')));
    }
    return out;
  };
  return { sink, kept, cleanup: async () => {
    await jsm.streams.delete(stream).catch(() => false);
    await nc.close();
  } };
});

describeRecordSink('cloudevents', async (metrics) => {
  const events: { data: object }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      events.push(JSON.parse(Buffer.concat(chunks).toString()) as { data: object });
      res.writeHead(202).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
  // One request at a time, so arrival order is the order written (the contract checks order).
  const sink = new CloudEventsSink(metrics, { url, source: 'r1', concurrency: 1 }, 8 * 1024 * 1024);
  return { sink, kept: async () => events.map((event) => event.data), cleanup: () => new Promise<void>((resolve) => server.close(() => resolve())) };
});
