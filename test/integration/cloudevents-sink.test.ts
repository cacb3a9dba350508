// The CloudEvents sink against a real HTTP receiver: structured and batched events with the record as data, retries on 5xx with the same ids, no retry on 400.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { metricsText, seriesValue } from '../helpers/metrics.js';
import { startSwitchyard } from '../helpers/switchyard.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Received {
  contentType: string;
  body: unknown;
}

/** A receiver that records every POST and answers with the next status of `script` (then 202). */
async function startReceiver(script: number[] = []): Promise<{ url: string; received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push({ contentType: req.headers['content-type'] ?? '', body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
      res.writeHead(script.shift() ?? 202).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/events`, received, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

async function startModel(prediction: string): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ prediction })));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

async function shadowRun(sink: { url: string; batchSize?: number }, requests: number) {
  const champion = await startModel('setosa');
  const shadow = await startModel('versicolor');
  cleanups.push(() => champion.close(), () => shadow.close());
  const policy = {
    routes: [{
      name: 'iris', match: { pathPrefix: '/v1/models/iris', methods: ['POST'] },
      champion: { name: 'iris-v1', url: champion.url },
      challengers: [{ name: 'iris-v2', url: shadow.url, mode: 'shadow', percent: 100 }],
      predictions: { protocol: 'json', pointer: '/prediction', kind: 'class' },
    }],
  };
  const swy = await startSwitchyard(policy, { pairs: { sink: 'cloudevents', cloudevents: { source: 'replica-1', ...sink } } });
  cleanups.push(() => swy.close());
  const agent = new Agent({ connections: 4 });
  cleanups.push(() => agent.close());
  for (let i = 0; i < requests; i++) {
    const res = await request(`${swy.dataUrl}/v1/models/iris:predict`, { dispatcher: agent, method: 'POST', body: '{"x":1}', headers: { 'x-request-id': `ce-${i}` } });
    await res.body.dump();
    expect(res.statusCode).toBe(200);
  }
  return swy;
}

const counter = async (adminUrl: string, series: string) => seriesValue(await metricsText(adminUrl), series);

describe('the cloudevents sink', () => {
  it('sends each record as a structured-mode CloudEvent with the record as data', async () => {
    const receiver = await startReceiver();
    cleanups.push(() => receiver.close());
    const swy = await shadowRun({ url: receiver.url }, 20);
    await expect.poll(() => counter(swy.adminUrl, 'switchyard_records_written_total{sink="cloudevents"}'), { timeout: 10_000, interval: 50 }).toBe(20);
    expect(receiver.received).toHaveLength(20);
    for (const r of receiver.received) expect(r.contentType).toBe('application/cloudevents+json; charset=utf-8');
    const events = receiver.received.map((r) => r.body as Record<string, unknown>);
    expect(events[0]).toMatchObject({ specversion: '1.0', id: 'replica-1-1', source: '/switchyard/replica-1', type: 'dev.switchyard.prediction.pair', subject: 'iris', datacontenttype: 'application/json', data: { type: 'pair', route: 'iris', requestId: 'ce-0' } });
    expect(new Set(events.map((e) => e.id)).size).toBe(20);
    expect(events.every((e) => typeof e.time === 'string' && !Number.isNaN(Date.parse(e.time as string)))).toBe(true);
  });

  it('sends batches in batched mode', async () => {
    const receiver = await startReceiver();
    cleanups.push(() => receiver.close());
    const swy = await shadowRun({ url: receiver.url, batchSize: 50 }, 30);
    await expect.poll(() => counter(swy.adminUrl, 'switchyard_records_written_total{sink="cloudevents"}'), { timeout: 10_000, interval: 50 }).toBe(30);
    expect(receiver.received.every((r) => r.contentType === 'application/cloudevents-batch+json; charset=utf-8')).toBe(true);
    const events = receiver.received.flatMap((r) => r.body as Record<string, unknown>[]);
    expect(events.map((e) => (e.data as { requestId: string }).requestId)).toEqual(Array.from({ length: 30 }, (_, i) => `ce-${i}`));
  });

  it('retries a 5xx with the same event, and drops a 400 at once, counted', async () => {
    // First request: 503 then 503 then accepted; second request: refused with 400 (not retried).
    const receiver = await startReceiver([503, 503, 202, 400]);
    cleanups.push(() => receiver.close());
    const swy = await shadowRun({ url: receiver.url }, 1);
    await expect.poll(() => counter(swy.adminUrl, 'switchyard_records_written_total{sink="cloudevents"}'), { timeout: 10_000, interval: 50 }).toBe(1);
    expect(receiver.received.map((r) => (r.body as { id: string }).id)).toEqual(['replica-1-1', 'replica-1-1', 'replica-1-1']);

    const agent = new Agent({ connections: 1 });
    cleanups.push(() => agent.close());
    const res = await request(`${swy.dataUrl}/v1/models/iris:predict`, { dispatcher: agent, method: 'POST', body: '{"x":2}' });
    await res.body.dump();
    await expect.poll(() => counter(swy.adminUrl, 'switchyard_pairs_dropped_total{sink="cloudevents",reason="rejected"}'), { timeout: 10_000, interval: 50 }).toBe(1);
    expect(receiver.received).toHaveLength(4);
  });

  it('refuses to start without its receiver, naming the setting', async () => {
    await expect(startSwitchyard({ routes: [{ name: 'r', match: { pathPrefix: '/r' }, champion: { name: 'a', url: 'http://127.0.0.1:9' } }] }, { pairs: { sink: 'cloudevents' } })).rejects.toThrow(/SWITCHYARD_CLOUDEVENTS_URL/);
  });
});
