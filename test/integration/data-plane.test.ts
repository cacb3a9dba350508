// The data path through real sockets: forwarding, headers, streaming both ways, error mapping, limits, fallback.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { behave, startUpstream, type Upstream } from '../helpers/upstream.js';
import { routePolicy, startSwitchyard, type RunningSwitchyard } from '../helpers/switchyard.js';

const json = { 'content-type': 'application/json' };
const predictBody = '{"instances":[[6.1,2.8,4.7,1.2]]}';

async function post(base: string, path = '/v1/models/iris:predict', headers: Record<string, string> = {}, body: string | Readable = predictBody) {
  const res = await request(`${base}${path}`, { method: 'POST', body, headers: { ...json, ...headers } });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) as Record<string, unknown> };
}

/** Sends raw HTTP/1.1 bytes (for requests a well-behaved client library refuses to send) and returns the response head line. */
async function rawExchange(base: string, text: string): Promise<string> {
  const { hostname, port } = new URL(base);
  const socket = connect(Number(port), hostname);
  await once(socket, 'connect');
  // write, not end: a half-closed client gets no answer from node:http; Connection: close ends the exchange.
  socket.write(text);
  const chunks: Buffer[] = [];
  for await (const chunk of socket) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

describe('forwarding and headers', () => {
  let champion: Upstream;
  let swy: RunningSwitchyard;
  beforeAll(async () => {
    champion = await startUpstream(behave.json('setosa'), { name: 'champion' });
    swy = await startSwitchyard(routePolicy(champion.url));
  });
  afterAll(async () => {
    await swy.close();
    await champion.close();
  });
  afterEach(() => champion.clear());

  it('forwards method, path, query and body unchanged and tags the response with variant and request id', async () => {
    const res = await post(swy.dataUrl, '/v1/models/iris:predict?explain=1');
    expect(res.status).toBe(200);
    expect(res.headers['x-switchyard-variant']).toBe('iris-v1');
    expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    const seen = champion.requests[0]!;
    expect(seen.method).toBe('POST');
    expect(seen.url).toBe('/v1/models/iris:predict?explain=1');
    expect(seen.body.toString()).toBe(predictBody);
    expect(seen.headers['x-request-id']).toBe(res.headers['x-request-id']);
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
  });

  it('propagates a client request id and generates a new one when the given id is unsafe', async () => {
    const given = await post(swy.dataUrl, undefined, { 'x-request-id': 'client-abc-123' });
    expect(given.headers['x-request-id']).toBe('client-abc-123');
    expect(champion.requests[0]!.headers['x-request-id']).toBe('client-abc-123');
    const unsafe = await post(swy.dataUrl, undefined, { 'x-request-id': 'x'.repeat(300) });
    expect(unsafe.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('strips hop-by-hop request headers, including fields named by Connection (RFC 9110 7.6.1)', async () => {
    const response = await rawExchange(swy.dataUrl, `POST /v1/models/iris:predict HTTP/1.1\r\nHost: x\r\nConnection: close, x-hop-secret\r\nX-Hop-Secret: nope\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nX-Model-Hint: kept\r\nContent-Length: 2\r\n\r\n{}`);
    expect(response.startsWith('HTTP/1.1 200')).toBe(true);
    const headers = champion.requests[0]!.headers;
    expect(headers['x-hop-secret']).toBeUndefined();
    expect(headers['te']).toBeUndefined();
    expect(headers['keep-alive']).toBeUndefined();
    expect(headers['x-model-hint']).toBe('kept');
  });

  it('answers 404 JSON for a path no route matches and forwards nothing (no open proxy)', async () => {
    const res = await post(swy.dataUrl, '/admin/secrets');
    expect(res.status).toBe(404);
    expect(res.json()).toMatchObject({ error: { code: 'SWY_ERR_NO_ROUTE' } });
    // Dot segments would let an upstream resolve the path outside the route's prefix.
    const dotted = await rawExchange(swy.dataUrl, 'POST /v1/models/iris/../../admin HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    expect(dotted).toMatch(/^HTTP\/1.1 400[\s\S]*SWY_ERR_BAD_REQUEST/);
    const encoded = await rawExchange(swy.dataUrl, 'POST /v1/models/iris/%2e%2E/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    expect(encoded).toMatch(/^HTTP\/1.1 400/);
    const absoluteForm = await rawExchange(swy.dataUrl, 'GET http://evil.example/ HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n');
    expect(absoluteForm).toMatch(/^HTTP\/1.1 400/);
    expect(champion.count).toBe(0);
  });

  it('answers 405 with Allow for a method the route does not accept', async () => {
    const res = await request(`${swy.dataUrl}/v1/models/iris:predict`, { method: 'DELETE' });
    expect(res.statusCode).toBe(405);
    expect(res.headers['allow']).toBe('POST, GET');
    expect(await res.body.json()).toMatchObject({ error: { code: 'SWY_ERR_METHOD_NOT_ALLOWED' } });
  });
});

describe('body limits', () => {
  let champion: Upstream;
  let swy: RunningSwitchyard;
  beforeAll(async () => {
    champion = await startUpstream(behave.json('ok'));
    swy = await startSwitchyard(routePolicy(champion.url, [], { bodyLimitBytes: 1000 }));
  });
  afterAll(async () => {
    await swy.close();
    await champion.close();
  });

  it('refuses a body whose Content-Length exceeds the limit with 413 before contacting the upstream', async () => {
    const res = await post(swy.dataUrl, undefined, {}, 'x'.repeat(1001));
    expect(res.status).toBe(413);
    expect(res.json()).toMatchObject({ error: { code: 'SWY_ERR_BODY_TOO_LARGE' } });
    expect(champion.count).toBe(0);
  });

  it('refuses a chunked body that grows past the limit with 413', async () => {
    const body = Readable.from([Buffer.alloc(600, 'a'), Buffer.alloc(600, 'b')]);
    const res = await post(swy.dataUrl, undefined, {}, body);
    expect(res.status).toBe(413);
    expect(res.json()).toMatchObject({ error: { code: 'SWY_ERR_BODY_TOO_LARGE' } });
  });

  it('accepts a body exactly at the limit', async () => {
    const res = await post(swy.dataUrl, undefined, {}, 'x'.repeat(1000));
    expect(res.status).toBe(200);
  });
});

describe('streaming in both directions', () => {
  let server: Server;
  let origin: string;
  let releaseSecondEvent: () => void = () => undefined;
  let firstUploadChunk: Promise<void>;
  let swy: RunningSwitchyard;

  beforeAll(async () => {
    let onFirstChunk: () => void = () => undefined;
    firstUploadChunk = new Promise((resolve) => (onFirstChunk = resolve));
    server = createServer((req, res) => {
      if (req.url?.endsWith(':stream')) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('data: first\n\n');
        releaseSecondEvent = () => res.end('data: second\n\n');
        return;
      }
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        onFirstChunk();
      });
      req.on('end', () => res.end(JSON.stringify({ received: Buffer.concat(chunks).toString() })));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    swy = await startSwitchyard(routePolicy(origin));
  });
  afterAll(async () => {
    await swy.close();
    server.closeAllConnections();
    server.close();
  });

  it('delivers server-sent events as they come, before the upstream finishes the response', async () => {
    const res = await request(`${swy.dataUrl}/v1/models/iris:stream`, { method: 'POST', body: '{}' });
    expect(res.headers['content-type']).toBe('text/event-stream');
    const received: string[] = [];
    for await (const chunk of res.body) {
      received.push(String(chunk));
      // The upstream only sends the second event once the first one has reached the client through the proxy;
      // a buffering proxy would deadlock here and the test would time out.
      if (received.length === 1) releaseSecondEvent();
    }
    expect(received.join('')).toBe('data: first\n\ndata: second\n\n');
  });

  it('streams a chunked upload to the upstream while the client is still sending', async () => {
    let sendRest: () => void = () => undefined;
    const rest = new Promise<void>((resolve) => (sendRest = resolve));
    async function* upload() {
      yield Buffer.from('{"part":1,');
      await rest;
      yield Buffer.from('"part2":2}');
    }
    const pending = request(`${swy.dataUrl}/v1/models/iris:predict`, { method: 'POST', body: Readable.from(upload()) });
    // The second half is only sent after the upstream saw the first: proof the proxy does not buffer uploads.
    await firstUploadChunk;
    sendRest();
    const res = await pending;
    expect(await res.body.json()).toEqual({ received: '{"part":1,"part2":2}' });
  });
});

describe('upstream failures map to stable errors', () => {
  let champion: Upstream;
  let swy: RunningSwitchyard;
  beforeAll(async () => {
    champion = await startUpstream(behave.json('ok'));
    swy = await startSwitchyard(routePolicy(champion.url, [], { timeouts: { connectMs: 500, requestMs: 300 } }));
  });
  afterAll(async () => {
    await swy.close();
    await champion.close();
  });

  it('maps an upstream that never answers to 504 SWY_ERR_UPSTREAM_TIMEOUT', async () => {
    champion.setBehaviour(behave.hang());
    const res = await post(swy.dataUrl);
    expect(res.status).toBe(504);
    expect(res.json()).toMatchObject({ error: { code: 'SWY_ERR_UPSTREAM_TIMEOUT' } });
    expect(res.headers['x-switchyard-variant']).toBe('iris-v1');
  });

  it('maps a connection reset before any response byte to 502 SWY_ERR_UPSTREAM_RESET', async () => {
    champion.setBehaviour(behave.reset());
    const res = await post(swy.dataUrl);
    expect(res.status).toBe(502);
    expect(res.json()).toMatchObject({ error: { code: 'SWY_ERR_UPSTREAM_RESET' } });
  });

  it('passes upstream statuses (including 5xx) through unchanged', async () => {
    champion.setBehaviour(behave.status(503, { error: 'model loading' }));
    const res = await post(swy.dataUrl);
    expect(res.status).toBe(503);
    expect(res.json()).toEqual({ error: 'model loading' });
  });

  it('maps a refused connection to 502 SWY_ERR_UPSTREAM_CONNECT', async () => {
    const dead = await startUpstream();
    const deadUrl = dead.url;
    await dead.close();
    const other = await startSwitchyard(routePolicy(deadUrl));
    try {
      const res = await post(other.dataUrl);
      expect(res.status).toBe(502);
      expect(res.json()).toMatchObject({ error: { code: 'SWY_ERR_UPSTREAM_CONNECT' } });
    } finally {
      await other.close();
    }
  });
});

describe('challenger fallback (intent-to-treat)', () => {
  let champion: Upstream;
  let challenger: Upstream;
  let swy: RunningSwitchyard;
  beforeAll(async () => {
    champion = await startUpstream(behave.json('from-champion'), { name: 'champion' });
    challenger = await startUpstream(behave.status(500), { name: 'challenger' });
    swy = await startSwitchyard(routePolicy(champion.url, [{ url: challenger.url, percent: 100, fallback: true }], { timeouts: { connectMs: 500, requestMs: 300 } }));
  });
  afterAll(async () => {
    await swy.close();
    await champion.close();
    await challenger.close();
  });

  it('answers with the champion when the challenger returns 5xx, and counts the failure against the challenger', async () => {
    const res = await post(swy.dataUrl);
    expect(res.status).toBe(200);
    expect(res.json()).toMatchObject({ prediction: 'from-champion', body: predictBody });
    expect(res.headers['x-switchyard-variant']).toBe('iris-v1');
    expect(res.headers['x-switchyard-fallback-from']).toBe('iris-v2');
    expect(challenger.count).toBe(1);
    const metrics = await (await request(`${swy.adminUrl}/metrics`)).body.text();
    expect(metrics).toContain('switchyard_requests_total{route="iris",variant="iris-v2",role="challenger",code_class="5xx"} 1');
    expect(metrics).toContain('switchyard_requests_total{route="iris",variant="iris-v1",role="fallback",code_class="2xx"} 1');
    expect(metrics).toContain('switchyard_upstream_errors_total{route="iris",variant="iris-v2",kind="status_5xx"} 1');
    expect(metrics).toContain('switchyard_fallbacks_total{route="iris",variant="iris-v2"} 1');
  });

  it('falls back on a challenger timeout too', async () => {
    challenger.setBehaviour(behave.hang());
    const res = await post(swy.dataUrl);
    expect(res.status).toBe(200);
    expect(res.headers['x-switchyard-fallback-from']).toBe('iris-v2');
  });
});

describe('routing table', () => {
  let short: Upstream;
  let long: Upstream;
  let swy: RunningSwitchyard;
  beforeAll(async () => {
    short = await startUpstream(behave.json('short'), { name: 'short' });
    long = await startUpstream(behave.json('long'), { name: 'long' });
    swy = await startSwitchyard({
      routes: [
        { name: 'models', match: { pathPrefix: '/v1/models' }, champion: { name: 'generic', url: short.url } },
        { name: 'iris', match: { pathPrefix: '/v1/models/iris' }, champion: { name: 'iris-v1', url: `${long.url}/base/` } },
      ],
    });
  });
  afterAll(async () => {
    await swy.close();
    await short.close();
    await long.close();
  });

  it('sends a request to the route with the longest matching prefix and prepends the upstream base path', async () => {
    const iris = await post(swy.dataUrl, '/v1/models/iris:predict');
    expect(iris.headers['x-switchyard-variant']).toBe('iris-v1');
    expect(long.requests[0]!.url).toBe('/base/v1/models/iris:predict');
    const other = await post(swy.dataUrl, '/v1/models/wine:predict');
    expect(other.headers['x-switchyard-variant']).toBe('generic');
    expect(short.requests[0]!.url).toBe('/v1/models/wine:predict');
  });
});

describe('a reload while a request body is still arriving', () => {
  const upstreams: Upstream[] = [];
  afterAll(async () => {
    for (const u of upstreams) await u.close();
  });

  it('answers from the upstream the request was routed to, although the reload closed that upstream\'s pool', async () => {
    const before = await startUpstream(behave.json('setosa'), { name: 'before' });
    const after = await startUpstream(behave.json('versicolor'), { name: 'after' });
    upstreams.push(before, after);
    const policy = (url: string) => ({ routes: [{ name: 'iris', match: { pathPrefix: '/v1/models/iris' }, champion: { name: 'iris-v1', url } }] });
    const swy = await startSwitchyard(policy(before.url));
    try {
      // One complete request first, so the route's arm already holds its pool when the reload closes it.
      expect((await post(swy.dataUrl)).status).toBe(200);
      const { hostname, port } = new URL(swy.dataUrl);
      const socket = connect(Number(port), hostname);
      await once(socket, 'connect');
      // Head and half the body: Switchyard routes on the head and keeps the body until it is complete.
      const head = `POST /v1/models/iris:predict HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: application/json\r\nContent-Length: ${predictBody.length}\r\nConnection: close\r\n\r\n`;
      socket.write(head + predictBody.slice(0, 10));
      await expect.poll(() => swy.app.plane.inFlight).toBe(1);
      // The new policy no longer names `before`: its pool is closed by the reload.
      await swy.writePolicy(policy(after.url));
      expect(await swy.app.reload('test')).toMatchObject({ ok: true, changed: true });
      socket.write(predictBody.slice(10));
      const chunks: Buffer[] = [];
      for await (const chunk of socket) chunks.push(chunk as Buffer);
      const response = Buffer.concat(chunks).toString();
      expect(response.split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
      expect(response).toContain('setosa');
      expect(before.count).toBe(2);
      expect(after.count).toBe(0);
    } finally {
      await swy.close();
    }
  });
});
