// The shared test upstream: recording, waiting on requests and every switchable behaviour, over real sockets.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { behave, startUpstream, type Upstream } from '../../helpers/upstream.js';

/** Resolves to the error code a request ends with, or 'answered'. */
const outcome = (promise: Promise<unknown>): Promise<string | undefined> =>
  promise.then(() => 'answered', (err: { code?: string }) => err.code);

describe('startUpstream', () => {
  let upstream: Upstream;
  beforeEach(async () => {
    upstream = await startUpstream(behave.json({ label: 'setosa' }), { name: 'champion' });
  });
  afterEach(async () => {
    await upstream.close();
  });

  it('records method, url, headers, body and arrival time, and echoes them with the prediction', async () => {
    const before = performance.now();
    const res = await request(`${upstream.url}/v1/models/iris:predict?x=1`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'r-1' },
      body: '{"instances":[[1,2,3,4]]}',
    });
    const echo = (await res.body.json()) as Record<string, unknown>;
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-upstream']).toBe('champion');
    expect(echo).toMatchObject({
      method: 'POST', url: '/v1/models/iris:predict?x=1', body: '{"instances":[[1,2,3,4]]}',
      prediction: { label: 'setosa' }, upstream: 'champion',
    });
    expect((echo.headers as Record<string, string>)['x-request-id']).toBe('r-1');

    expect(upstream.count).toBe(1);
    const [rec] = upstream.requests;
    expect(rec?.method).toBe('POST');
    expect(rec?.url).toBe('/v1/models/iris:predict?x=1');
    expect(rec?.headers['x-request-id']).toBe('r-1');
    expect(Buffer.isBuffer(rec?.body)).toBe(true);
    expect(rec?.body.toString()).toBe('{"instances":[[1,2,3,4]]}');
    expect(rec?.arrivedAt).toBeGreaterThanOrEqual(before);
    expect(rec?.arrivedAt).toBeLessThanOrEqual(performance.now());
  });

  it('waitForRequests resolves on the nth request and rejects with a reason when it never comes', async () => {
    const waiting = upstream.waitForRequests(3);
    await Promise.all([1, 2, 3].map((i) => request(`${upstream.url}/r${i}`).then((r) => r.body.dump())));
    const recorded = await waiting;
    expect(recorded.map((r) => r.url).sort()).toEqual(['/r1', '/r2', '/r3']);
    expect(await upstream.waitForRequests(2)).toHaveLength(3); // already satisfied: resolves at once
    await expect(upstream.waitForRequests(4, 50)).rejects.toThrow('expected 4 requests within 50 ms, got 3');
    upstream.clear();
    expect(upstream.count).toBe(0);
  });

  it('status answers with the code and a JSON, text or default body', async () => {
    upstream.setBehaviour(behave.status(503, { error: 'overloaded' }));
    let res = await request(upstream.url);
    expect(res.statusCode).toBe(503);
    expect(await res.body.json()).toEqual({ error: 'overloaded' });
    upstream.setBehaviour(behave.status(418, 'teapot'));
    res = await request(upstream.url);
    expect(res.statusCode).toBe(418);
    expect(res.headers['content-type']).toBe('text/plain');
    expect(await res.body.text()).toBe('teapot');
    upstream.setBehaviour(behave.status(500));
    res = await request(upstream.url);
    expect(await res.body.json()).toEqual({ status: 500 });
    upstream.setBehaviour(behave.json(7));
    res = await request(upstream.url);
    expect(((await res.body.json()) as { prediction: number }).prediction).toBe(7);
  });

  it('delay answers like json after the delay', async () => {
    upstream.setBehaviour(behave.delay(120, 'late'));
    const started = performance.now();
    const res = await request(upstream.url);
    expect(((await res.body.json()) as { prediction: string }).prediction).toBe('late');
    expect(performance.now() - started).toBeGreaterThanOrEqual(115);
  });

  it('hang never answers, and close() ends it at once with a socket error on the client', async () => {
    upstream.setBehaviour(behave.hang());
    const pending = outcome(request(upstream.url, { method: 'POST', body: 'x' }));
    await upstream.waitForRequests(1);
    const started = performance.now();
    await upstream.close();
    expect(performance.now() - started).toBeLessThan(500);
    expect(await pending).toBe('UND_ERR_SOCKET');
  });

  it('hang trips a client headers timeout', async () => {
    upstream.setBehaviour(behave.hang());
    expect(await outcome(request(upstream.url, { headersTimeout: 100 }))).toBe('UND_ERR_HEADERS_TIMEOUT');
  });

  it('reset destroys the socket before any response byte', async () => {
    upstream.setBehaviour(behave.reset());
    expect(await outcome(request(upstream.url, { method: 'POST', body: '{}' }))).toBe('UND_ERR_SOCKET');
    expect(upstream.count).toBe(1);
    upstream.setBehaviour(behave.json());
    expect((await request(upstream.url)).statusCode).toBe(200);
  });

  it('sse streams each event as it is written, intervalMs apart', async () => {
    upstream.setBehaviour(behave.sse(['{"token":"a"}', '{"token":"b"}', '[DONE]'], 60));
    const res = await request(upstream.url);
    expect(res.headers['content-type']).toBe('text/event-stream');
    const arrivals: { at: number; text: string }[] = [];
    for await (const chunk of res.body) arrivals.push({ at: performance.now(), text: chunk.toString() });
    expect(arrivals.map((a) => a.text).join('')).toBe('data: {"token":"a"}\n\ndata: {"token":"b"}\n\ndata: [DONE]\n\n');
    // Flushed one by one: the first event reaches the client well before the stream ends.
    expect(arrivals[0]?.text).toBe('data: {"token":"a"}\n\n');
    expect((arrivals.at(-1)?.at ?? 0) - (arrivals[0]?.at ?? 0)).toBeGreaterThanOrEqual(100);
  });

  it('chunked sends Transfer-Encoding: chunked with the chunks in order', async () => {
    upstream.setBehaviour(behave.chunked(['{"predictions":', '[1,', '2]}']));
    const res = await request(upstream.url);
    expect(res.headers['transfer-encoding']).toBe('chunked');
    expect(res.headers['content-length']).toBeUndefined();
    expect(await res.body.text()).toBe('{"predictions":[1,2]}');
  });

  it('largeBody sends exactly the requested number of bytes', async () => {
    const bytes = 5 * 1024 * 1024 + 3;
    upstream.setBehaviour(behave.largeBody(bytes));
    const res = await request(upstream.url);
    expect(res.headers['content-length']).toBe(String(bytes));
    let received = 0;
    for await (const chunk of res.body) received += (chunk as Buffer).length;
    expect(received).toBe(bytes);
  });

  it('close() is idempotent', async () => {
    await upstream.close();
    await expect(upstream.close()).resolves.toBeUndefined();
  });
});
