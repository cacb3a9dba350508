// The request log through real sockets: one pino line per failed request, sampled successes, refusals, and the per-second budget.
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { routePolicy, startSwitchyard, type RunningSwitchyard } from '../helpers/switchyard.js';
import { behave, startUpstream, type Upstream } from '../helpers/upstream.js';

type Line = Record<string, unknown>;

/** A real pino logger whose destination keeps each JSON line, parsed. */
function capturingLogger(): { logger: pino.Logger; lines: Line[] } {
  const lines: Line[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Line) });
  return { logger, lines };
}

/** An http:// origin whose port was just freed: connections to it are refused. */
async function refusedOrigin(): Promise<string> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

async function post(base: string, path = '/v1/models/iris:predict', headers: Record<string, string> = {}) {
  const res = await request(`${base}${path}`, { method: 'POST', body: '{"instances":[[1,2,3,4]]}', headers: { 'content-type': 'application/json', ...headers } });
  await res.body.dump();
  return res.statusCode;
}

const requestLines = (lines: Line[]) => lines.filter((line) => line.msg === 'request failed' || line.msg === 'request served');

let champion: Upstream;
let failing: Upstream;
const running: RunningSwitchyard[] = [];

beforeAll(async () => {
  champion = await startUpstream(behave.json('setosa'), { name: 'champion' });
  failing = await startUpstream(behave.status(500), { name: 'failing' });
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((swy) => swy.close()));
});
afterAll(async () => {
  await champion?.close();
  await failing?.close();
});

describe('request log', () => {
  it('writes one warn line for a 502 with request id, route, variant, code, upstream and latency, and none for successes by default', async () => {
    const { logger, lines } = capturingLogger();
    const dead = await refusedOrigin();
    const swy = await startSwitchyard(
      {
        routes: [
          { name: 'iris', match: { pathPrefix: '/v1/models/iris', methods: ['POST'] }, champion: { name: 'iris-v1', url: champion.url } },
          { name: 'dead', match: { pathPrefix: '/v1/models/dead', methods: ['POST'] }, champion: { name: 'dead-v1', url: dead } },
        ],
      },
      { logger },
    );
    running.push(swy);
    for (let i = 0; i < 20; i++) expect(await post(swy.dataUrl)).toBe(200);
    expect(await post(swy.dataUrl, '/v1/models/dead:predict', { 'x-request-id': 'req-abc-123' })).toBe(502);
    await expect.poll(() => requestLines(lines).length, { timeout: 5_000, interval: 10 }).toBe(1);
    const [line] = requestLines(lines);
    expect(line).toMatchObject({ level: 40, msg: 'request failed', requestId: 'req-abc-123', method: 'POST', path: '/v1/models/dead:predict', route: 'dead', variant: 'dead-v1', upstream: dead, status: 502, code: 'SWY_ERR_UPSTREAM_CONNECT', errorKind: 'connect', fellBack: false });
    expect(line!.latencyMs).toEqual(expect.any(Number));
    // Lines are written in the order requests ended: the 20 successes before the failure wrote nothing.
    expect(lines.filter((l) => l.msg === 'request served')).toHaveLength(0);
  });

  it('logs a challenger that failed over to the champion, and refusals at info with their code', async () => {
    const { logger, lines } = capturingLogger();
    const swy = await startSwitchyard(routePolicy(champion.url, [{ url: failing.url, percent: 100, fallback: true }]), { logger });
    running.push(swy);
    expect(await post(swy.dataUrl, '/v1/models/iris:predict', { 'x-request-id': 'fallback-1' })).toBe(200);
    expect(await post(swy.dataUrl, '/v1/models/nothing-here', { 'x-request-id': 'lost-1' })).toBe(404);
    await expect.poll(() => requestLines(lines).length, { timeout: 5_000, interval: 10 }).toBe(2);
    const [fellBack, refused] = requestLines(lines);
    expect(fellBack).toMatchObject({ level: 40, requestId: 'fallback-1', route: 'iris', variant: 'iris-v2', upstream: failing.url, status: 500, errorKind: 'status_5xx', code: null, fellBack: true });
    expect(refused).toMatchObject({ level: 30, msg: 'request failed', requestId: 'lost-1', route: null, variant: null, upstream: null, status: 404, code: 'SWY_ERR_NO_ROUTE', refused: 'no_route' });
  });

  it('writes a sampled share of successful requests when asked (here all)', async () => {
    const { logger, lines } = capturingLogger();
    const swy = await startSwitchyard(routePolicy(champion.url), { logger, requestLog: { sampleSuccess: 1 } });
    running.push(swy);
    for (let i = 0; i < 5; i++) expect(await post(swy.dataUrl, '/v1/models/iris:predict', { 'x-request-id': `ok-${i}` })).toBe(200);
    await expect.poll(() => requestLines(lines).length, { timeout: 5_000, interval: 10 }).toBe(5);
    expect(requestLines(lines).map((l) => [l.level, l.msg, l.requestId, l.status, l.code])).toEqual([0, 1, 2, 3, 4].map((i) => [30, 'request served', `ok-${i}`, 200, null]));
  });

  it('keeps to its per-second budget and counts the lines it dropped', async () => {
    const { logger, lines } = capturingLogger();
    const dead = await refusedOrigin();
    const swy = await startSwitchyard(routePolicy(dead), { logger, requestLog: { maxPerSecond: 5 } });
    running.push(swy);
    // Sent together, so they end well within one second.
    const statuses = await Promise.all(Array.from({ length: 20 }, () => post(swy.dataUrl)));
    expect(statuses.every((s) => s === 502)).toBe(true);
    const dropped = async () => Number(/^switchyard_request_log_dropped_total (\d+)/m.exec(await (await request(`${swy.adminUrl}/metrics`)).body.text())?.[1]);
    await expect.poll(async () => requestLines(lines).length + (await dropped()), { timeout: 5_000, interval: 10 }).toBe(20);
    expect(requestLines(lines).length).toBe(5);
  });
});
