// Every RecordSink runs the same contract: NDJSON files, stdout, and the sink that keeps nothing.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { gunzipSync } from 'node:zlib';
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
