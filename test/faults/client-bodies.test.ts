// Slow and partial request bodies through real sockets: 408 after the route's body idle timeout, never a variant's fault.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as pace } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { loadPolicy } from '../../src/config/load.js';
import { behave, startUpstream, type Upstream } from '../helpers/upstream.js';
import { startSwitchyard, type RunningSwitchyard } from '../helpers/switchyard.js';
import { metric } from '../helpers/metrics.js';
import { RawConnection } from '../helpers/raw-http.js';

const BODY_IDLE_MS = 400;
/** Content-Length bodies up to this size are read before dispatch; larger ones stream (low, to reach that path cheaply). */
const KEEP_BODY_BYTES = 100;

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** A route whose every request goes to the challenger (a canary at 100 %), so a miscounted client fault would show. */
async function setup(challengerBehaviour = behave.json('setosa')): Promise<{ swy: RunningSwitchyard; challenger: Upstream }> {
  const champion = await startUpstream(behave.json('setosa'), { name: 'champion' });
  const challenger = await startUpstream(challengerBehaviour, { name: 'challenger' });
  cleanup.push(() => champion.close(), () => challenger.close());
  const swy = await startSwitchyard(
    {
      routes: [
        {
          name: 'iris',
          match: { pathPrefix: '/v1/models/iris', methods: ['POST'] },
          champion: { name: 'iris-v1', url: champion.url },
          challengers: [{ name: 'iris-v2', url: challenger.url, mode: 'canary', percent: 100 }],
          timeouts: { connectMs: 1_000, requestMs: 10_000, bodyIdleMs: BODY_IDLE_MS },
        },
      ],
    },
    { keepBodyBytes: KEEP_BODY_BYTES },
  );
  cleanup.push(() => swy.close());
  return { swy, challenger };
}

function head(framing: string, connection = 'close'): string {
  return `POST /v1/models/iris:predict HTTP/1.1\r\nHost: switchyard.test\r\nContent-Type: application/json\r\nConnection: ${connection}\r\n${framing}\r\n\r\n`;
}

const framings = [
  { what: 'a Content-Length body read before dispatch', framing: 'Content-Length: 20', partial: '{"x":' },
  { what: 'a Content-Length body above the keep limit, streamed', framing: `Content-Length: ${KEEP_BODY_BYTES + 50}`, partial: '{"x":' },
  { what: 'a chunked body, streamed', framing: 'Transfer-Encoding: chunked', partial: '5\r\n{"x":\r\n' },
];

describe('request bodies that stall', () => {
  it.each(framings)('answers headers, part of $what, then silence with 408 after the body idle timeout', async ({ framing, partial }) => {
    const { swy } = await setup();
    const conn = await RawConnection.open(swy.dataUrl);
    const sentAt = performance.now();
    conn.write(head(framing) + partial);
    const answer = await conn.response(BODY_IDLE_MS * 10);
    const tookMs = performance.now() - sentAt;
    expect(answer.status).toBe(408);
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    expect(answer.headers.connection).toBe('close');
    expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'SWY_ERR_CLIENT_TIMEOUT', requestId: expect.any(String) as string } });
    expect(tookMs).toBeGreaterThanOrEqual(BODY_IDLE_MS - 20);
    expect(tookMs).toBeLessThan(BODY_IDLE_MS * 5);
    // The client's doing: counted as a refusal, never against the variant that was to serve it.
    expect(await metric(swy.adminUrl, 'switchyard_rejected_requests_total{reason="client_timeout"}')).toBe(1);
    for (const kind of ['client_timeout', 'reset', 'other', 'client_abort']) {
      expect(await metric(swy.adminUrl, `switchyard_upstream_errors_total{route="iris",variant="iris-v2",kind="${kind}"}`)).toBe(0);
    }
    expect(await metric(swy.adminUrl, 'switchyard_requests_total{route="iris",variant="iris-v2",role="challenger",code_class="5xx"}')).toBe(0);
  });

  it.each(framings)('serves $what that keeps trickling, a byte at a time, for longer than the idle timeout', async ({ framing }) => {
    const { swy, challenger } = await setup();
    const conn = await RawConnection.open(swy.dataUrl);
    const body = '{"x":1234567890}';
    const chunked = framing.startsWith('Transfer');
    const padded = chunked ? body : body.padEnd(Number(framing.split(': ')[1]), ' ');
    conn.write(head(framing));
    const startedAt = performance.now();
    for (const byte of padded.slice(0, 12)) {
      // The client's own pace is the behaviour under test: never idle for the timeout, slower than it overall.
      await pace(BODY_IDLE_MS / 4);
      conn.write(chunked ? `1\r\n${byte}\r\n` : byte);
    }
    conn.write(chunked ? `${(padded.length - 12).toString(16)}\r\n${padded.slice(12)}\r\n0\r\n\r\n` : padded.slice(12));
    expect(performance.now() - startedAt).toBeGreaterThan(2 * BODY_IDLE_MS);
    const answer = await conn.response();
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({ upstream: 'challenger', body: padded });
    expect(challenger.count).toBe(1);
  });

  it.each(framings)('does not time out $what once it has arrived, however long the upstream then takes', async ({ framing }) => {
    const { swy } = await setup(behave.delay(BODY_IDLE_MS * 3, 'setosa'));
    const conn = await RawConnection.open(swy.dataUrl);
    const chunked = framing.startsWith('Transfer');
    const body = chunked ? '5\r\n{"x":\r\n2\r\n1}\r\n0\r\n\r\n' : '{"x":1}'.padEnd(Number(framing.split(': ')[1]), ' ');
    conn.write(head(framing) + body);
    const answer = await conn.response(BODY_IDLE_MS * 10);
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({ upstream: 'challenger', prediction: 'setosa' });
  });

  it('keeps an idle keep-alive connection open between requests for longer than the body idle timeout', async () => {
    const { swy } = await setup();
    const conn = await RawConnection.open(swy.dataUrl);
    conn.write(`${head('Content-Length: 2', 'keep-alive')}{}`);
    await conn.until(/\r\n\r\n\{[^]*\}$/);
    // Idle between requests: the body timer must not have been left running on the connection.
    await pace(BODY_IDLE_MS * 2);
    expect(conn.socket.destroyed).toBe(false);
    conn.received = '';
    conn.write(`${head('Content-Length: 2')}{}`);
    const answer = await conn.response();
    expect(answer.status).toBe(200);
  });

  it('refuses a body idle timeout that is not a positive whole number of ms, naming the field', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'swy-body-idle-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'policy.yaml');
    await writeFile(file, 'routes:\n  - name: iris\n    match: { pathPrefix: /v1/models/iris }\n    champion: { name: iris-v1, url: http://127.0.0.1:9 }\n    timeouts: { bodyIdleMs: 0 }\n');
    await expect(loadPolicy(file)).rejects.toMatchObject({ code: 'SWY_ERR_POLICY_INVALID', message: expect.stringContaining('timeouts.bodyIdleMs') as string });
  });
});

describe('request bodies that stall, through a client library', () => {
  it('a client that sends part of a body and stops gets 408 with the JSON error', async () => {
    const { swy } = await setup();
    const stalled = new Readable({ read: () => undefined });
    stalled.push('{"x":');
    cleanup.push(async () => void stalled.destroy());
    const res = await request(`${swy.dataUrl}/v1/models/iris:predict`, { method: 'POST', body: stalled, headers: { 'content-type': 'application/json' } });
    expect(res.statusCode).toBe(408);
    expect(await res.body.json()).toMatchObject({ error: { code: 'SWY_ERR_CLIENT_TIMEOUT' } });
  });
});
