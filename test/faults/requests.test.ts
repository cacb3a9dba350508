// Malformed and hostile requests through raw sockets: each is refused with the JSON error shape and nothing reaches the upstream.
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Metrics } from '../../src/metrics/registry.js';
import { clientErrorListener } from '../../src/proxy/client-error.js';
import { DataPathMetrics } from '../../src/proxy/data-path-metrics.js';
import { maxRequestHeaderFields } from '../../src/proxy/headers.js';
import { metricsText, seriesValue } from '../helpers/metrics.js';
import { rawExchange, type RawResponse } from '../helpers/raw-http.js';
import { routePolicy, startSwitchyard, type RunningSwitchyard } from '../helpers/switchyard.js';
import { behave, startUpstream, type Upstream } from '../helpers/upstream.js';

const BODY_LIMIT = 1_000;
const PATH = '/v1/models/iris:predict';

/** A request head with `lines` as its header fields (CRLFs added), `Connection: close` first. */
function head(lines: readonly string[], target = PATH, method = 'POST'): string {
  return `${method} ${target} HTTP/1.1\r\nConnection: close\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n`;
}

/** `n` short junk fields: small enough that thousands fit under node:http's 16 KiB header limit. */
function junk(n: number): string[] {
  return Array.from({ length: n }, () => 'a: b');
}

function expectJsonError(res: RawResponse, status: number, code: string, mentions: RegExp): void {
  expect(res.status, res.body).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const body = JSON.parse(res.body) as { error: { code: string; message: string; requestId: string } };
  expect(body.error.code).toBe(code);
  expect(body.error.message).toMatch(mentions);
  expect(body.error.requestId).toMatch(/\S/);
  expect(res.headers['x-request-id']).toBe(body.error.requestId);
}

describe('hostile requests are refused before anything is forwarded', () => {
  let upstream: Upstream;
  let swy: RunningSwitchyard;
  beforeAll(async () => {
    upstream = await startUpstream(behave.json('setosa'));
    swy = await startSwitchyard(routePolicy(upstream.url, [], { bodyLimitBytes: BODY_LIMIT }));
  });
  afterAll(async () => {
    await swy?.close();
    await upstream?.close();
  });

  /**
   * Proves a refused request reached no upstream: an ordinary request sent afterwards on its own connection must be
   * the only one the upstream ever records (the upstream records requests in completion order).
   */
  async function expectNothingForwarded(): Promise<void> {
    upstream.clear();
    const marker = await rawExchange(swy.dataUrl, head(['Host: switchyard.test', 'X-Marker: after', 'Content-Length: 2'], PATH) + '{}');
    expect(marker.status).toBe(200);
    const recorded = await upstream.waitForRequests(1);
    expect(recorded.map((r) => r.headers['x-marker'])).toEqual(['after']);
  }

  it('refuses junk headers followed by Transfer-Encoding: chunked with 431 (node:http would drop the framing field and the body)', async () => {
    upstream.clear();
    const res = await rawExchange(swy.dataUrl, head(['Host: switchyard.test', ...junk(2_000), 'Transfer-Encoding: chunked']) + '5\r\nhello\r\n0\r\n\r\n');
    expectJsonError(res, 431, 'SWY_ERR_HEADERS_TOO_LARGE', new RegExp(`limit of ${maxRequestHeaderFields} header fields`));
    expect(upstream.count).toBe(0);
    await expectNothingForwarded();
  });

  it('refuses junk headers followed by a Content-Length over the body limit with 431', async () => {
    upstream.clear();
    const res = await rawExchange(swy.dataUrl, head(['Host: switchyard.test', ...junk(maxRequestHeaderFields), `Content-Length: ${BODY_LIMIT * 5}`]) + 'x'.repeat(BODY_LIMIT * 5));
    expectJsonError(res, 431, 'SWY_ERR_HEADERS_TOO_LARGE', /header fields/);
    expect(upstream.count).toBe(0);
    await expectNothingForwarded();
  });

  it('forwards a request with as many header fields as the limit allows, body intact', async () => {
    upstream.clear();
    // Host, Connection, Transfer-Encoding and the junk: exactly the limit.
    const res = await rawExchange(swy.dataUrl, head(['Host: switchyard.test', ...junk(maxRequestHeaderFields - 3), 'Transfer-Encoding: chunked']) + '5\r\nhello\r\n0\r\n\r\n');
    expect(res.status, res.body).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ body: 'hello' });
  });

  it('refuses a duplicate Host with 400', async () => {
    upstream.clear();
    const res = await rawExchange(swy.dataUrl, head(['Host: switchyard.test', 'Host: evil.test', 'Content-Length: 2']) + '{}');
    expectJsonError(res, 400, 'SWY_ERR_BAD_REQUEST', /Host.*once/);
    await expectNothingForwarded();
  });

  it.each(['user@evil:80/x?y', 'evil.test/x', 'evil.test?x', 'evil.test#x', 'evil\\test', 'evil test'])('refuses Host: %s with 400', async (host) => {
    upstream.clear();
    const res = await rawExchange(swy.dataUrl, head([`Host: ${host}`, 'Content-Length: 2']) + '{}');
    expectJsonError(res, 400, 'SWY_ERR_BAD_REQUEST', /Host/);
    await expectNothingForwarded();
  });

  it.each(['switchyard.test', 'switchyard.test:8080', '127.0.0.1:80', '[::1]:8080', 'xn--bcher-kva.example'])('forwards Host: %s as X-Forwarded-Host', async (host) => {
    const res = await rawExchange(swy.dataUrl, head([`Host: ${host}`, 'Content-Length: 2']) + '{}');
    expect(res.status, res.body).toBe(200);
    expect((JSON.parse(res.body) as { headers: Record<string, string> }).headers['x-forwarded-host']).toBe(host);
  });

  it.each(['/v1/models/iris\\..\\..\\admin', '/v1/models/iris\\x', '/v1/models/iris%5c..%5c..%5cadmin', '/v1/models/iris%5C..%5Cadmin', '/v1/models/iris/%2e%2e/admin'])('refuses the path %s with 400', async (target) => {
    upstream.clear();
    const res = await rawExchange(swy.dataUrl, head(['Host: switchyard.test', 'Content-Length: 2'], target) + '{}');
    expectJsonError(res, 400, 'SWY_ERR_BAD_REQUEST', /path/);
    await expectNothingForwarded();
  });

  it.each(['/v1/models/iris%5Cx', '/v1/models/iris-1.2:predict', '/v1/models/iris/a..b'])('forwards the path %s', async (target) => {
    const res = await rawExchange(swy.dataUrl, head(['Host: switchyard.test', 'Content-Length: 2'], target) + '{}');
    expect(res.status, res.body).toBe(200);
    expect((JSON.parse(res.body) as { url: string }).url).toBe(target);
  });

  it('answers Content-Length with Transfer-Encoding (a smuggling attempt) with the JSON error shape, not plain text', async () => {
    upstream.clear();
    const res = await rawExchange(swy.dataUrl, head(['Host: switchyard.test', 'Content-Length: 5', 'Transfer-Encoding: chunked']) + '0\r\n\r\n');
    expectJsonError(res, 400, 'SWY_ERR_BAD_REQUEST', /not valid HTTP\/1\.1: .*(Content-Length.*Transfer-Encoding|Transfer-Encoding.*Content-Length)/);
    await expectNothingForwarded();
  });

  it.each([
    ['an invalid header name', head(['Host: switchyard.test', 'Bad Name: x'])],
    ['a bare LF in a header', 'GET /v1/models/iris HTTP/1.1\r\nHost: switchyard.test\nX: y\r\n\r\n'],
    ['a request line that is not HTTP', 'HELLO\r\n\r\n'],
    ['a chunk size that is not hex', head(['Host: switchyard.test', 'Transfer-Encoding: chunked']) + 'zz\r\nhello\r\n0\r\n\r\n'],
  ])('answers %s with a 400 JSON error', async (_what, text) => {
    upstream.clear();
    const res = await rawExchange(swy.dataUrl, text);
    expectJsonError(res, 400, 'SWY_ERR_BAD_REQUEST', /not valid HTTP\/1\.1/);
    await expectNothingForwarded();
  });

  it('answers headers over the size limit with a 431 JSON error', async () => {
    const res = await rawExchange(swy.dataUrl, head(['Host: switchyard.test', `X-Big: ${'x'.repeat(20_000)}`]));
    expectJsonError(res, 431, 'SWY_ERR_HEADERS_TOO_LARGE', /bytes/);
  });

  it('answers oversized chunk extensions with a 413 JSON error', async () => {
    const res = await rawExchange(swy.dataUrl, head(['Host: switchyard.test', 'Transfer-Encoding: chunked']) + `5;ext=${'x'.repeat(20_000)}\r\nhello\r\n0\r\n\r\n`);
    expectJsonError(res, 413, 'SWY_ERR_CHUNK_EXTENSIONS_TOO_LARGE', /extension/);
  });

  it('counts parser refusals with the other rejected requests', async () => {
    const text = await metricsText(swy.adminUrl);
    expect(seriesValue(text, 'switchyard_rejected_requests_total{reason="bad_request"}')).toBeGreaterThan(0);
    expect(seriesValue(text, 'switchyard_rejected_requests_total{reason="headers_too_large"}')).toBeGreaterThan(0);
  });
});

describe('the data server client-error listener', () => {
  let server: Server;
  afterAll(async () => {
    server?.closeAllConnections();
    if (server?.listening) await new Promise((resolve) => server.close(resolve));
  });

  it('answers headers that do not arrive within headersTimeout with a 408 JSON error', async () => {
    // A bare node:http server with the listener, since the data server's headersTimeout is a minute long.
    server = createServer({ headersTimeout: 200, requestTimeout: 0, connectionsCheckingInterval: 20 }, (_req, res) => res.end('unexpected'));
    server.on('clientError', clientErrorListener(server, new DataPathMetrics(new Metrics({ defaultMetrics: false }))));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const res = await rawExchange(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 'GET / HTTP/1.1\r\nHost: x\r\n');
    expectJsonError(res, 408, 'SWY_ERR_HEADERS_TIMEOUT', /200 ms/);
  });
});
