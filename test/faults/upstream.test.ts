// Misbehaving upstreams through real sockets: starved pools, keep-alive closers, resets and 103 Early Hints.
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { Pool, request } from 'undici';
import { behave, startUpstream } from '../helpers/upstream.js';
import { startSwitchyard, type RunningSwitchyard } from '../helpers/switchyard.js';
import { metric } from '../helpers/metrics.js';
import { okResponse, RawConnection, startRawUpstream } from '../helpers/raw-http.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function started(policy: unknown): Promise<RunningSwitchyard> {
  const swy = await startSwitchyard(policy);
  cleanup.push(() => swy.close());
  return swy;
}

function route(name: string, url: string, methods: string[], extra: Record<string, unknown> = {}) {
  return { name, match: { pathPrefix: `/v1/models/${name}`, methods }, champion: { name: `${name}-v1`, url }, ...extra };
}

describe('one route cannot starve another on the same upstream', () => {
  /** The pool size per route and upstream (src/proxy/upstreams.ts); the issue saw 300 uploads hold all of them. */
  const CONNECTIONS = 256;
  const QUEUED = 8;
  const REQUEST_MS = 1_000;
  const BODY_IDLE_MS = 5_000;

  /** An upstream that answers once it has the whole body, and counts the requests whose head has arrived. */
  async function startCountingUpstream(): Promise<{ url: string; heads: () => number; close(): Promise<void> }> {
    let heads = 0;
    const server: Server = createServer((req: IncomingMessage, res) => {
      heads++;
      req.on('error', () => undefined);
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(`{"path":${JSON.stringify(req.url)}}`);
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      heads: () => heads,
      close: () => {
        server.closeAllConnections();
        return new Promise((resolve) => server.close(() => resolve()));
      },
    };
  }

  /** A chunked upload that sends its head and one byte of body, then nothing. */
  async function stalledUpload(base: string): Promise<RawConnection> {
    const conn = await RawConnection.open(base);
    conn.write('POST /v1/models/uploads:predict HTTP/1.1\r\nHost: switchyard.test\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n1\r\n{\r\n');
    return conn;
  }

  it('answers another route while stalled uploads hold every connection of the first; queued requests get 503 within requestMs; the uploads get 408', async () => {
    const upstream = await startCountingUpstream();
    cleanup.push(() => upstream.close());
    const swy = await started({
      routes: [
        route('uploads', upstream.url, ['POST'], { timeouts: { connectMs: 1_000, requestMs: REQUEST_MS, bodyIdleMs: BODY_IDLE_MS } }),
        route('probes', upstream.url, ['GET', 'POST']),
      ],
    });

    const holding = await Promise.all(Array.from({ length: CONNECTIONS }, () => stalledUpload(swy.dataUrl)));
    cleanup.push(async () => holding.forEach((conn) => conn.close()));
    // Every connection of the uploads route is now taken by an upload that reached the upstream and stalls there.
    await expect.poll(upstream.heads, { timeout: BODY_IDLE_MS / 2, interval: 10 }).toBe(CONNECTIONS);

    const queuedAt = performance.now();
    const queued = await Promise.all(Array.from({ length: QUEUED }, () => stalledUpload(swy.dataUrl)));
    cleanup.push(async () => queued.forEach((conn) => conn.close()));

    // The other route on the same upstream has its own connections: answered at once, not after the uploads.
    const probeStarted = performance.now();
    const probe = await request(`${swy.dataUrl}/v1/models/probes:status`, { headersTimeout: REQUEST_MS, bodyTimeout: REQUEST_MS });
    expect(probe.statusCode).toBe(200);
    expect(await probe.body.json()).toEqual({ path: '/v1/models/probes:status' });
    expect(performance.now() - probeStarted).toBeLessThan(REQUEST_MS);

    // Requests waiting for a connection of the saturated route are refused with a clear error within requestMs.
    const answers = await Promise.all(queued.map((conn) => conn.response(REQUEST_MS * 3)));
    const waitedMs = performance.now() - queuedAt;
    for (const answer of answers) {
      expect(answer.status).toBe(503);
      expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'SWY_ERR_UPSTREAM_BUSY' } });
    }
    expect(waitedMs).toBeGreaterThanOrEqual(REQUEST_MS - 50);
    expect(waitedMs).toBeLessThan(REQUEST_MS * 2.5);
    // Nothing of them was sent: the upstream saw only the uploads and the probe.
    expect(upstream.heads()).toBe(CONNECTIONS + 1);

    // The stalled uploads are cut with 408 after the body idle timeout, which frees the route's connections.
    const cut = await Promise.all(holding.map((conn) => conn.response(BODY_IDLE_MS * 3)));
    for (const answer of cut) {
      expect(answer.status).toBe(408);
      expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'SWY_ERR_CLIENT_TIMEOUT' } });
    }
    const after = await request(`${swy.dataUrl}/v1/models/uploads:predict`, { method: 'POST', body: '{"x":1}' });
    expect(after.statusCode).toBe(200);
    await after.body.dump();
    // The refused requests were dropped unsent when connections freed up, not sent late to an upstream nobody waits on.
    expect(upstream.heads()).toBe(CONNECTIONS + 2);

    expect(await metric(swy.adminUrl, 'switchyard_rejected_requests_total{reason="client_timeout"}')).toBe(CONNECTIONS);
    expect(await metric(swy.adminUrl, 'switchyard_upstream_errors_total{route="uploads",variant="uploads-v1",kind="busy"}')).toBe(QUEUED);
    expect(await metric(swy.adminUrl, 'switchyard_upstream_errors_total{route="uploads",variant="uploads-v1",kind="client_timeout"}')).toBe(0);
  }, 60_000);
});

describe('a connection the upstream closed before answering is retried once on a fresh one when that is safe', () => {
  async function setup(): Promise<{ swy: RunningSwitchyard; upstream: Awaited<ReturnType<typeof startUpstream>> }> {
    const upstream = await startUpstream(behave.reset());
    cleanup.push(() => upstream.close());
    const swy = await started({
      routes: [
        route('reads', upstream.url, ['GET', 'HEAD']),
        route('writes', upstream.url, ['POST']),
        route('scores', upstream.url, ['POST'], { sideEffectFree: true }),
      ],
    });
    return { swy, upstream };
  }

  const retries = (swy: RunningSwitchyard, name: string) => metric(swy.adminUrl, `switchyard_upstream_retries_total{route="${name}",variant="${name}-v1"}`);

  it.each([
    { what: 'a GET', path: '/v1/models/reads:status', method: 'GET', body: undefined, sent: 2 },
    { what: 'a HEAD', path: '/v1/models/reads:status', method: 'HEAD', body: undefined, sent: 2 },
    { what: 'a POST to a route declared side-effect free', path: '/v1/models/scores:predict', method: 'POST', body: '{"x":1}', sent: 2 },
    { what: 'a POST to a route not declared side-effect free (not retried)', path: '/v1/models/writes:predict', method: 'POST', body: '{"x":1}', sent: 1 },
  ])('$what: sent $sent time(s), then 502', async ({ path, method, body, sent }) => {
    const { swy, upstream } = await setup();
    const res = await request(`${swy.dataUrl}${path}`, { method: method as 'GET', body });
    const text = await res.body.text();
    expect(res.statusCode).toBe(502);
    if (method !== 'HEAD') expect(JSON.parse(text)).toMatchObject({ error: { code: 'SWY_ERR_UPSTREAM_RESET' } });
    await upstream.waitForRequests(sent);
    expect(upstream.count).toBe(sent);
    if (body !== undefined) expect(upstream.requests.map((r) => r.body.toString())).toEqual(Array<string>(sent).fill(body));
    const name = path.split('/')[3]!.split(':')[0]!;
    expect(await retries(swy, name)).toBe(sent - 1);
    // The final outcome is what counts: one request, one reset.
    expect(await metric(swy.adminUrl, `switchyard_upstream_errors_total{route="${name}",variant="${name}-v1",kind="reset"}`)).toBe(1);
  });

  it('does not retry a streamed (chunked) body, which cannot be replayed', async () => {
    const { swy, upstream } = await setup();
    const res = await request(`${swy.dataUrl}/v1/models/scores:predict`, { method: 'POST', body: Readable.from(['{"x":', '1}']) });
    await res.body.dump();
    expect(res.statusCode).toBe(502);
    await upstream.waitForRequests(1);
    expect(upstream.count).toBe(1);
    expect(await retries(swy, 'scores')).toBe(0);
  });

  it('does not retry once part of the answer has been forwarded', async () => {
    const upstream = await startRawUpstream((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\npartial');
      setImmediate(() => socket.destroy());
    });
    cleanup.push(() => upstream.close());
    const swy = await started({ routes: [route('reads', upstream.url, ['GET'])] });
    const conn = await RawConnection.open(swy.dataUrl);
    conn.write('GET /v1/models/reads:status HTTP/1.1\r\nHost: switchyard.test\r\nConnection: close\r\n\r\n');
    await conn.closed;
    expect(conn.received).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\npartial$/);
    expect(upstream.requests).toBe(1);
    expect(await retries(swy, 'reads')).toBe(0);
  });

  /** Sends `total` requests with `concurrency` keep-alive connections to Switchyard and returns the non-200 answers. */
  async function load(swy: RunningSwitchyard, path: string, method: 'GET' | 'POST', total: number, concurrency: number): Promise<number> {
    const client = new Pool(swy.dataUrl, { connections: concurrency });
    let sent = 0;
    let failed = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (sent < total) {
          sent++;
          const res = await client.request({ path, method, body: method === 'POST' ? '{"instances":[[1,2,3,4]]}' : undefined, headers: { 'content-type': 'application/json' } });
          await res.body.dump();
          if (res.statusCode !== 200) failed++;
        }
      }),
    );
    await client.close();
    return failed;
  }

  it('serves at most 0.1 % errors from an upstream that closes every idle keep-alive connection right after answering', async () => {
    const upstream = await startRawUpstream((socket) => {
      socket.write(okResponse('{"predictions":["setosa"]}'));
      // Closes the idle connection 1 ms after answering, without saying so (no Connection: close, no Keep-Alive
      // timeout): a request Switchyard writes on it meanwhile meets a closed connection.
      setTimeout(() => socket.destroy(), 1);
    });
    cleanup.push(() => upstream.close());
    const swy = await started({ routes: [route('reads', upstream.url, ['GET']), route('scores', upstream.url, ['POST'], { sideEffectFree: true })] });
    const TOTAL = 2_000;
    const getErrors = await load(swy, '/v1/models/reads:status', 'GET', TOTAL, 16);
    const postErrors = await load(swy, '/v1/models/scores:predict', 'POST', TOTAL, 16);
    const getRetries = await retries(swy, 'reads');
    const postRetries = await retries(swy, 'scores');
    console.info(`keep-alive closer, ${TOTAL} requests each: GET ${getErrors} errors, ${getRetries} retries; side-effect-free POST ${postErrors} errors, ${postRetries} retries`);
    expect(getErrors).toBeLessThanOrEqual(TOTAL / 1_000);
    expect(postErrors).toBeLessThanOrEqual(TOTAL / 1_000);
    // The race really happened (otherwise this test would prove nothing): each retry is a request that met it.
    expect(getRetries).toBeGreaterThan(TOTAL / 100);
    expect(postRetries).toBeGreaterThan(TOTAL / 100);
    // A request that succeeded on its retry is no failure of the variant: only final outcomes are counted.
    expect(await metric(swy.adminUrl, 'switchyard_upstream_errors_total{route="reads",variant="reads-v1",kind="reset"}')).toBe(getErrors);
    expect(await metric(swy.adminUrl, 'switchyard_upstream_errors_total{route="scores",variant="scores-v1",kind="reset"}')).toBe(postErrors);
    expect(await metric(swy.adminUrl, 'switchyard_requests_total{route="reads",variant="reads-v1",role="champion",code_class="2xx"}')).toBe(TOTAL - getErrors);
  }, 120_000);
});

describe('informational responses', () => {
  const hints = 'HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n';

  it.each([
    { what: 'in the same write as the final answer', split: false },
    { what: 'in a write of its own before the final answer', split: true },
  ])('serves the final response after 103 Early Hints $what', async ({ split }) => {
    const upstream = await startRawUpstream((socket) => {
      if (!split) return void socket.write(hints + okResponse('{"prediction":"setosa"}'));
      socket.write(hints);
      setImmediate(() => socket.write(okResponse('{"prediction":"setosa"}')));
    });
    cleanup.push(() => upstream.close());
    const swy = await started({ routes: [route('iris', upstream.url, ['POST'])] });
    const conn = await RawConnection.open(swy.dataUrl);
    conn.write('POST /v1/models/iris:predict HTTP/1.1\r\nHost: switchyard.test\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}');
    const answer = await conn.response();
    expect(answer.status).toBe(200);
    expect(answer.headers['x-switchyard-variant']).toBe('iris-v1');
    expect(JSON.parse(answer.body)).toEqual({ prediction: 'setosa' });
    // Keep-alive clients get it too, and the connection stays usable.
    const client = new Pool(swy.dataUrl, { connections: 1 });
    cleanup.push(() => client.close());
    for (let i = 0; i < 3; i++) {
      const res = await client.request({ path: '/v1/models/iris:predict', method: 'POST', body: '{}' });
      expect(res.statusCode).toBe(200);
      expect(await res.body.json()).toEqual({ prediction: 'setosa' });
    }
  });
});
