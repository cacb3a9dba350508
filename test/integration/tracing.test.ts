// OpenTelemetry traces through real sockets: spans exported over OTLP/HTTP to a real receiver, traceparent honoured and propagated.
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { upstreamCallStart } from '../../src/proxy/trace-channels.js';
import { routePolicy, startSwitchyard, type RunningSwitchyard } from '../helpers/switchyard.js';
import { behave, startUpstream, type Upstream } from '../helpers/upstream.js';

/** A span as OTLP/JSON encodes it (the fields the tests read). */
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: { stringValue?: string; intValue?: number | string; boolValue?: boolean } }[];
  status?: { code?: number };
}

/** A real OTLP/HTTP receiver on 127.0.0.1: keeps every span of every JSON export request it is sent. */
async function startReceiver(): Promise<{ url: string; spans: OtlpSpan[]; contentTypes: string[]; close(): Promise<void> }> {
  const spans: OtlpSpan[] = [];
  const contentTypes: string[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      contentTypes.push(String(req.headers['content-type']));
      if (req.url === '/v1/traces' && String(req.headers['content-type']).startsWith('application/json')) {
        const body = JSON.parse(Buffer.concat(chunks).toString()) as { resourceSpans: { scopeSpans: { spans: OtlpSpan[] }[] }[] };
        for (const rs of body.resourceSpans) for (const ss of rs.scopeSpans) spans.push(...ss.spans);
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, spans, contentTypes, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

const attr = (span: OtlpSpan, key: string) => {
  const value = span.attributes.find((a) => a.key === key)?.value;
  return value?.stringValue ?? (value?.intValue === undefined ? value?.boolValue : Number(value.intValue));
};

async function post(base: string, headers: Record<string, string> = {}) {
  const res = await request(`${base}/v1/models/iris:predict`, { method: 'POST', body: '{"instances":[[1,2,3,4]]}', headers: { 'content-type': 'application/json', ...headers } });
  await res.body.dump();
  return res;
}

const traceId = '0af7651916cd43dd8448eb211c80319c';
const callerSpan = 'b7ad6b7169203331';
const SPAN_KIND_CLIENT = 3;
const STATUS_ERROR = 2;

let champion: Upstream;
let challenger: Upstream;
let shadow: Upstream;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
const running: RunningSwitchyard[] = [];

beforeAll(async () => {
  champion = await startUpstream(behave.json('setosa'), { name: 'champion' });
  challenger = await startUpstream(behave.status(500), { name: 'challenger' });
  shadow = await startUpstream(behave.json('versicolor'), { name: 'shadow' });
  receiver = await startReceiver();
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((swy) => swy.close()));
  for (const upstream of [champion, challenger, shadow]) upstream.clear();
  receiver.spans.length = 0;
});
afterAll(async () => {
  await Promise.all([champion, challenger, shadow].map((u) => u?.close()));
  await receiver?.close();
});

/** A challenger that fails (500) and falls back to the champion, plus a shadow that mirrors every request. */
const policy = () => routePolicy(champion.url, [{ url: challenger.url, percent: 100, fallback: true }, { url: shadow.url, mode: 'shadow', percent: 100, name: 'iris-v3' }]);

describe('OpenTelemetry traces (SWITCHYARD_TRACING=otlp)', () => {
  it('exports a CLIENT span for the served call, the fallback and the mirror, children of the caller, each propagated upstream', async () => {
    const swy = await startSwitchyard(policy(), { tracing: { url: `${receiver.url}/v1/traces`, exportDelayMs: 20 } });
    running.push(swy);
    const res = await post(swy.dataUrl, { traceparent: `00-${traceId}-${callerSpan}-01`, 'x-request-id': 'traced-1' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-switchyard-variant']).toBe('iris-v1');
    await shadow.waitForRequests(1);
    await expect.poll(() => receiver.spans.length, { timeout: 10_000, interval: 20 }).toBe(3);
    expect(receiver.contentTypes.every((type) => type.startsWith('application/json'))).toBe(true);

    const byCall = new Map(receiver.spans.map((span) => [attr(span, 'switchyard.call'), span]));
    const served = byCall.get('served')!;
    const fallback = byCall.get('fallback')!;
    const mirror = byCall.get('mirror')!;
    for (const span of [served, fallback, mirror]) {
      expect(span.traceId).toBe(traceId);
      expect(span.parentSpanId).toBe(callerSpan);
      expect(span.kind).toBe(SPAN_KIND_CLIENT);
      expect(attr(span, 'switchyard.request_id')).toBe('traced-1');
      expect(attr(span, 'switchyard.route')).toBe('iris');
    }
    expect(new Set([served.spanId, fallback.spanId, mirror.spanId]).size).toBe(3);
    expect(served).toMatchObject({ name: 'served iris-v2', status: { code: STATUS_ERROR } });
    expect([attr(served, 'http.response.status_code'), attr(served, 'error.type'), attr(served, 'switchyard.fell_back')]).toEqual([500, 'status_5xx', true]);
    expect(fallback.name).toBe('fallback iris-v1');
    expect([attr(fallback, 'http.response.status_code'), attr(fallback, 'switchyard.fallback_from')]).toEqual([200, 'iris-v2']);
    expect(mirror.name).toBe('mirror iris-v3');
    expect(attr(mirror, 'url.full')).toBe(`${shadow.url}/v1/models/iris:predict`);

    // Each upstream saw its own call's span as parent, in the same trace; the caller's traceparent was replaced, not doubled.
    expect(challenger.requests[0]!.headers.traceparent).toBe(`00-${traceId}-${served.spanId}-01`);
    expect(champion.requests[0]!.headers.traceparent).toBe(`00-${traceId}-${fallback.spanId}-01`);
    expect(shadow.requests[0]!.headers.traceparent).toBe(`00-${traceId}-${mirror.spanId}-01`);
  });

  it('starts a trace for a caller that sent no traceparent', async () => {
    const swy = await startSwitchyard(routePolicy(champion.url), { tracing: { url: `${receiver.url}/v1/traces`, exportDelayMs: 20 } });
    running.push(swy);
    expect((await post(swy.dataUrl)).statusCode).toBe(200);
    await expect.poll(() => receiver.spans.length, { timeout: 10_000, interval: 20 }).toBe(1);
    const [span] = receiver.spans;
    expect(span!.parentSpanId ?? '').toBe('');
    expect(champion.requests[0]!.headers.traceparent).toBe(`00-${span!.traceId}-${span!.spanId}-01`);
  });

  it('without tracing nobody subscribes, and the caller\'s traceparent goes upstream untouched', async () => {
    const swy = await startSwitchyard(policy());
    running.push(swy);
    expect(upstreamCallStart.hasSubscribers).toBe(false);
    const traceparent = `00-${traceId}-${callerSpan}-01`;
    expect((await post(swy.dataUrl, { traceparent })).statusCode).toBe(200);
    await shadow.waitForRequests(1);
    expect([challenger.requests[0]!.headers.traceparent, champion.requests[0]!.headers.traceparent, shadow.requests[0]!.headers.traceparent]).toEqual([traceparent, traceparent, traceparent]);
  });
});
