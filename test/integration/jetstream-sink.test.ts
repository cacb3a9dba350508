// The JetStream sink against real NATS servers: every record of a run reaches the stream in order, once; a server stopped mid-run costs only counted drops.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../bench/lib/processes.js';
import { reportCommand } from '../../src/cli/report.js';
import type { NatsSinkSettings } from '../../src/record/sinks/sink.js';
import { metricsText, seriesValue } from '../helpers/metrics.js';
import { startSwitchyard } from '../helpers/switchyard.js';

const machineNats = 'nats://127.0.0.1:4222';
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A model that answers its own class for every input, padded to `padBytes` so records have a size the budget feels. */
async function startModel(name: string, padBytes = 0): Promise<{ url: string; close(): Promise<void> }> {
  const pad = 'x'.repeat(padBytes);
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    req.on('end', () => {
      const body = JSON.stringify({ prediction: `${name}${pad}` });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

function shadowPolicy(champion: string, shadow: string, kind: 'class' | 'text') {
  return {
    routes: [{
      name: 'iris',
      match: { pathPrefix: '/v1/models/iris', methods: ['POST'] },
      champion: { name: 'iris-v1', url: champion },
      challengers: [{ name: 'iris-v2', url: shadow, mode: 'shadow', percent: 100 }],
      predictions: { protocol: 'json', pointer: '/prediction', kind, maxResponseBytes: 512 * 1024 },
    }],
  };
}

function natsSettings(servers: string): NatsSinkSettings {
  const id = randomBytes(4).toString('hex');
  return { servers, stream: `SWY_TEST_${id}`, subject: `swytest${id}.records.replica-1`, createStream: true, sourceId: `replica-1-${id}` };
}

async function send(url: string, agent: Agent, from: number, count: number): Promise<void> {
  const statuses = await Promise.all(Array.from({ length: count }, async (_, i) => {
    const res = await request(`${url}/v1/models/iris:predict`, { dispatcher: agent, method: 'POST', body: JSON.stringify({ n: from + i }), headers: { 'content-type': 'application/json', 'x-request-id': `js-${from + i}` } });
    await res.body.dump();
    return res.statusCode;
  }));
  expect(new Set(statuses)).toEqual(new Set([200]));
}

interface StoredRecord {
  type: string;
  requestId: string;
  complete: boolean;
  sink: { source: string; seq: number };
}

/** Every record of the stream in stream order (a message holds one per line), with its message's dedup id. */
async function storedRecords(nc: NatsConnection, stream: string): Promise<{ record: StoredRecord; msgId: string | undefined; first: boolean }[]> {
  const jsm = await jetstreamManager(nc);
  const { state } = await jsm.streams.info(stream);
  const out: { record: StoredRecord; msgId: string | undefined; first: boolean }[] = [];
  for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
    const message = await jsm.streams.getMessage(stream, { seq });
    if (message === null) continue;
    const lines = message.string().split('\n').filter((line) => line !== '');
    lines.forEach((line, i) => out.push({ record: JSON.parse(line) as StoredRecord, msgId: message.header?.get('Nats-Msg-Id'), first: i === 0 }));
  }
  return out;
}

async function connectTo(servers: string): Promise<NatsConnection> {
  const nc = await connect({ servers });
  cleanups.push(() => nc.close());
  return nc;
}

describe('the jetstream sink on the machine\'s NATS', () => {
  it('delivers every record of a run to the stream, in order and once, and the offline report reads the stream', async () => {
    const champion = await startModel('setosa');
    const shadow = await startModel('versicolor');
    cleanups.push(() => champion.close(), () => shadow.close());
    const nats = natsSettings(machineNats);
    const nc = await connectTo(machineNats);
    cleanups.push(async () => (await jetstreamManager(nc)).streams.delete(nats.stream).catch(() => false));
    const swy = await startSwitchyard(shadowPolicy(champion.url, shadow.url, 'class'), { pairs: { sink: 'jetstream', nats } });
    cleanups.push(() => swy.close());
    const agent = new Agent({ connections: 16 });
    cleanups.push(() => agent.close());

    const requests = 300;
    await send(swy.dataUrl, agent, 0, requests);
    await expect.poll(async () => seriesValue(await metricsText(swy.adminUrl), 'switchyard_records_written_total{sink="jetstream"}'), { timeout: 15_000, interval: 100 }).toBe(requests);

    const stored = await storedRecords(nc, nats.stream);
    expect(stored).toHaveLength(requests);
    expect(new Set(stored.map((s) => s.record.requestId))).toEqual(new Set(Array.from({ length: requests }, (_, i) => `js-${i}`)));
    expect(stored.every((s) => s.record.type === 'pair' && s.record.complete)).toBe(true);
    // In the order written; each message's dedup id is the source and the sequence number of its first record.
    expect(stored.map((s) => s.record.sink.seq)).toEqual(Array.from({ length: requests }, (_, i) => i + 1));
    const firsts = stored.filter((s) => s.first);
    expect(firsts.map((s) => s.msgId)).toEqual(firsts.map((s) => `${nats.sourceId}-${s.record.sink.seq}`));
    const metrics = await metricsText(swy.adminUrl);
    const drops = metrics.split('\n').filter((line) => line.startsWith('switchyard_pairs_dropped_total{sink="jetstream"'));
    expect(drops.map((line) => Number(line.slice(line.lastIndexOf(' ') + 1))).reduce((a, b) => a + b, 0)).toBe(0);

    // `switchyard report` reads the same stream.
    const printed: string[] = [];
    const log = console.log;
    console.log = (line: string) => void printed.push(line);
    let code: number;
    try {
      code = await reportCommand(['--nats', machineNats, '--stream', nats.stream, '--json']);
    } finally {
      console.log = log;
    }
    expect(code).toBe(0);
    const report = JSON.parse(printed.join('\n')) as { source: { stream: string }; routes: { route: string; pairs: number; agreement: { agree: number; of: number } }[] };
    expect(report.source.stream).toBe(nats.stream);
    expect(report.routes).toMatchObject([{ route: 'iris', pairs: requests, agreement: { agree: 0, of: requests } }]);
  });

  it('the report names a stream it cannot read and exits 1', async () => {
    const printed: string[] = [];
    const error = console.error;
    console.error = (line: string) => void printed.push(line);
    try {
      expect(await reportCommand(['--nats', machineNats, '--stream', `SWY_TEST_MISSING_${randomBytes(4).toString('hex')}`])).toBe(1);
    } finally {
      console.error = error;
    }
    expect(printed.join('\n')).toMatch(/cannot read stream SWY_TEST_MISSING_/);
  });
});

describe('the jetstream sink when its NATS server stops mid-run', () => {
  /** A NATS server with JetStream of our own on a free port, so it can be stopped without touching the machine's. */
  async function startNatsServer(port: number, storeDir: string): Promise<ChildProcess> {
    const child = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr!.on('data', (chunk: Buffer) => (log += chunk.toString()));
    await expect.poll(() => log, { timeout: 10_000, interval: 20 }).toMatch(/Server is ready/);
    return child;
  }
  const stop = (child: ChildProcess) => new Promise<void>((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });

  it('keeps serving, counts every record it could not deliver, and delivers the rest once the server is back', async () => {
    const port = await freePort();
    const storeDir = await mkdtemp(path.join(tmpdir(), 'swy-nats-'));
    cleanups.push(() => rm(storeDir, { recursive: true, force: true }));
    let server = await startNatsServer(port, storeDir);
    cleanups.push(() => stop(server));
    const servers = `nats://127.0.0.1:${port}`;

    // 20 kB predictions from each model and a 256 MiB memory setting: the sink's budget (3.8 MiB) holds about 95
    // records of 40 kB, fewer than the outage produces.
    const champion = await startModel('setosa', 20_000);
    const shadow = await startModel('versicolor', 20_000);
    cleanups.push(() => champion.close(), () => shadow.close());
    const nats = natsSettings(servers);
    const swy = await startSwitchyard(shadowPolicy(champion.url, shadow.url, 'text'), { memoryMb: 256, pairs: { sink: 'jetstream', nats } });
    cleanups.push(() => swy.close());
    const agent = new Agent({ connections: 8 });
    cleanups.push(() => agent.close());
    const written = async () => seriesValue(await metricsText(swy.adminUrl), 'switchyard_records_written_total{sink="jetstream"}');
    // Every record not written is counted somewhere: by the sink (unavailable, memory_budget, publish_failed) or, when
    // the worker falls behind, by the recorder before the worker (sink recorder). The join table's and the pending
    // pairs' drops lose no record (a prediction forgotten for feedback; a pair written unpaired early).
    const dropped = async () => (await metricsText(swy.adminUrl)).split('\n')
      .filter((line) => /^switchyard_pairs_dropped_total\{sink="(jetstream|recorder)"/.test(line))
      .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);

    await send(swy.dataUrl, agent, 0, 50);
    await expect.poll(written, { timeout: 15_000, interval: 100 }).toBe(50);

    // The server goes away: serving goes on, and what the budget cannot hold is dropped and counted.
    await stop(server);
    await send(swy.dataUrl, agent, 50, 200);
    await expect.poll(async () => (await dropped()) > 0, { timeout: 15_000, interval: 100 }).toBe(true);

    // Back on the same port and store: the records the budget kept are delivered, and the totals add up.
    server = await startNatsServer(port, storeDir);
    // A publish lost with the connection waits for its 5 s acknowledgement timeout before it is sent again: allow for it.
    await expect.poll(async () => (await written()) + (await dropped()), { timeout: 60_000, interval: 200 }).toBe(250);
    expect(await written()).toBeGreaterThan(50);
    const nc = await connectTo(servers);
    const stored = await storedRecords(nc, nats.stream);
    expect(stored).toHaveLength(await written());
    // Each record at most once, whatever was sent again after the outage.
    expect(new Set(stored.map((s) => s.record.sink.seq)).size).toBe(stored.length);
  }, 120_000);
});
