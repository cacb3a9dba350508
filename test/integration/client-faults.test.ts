// What the client does never counts against a variant: slow, aborted, oversized, malformed and Expect requests to a canary through real sockets.
import { EventEmitter, once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as pace } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { stickyBucket } from '../../src/decision/bucket.js';
import { servingArm } from '../../src/decision/split.js';
import { metric } from '../helpers/metrics.js';
import { RawConnection, type RawResponse } from '../helpers/raw-http.js';
import { behave, startUpstream, type Upstream } from '../helpers/upstream.js';
import { startSwitchyard, type RunningSwitchyard } from '../helpers/switchyard.js';

const P99_CEILING_MS = 1_000;
const BODY_LIMIT = 1_000;
/** Content-Length bodies up to this size are read before dispatch; larger ones stream (set low to reach that path cheaply). */
const KEEP_BODY_BYTES = 100;

/** A canary at 50 % whose guardrails judge from 5 requests per arm, so a few miscounted requests show. */
function policy(champion: string, challenger: string) {
  return {
    routes: [
      {
        name: 'iris',
        match: { pathPrefix: '/v1/models/iris', methods: ['POST'] },
        champion: { name: 'iris-v1', url: champion },
        challengers: [{ name: 'iris-v2', url: challenger, mode: 'canary', percent: 50 }],
        stickiness: { header: 'x-user-id' },
        timeouts: { connectMs: 1_000, requestMs: 10_000 },
        bodyLimitBytes: BODY_LIMIT,
        guardrails: {
          minRequests: 5,
          errorRate: { ceiling: 0.5, minRequests: 5 },
          latency: { p99CeilingMs: P99_CEILING_MS, minRequests: 5, baselineRequests: 20 },
        },
      },
    ],
  };
}

interface ArmView {
  name: string;
  role: string;
  requests: number;
  failures: number;
  medianLatencyMs: number | null;
}

interface Analysis {
  phase: string;
  rollbackReason: string | null;
  arms: ArmView[];
  guardrails: { name: string; state: string }[];
}

async function analysis(swy: RunningSwitchyard): Promise<Analysis> {
  return (await (await request(`${swy.adminUrl}/v1/routes/iris/analysis`)).body.json()) as Analysis;
}

async function challengerArm(swy: RunningSwitchyard): Promise<ArmView> {
  return (await analysis(swy)).arms.find((a) => a.name === 'iris-v2') ?? { name: 'iris-v2', role: 'challenger', requests: 0, failures: 0, medianLatencyMs: null };
}

async function rolledBack(swy: RunningSwitchyard): Promise<boolean> {
  return ((await (await request(`${swy.adminUrl}/v1/routes/iris`)).body.json()) as { rolledBack: boolean }).rolledBack;
}

const challengerDuration = {
  sum: 'switchyard_request_duration_seconds_sum{route="iris",variant="iris-v2",role="challenger"}',
  count: 'switchyard_request_duration_seconds_count{route="iris",variant="iris-v2",role="challenger"}',
};

/** Sticky keys the project's own bucketing puts on the challenger. */
function challengerKeys(swy: RunningSwitchyard, n: number, prefix: string): string[] {
  const decision = swy.app.splits.snapshot.byName.get('iris')!;
  const keys: string[] = [];
  for (let i = 0; keys.length < n; i++) {
    const key = `${prefix}-${i}`;
    if (servingArm(decision, stickyBucket(key, decision.groupId)).name === 'iris-v2') keys.push(key);
  }
  return keys;
}

async function predict(swy: RunningSwitchyard, key: string): Promise<{ status: number; variant: string }> {
  const res = await request(`${swy.dataUrl}/v1/models/iris:predict`, { method: 'POST', body: '{"instances":[[1,2,3,4]]}', headers: { 'content-type': 'application/json', 'x-user-id': key } });
  await res.body.dump();
  return { status: res.statusCode, variant: String(res.headers['x-switchyard-variant']) };
}

/** Sends `n` ordinary requests to challenger keys; every one must be answered by the challenger. */
async function ordinaryChallengerRequests(swy: RunningSwitchyard, n: number, prefix: string): Promise<void> {
  for (const key of challengerKeys(swy, n, prefix)) expect(await predict(swy, key)).toEqual({ status: 200, variant: 'iris-v2' });
}

/**
 * Proves no rollback: once the analysis holds exactly the challenger requests the test made (client faults excluded),
 * the controller ticks over that evidence and must leave the canary alone.
 */
async function expectKeptAfterTick(swy: RunningSwitchyard, challengerRequests: number): Promise<void> {
  await expect.poll(async () => (await challengerArm(swy)).requests, { timeout: 5_000, interval: 20 }).toBeGreaterThanOrEqual(challengerRequests);
  swy.app.controller.tick();
  const a = await analysis(swy);
  expect(a.phase).not.toBe('rolled_back');
  expect(a.guardrails.filter((g) => g.state === 'breach')).toEqual([]);
  expect(await rolledBack(swy)).toBe(false);
  expect(a.arms.find((arm) => arm.name === 'iris-v2')).toMatchObject({ requests: challengerRequests, failures: 0 });
}

function head(key: string, framing: string, extra = ''): string {
  return `POST /v1/models/iris:predict HTTP/1.1\r\nHost: switchyard.test\r\nX-User-Id: ${key}\r\nContent-Type: application/json\r\nConnection: close\r\n${framing}\r\n${extra}\r\n`;
}

/**
 * Uploads `fast` at once, then `slow` one byte every `intervalMs`, Content-Length or chunked framed; returns the answer
 * and how long the upload took.
 */
async function slowUpload(base: string, key: string, framing: 'length' | 'chunked', fast: string, slow: string, intervalMs: number): Promise<{ response: RawResponse; uploadMs: number }> {
  const conn = await RawConnection.open(base);
  const started = performance.now();
  conn.write(head(key, framing === 'length' ? `Content-Length: ${fast.length + slow.length}` : 'Transfer-Encoding: chunked'));
  if (fast !== '') conn.write(framing === 'length' ? fast : `${fast.length.toString(16)}\r\n${fast}\r\n`);
  for (const byte of slow) {
    // The client's own pace is what this test is about: it is the behaviour under test, not a wait for a condition.
    await pace(intervalMs);
    conn.write(framing === 'length' ? byte : `1\r\n${byte}\r\n`);
  }
  if (framing === 'chunked') conn.write('0\r\n\r\n');
  const uploadMs = performance.now() - started;
  return { response: await conn.response(), uploadMs };
}

/** A challenger that reports when a request body starts arriving, so a test can abort an upload already under way. */
async function startSignallingUpstream(): Promise<{ url: string; bodyStarted: EventEmitter; close(): Promise<void> }> {
  const bodyStarted = new EventEmitter();
  const server: Server = createServer((req, res) => {
    let first = true;
    req.on('data', () => {
      if (first) bodyStarted.emit('started');
      first = false;
    });
    req.on('error', () => undefined);
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"prediction":"setosa"}');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    bodyStarted,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

describe('client faults never count against a variant', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });

  async function setup(challengerUrl?: string): Promise<{ champion: Upstream; challenger: Upstream; swy: RunningSwitchyard }> {
    const champion = await startUpstream(behave.json('setosa'), { name: 'champion' });
    const challenger = await startUpstream(behave.json('setosa'), { name: 'challenger' });
    cleanup.push(() => champion.close(), () => challenger.close());
    const swy = await startSwitchyard(policy(champion.url, challengerUrl ?? challenger.url), { controlIntervalMs: 50, keepBodyBytes: KEEP_BODY_BYTES });
    cleanup.push(() => swy.close());
    // The controller's first look at the route starts the experiment with fresh windows: make it happen before any
    // request, so every request the test sends is in the evidence.
    swy.app.controller.tick();
    return { champion, challenger, swy };
  }

  // Ten bytes, one every 300 ms: the upload takes three times the p99 ceiling; the upstream answers at once.
  it.each([
    { framing: 'length' as const, fast: '', what: 'a Content-Length body read before dispatch, timed from when it has arrived' },
    { framing: 'chunked' as const, fast: '', what: 'a chunked body streamed to the upstream, timed from its last byte' },
    { framing: 'length' as const, fast: ' '.repeat(KEEP_BODY_BYTES), what: 'a Content-Length body above the keep limit, streamed and timed from its last byte' },
  ])('does not roll back for a slow upload: $what', async ({ framing, fast }) => {
    const { challenger, swy } = await setup();
    const [key] = challengerKeys(swy, 1, `slow-${framing}-${fast.length}`);
    const { response, uploadMs } = await slowUpload(swy.dataUrl, key!, framing, fast, '{"x":1234}', 300);
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body)).toMatchObject({ upstream: 'challenger', body: `${fast}{"x":1234}` });
    expect(challenger.count).toBe(1);
    expect(uploadMs).toBeGreaterThan(2 * P99_CEILING_MS);
    // The slow request is the challenger's only one so far: the analysis' median is that request's recorded latency.
    await expect.poll(async () => (await challengerArm(swy)).requests, { timeout: 5_000, interval: 20 }).toBe(1);
    expect((await challengerArm(swy)).medianLatencyMs!).toBeLessThan(P99_CEILING_MS / 4);
    expect(await metric(swy.adminUrl, challengerDuration.count)).toBe(1);
    expect(await metric(swy.adminUrl, challengerDuration.sum)).toBeLessThan(P99_CEILING_MS / 4 / 1_000);
    // Enough challenger requests for the p99 breaker to judge, then a tick over them.
    await ordinaryChallengerRequests(swy, 5, 'fast');
    await expectKeptAfterTick(swy, 6);
  });

  it('answers ten chunked bodies over the limit with 413 and counts none of them for the challenger', async () => {
    const { swy } = await setup();
    const chunk = 'a'.repeat(600);
    for (const key of challengerKeys(swy, 10, 'oversized')) {
      const conn = await RawConnection.open(swy.dataUrl);
      // One write: the proxy reads the whole upload before it answers and closes, so no reset can hide the answer.
      conn.write(`${head(key, 'Transfer-Encoding: chunked')}258\r\n${chunk}\r\n258\r\n${chunk}\r\n0\r\n\r\n`);
      const response = await conn.response();
      expect(response.status).toBe(413);
      expect(JSON.parse(response.body)).toMatchObject({ error: { code: 'SWY_ERR_BODY_TOO_LARGE' } });
    }
    await expect.poll(() => metric(swy.adminUrl, 'switchyard_rejected_requests_total{reason="body_too_large"}'), { timeout: 5_000, interval: 20 }).toBe(10);
    expect(await metric(swy.adminUrl, 'switchyard_upstream_errors_total{route="iris",variant="iris-v2",kind="body_too_large"}')).toBe(0);
    await ordinaryChallengerRequests(swy, 5, 'fast');
    await expectKeptAfterTick(swy, 5);
  });

  it('serves eleven Expect: 100-continue requests: the client gets 100, then the challenger answer', async () => {
    const { challenger, swy } = await setup();
    for (const key of challengerKeys(swy, 11, 'expect')) {
      const conn = await RawConnection.open(swy.dataUrl);
      conn.write(head(key, 'Content-Length: 9', 'Expect: 100-continue\r\n'));
      await conn.until(/^HTTP\/1\.1 100 Continue\r\n\r\n/);
      conn.write('{"x":123}');
      const response = await conn.response();
      expect(response.interim).toEqual([100]);
      expect(response.status).toBe(200);
      expect(response.headers['x-switchyard-variant']).toBe('iris-v2');
      expect(JSON.parse(response.body)).toMatchObject({ upstream: 'challenger', body: '{"x":123}' });
    }
    // Expect is between the client and us: the upstream gets an ordinary request.
    expect(challenger.requests.map((r) => r.headers.expect)).toEqual(Array<undefined>(11).fill(undefined));
    await expectKeptAfterTick(swy, 11);
  });

  it('does not count clients that go away mid-response', async () => {
    const { challenger, swy } = await setup();
    challenger.setBehaviour(behave.chunked(Array<string>(50).fill('x'), 100));
    const keys = challengerKeys(swy, 11, 'leaver');
    await Promise.all(
      keys.map(async (key) => {
        const conn = await RawConnection.open(swy.dataUrl);
        conn.write(head(key, 'Content-Length: 2') + '{}');
        // Wait for the head and the first body chunk, then hang up while the challenger is still answering.
        await conn.until(/\r\n\r\n1\r\nx\r\n/);
        conn.socket.destroy();
      }),
    );
    await expect.poll(() => metric(swy.adminUrl, 'switchyard_rejected_requests_total{reason="client_abort"}'), { timeout: 5_000, interval: 20 }).toBe(11);
    expect(await metric(swy.adminUrl, 'switchyard_upstream_errors_total{route="iris",variant="iris-v2",kind="client_abort"}')).toBe(0);
    challenger.setBehaviour(behave.json('setosa'));
    await ordinaryChallengerRequests(swy, 5, 'fast');
    await expectKeptAfterTick(swy, 5);
  });

  it('does not count uploads the client abandons or malforms while they stream to the challenger', async () => {
    const signalling = await startSignallingUpstream();
    cleanup.push(() => signalling.close());
    const { swy } = await setup(signalling.url);
    const hangUp = (conn: RawConnection): Promise<void> => {
      conn.socket.destroy();
      return Promise.resolve();
    };
    const cases: { framing: string; first: string; then: (conn: RawConnection) => Promise<void> }[] = [
      // Chunked: streamed through the body-limit counter.
      { framing: 'Transfer-Encoding: chunked', first: '5\r\n{"x":\r\n', then: hangUp },
      // Content-Length above the keep limit: the request itself is the upstream body.
      { framing: `Content-Length: ${KEEP_BODY_BYTES + 50}`, first: 'x'.repeat(20), then: hangUp },
      // A malformed chunk size mid-stream: node:http answers 400 and closes the connection.
      {
        framing: 'Transfer-Encoding: chunked',
        first: '5\r\n{"x":\r\n',
        then: async (conn) => {
          conn.write('zz\r\nnot a chunk\r\n');
          expect((await conn.response()).status).toBe(400);
        },
      },
    ];
    let sent = 0;
    for (const { framing, first, then } of cases) {
      for (const key of challengerKeys(swy, 4, `abandon-${sent}`)) {
        const conn = await RawConnection.open(swy.dataUrl);
        const started = once(signalling.bodyStarted, 'started');
        conn.write(head(key, framing) + first);
        // The upload is under way at the challenger before the client gives up on it.
        await started;
        await then(conn);
        sent++;
        await expect.poll(() => metric(swy.adminUrl, 'switchyard_rejected_requests_total{reason="client_abort"}'), { timeout: 5_000, interval: 20 }).toBe(sent);
      }
    }
    for (const kind of ['reset', 'other', 'client_abort']) expect(await metric(swy.adminUrl, `switchyard_upstream_errors_total{route="iris",variant="iris-v2",kind="${kind}"}`)).toBe(0);
    await ordinaryChallengerRequests(swy, 5, 'fast');
    await expectKeptAfterTick(swy, 5);
  });

  it('still counts a challenger that answers 500 and rolls it back (the guardrail is live)', async () => {
    const { challenger, swy } = await setup();
    challenger.setBehaviour(behave.status(500));
    const keys = challengerKeys(swy, 40, 'failing');
    for (const key of keys) {
      if (await rolledBack(swy)) break;
      const res = await predict(swy, key);
      // Before the rollback the challenger answers (500); after it, the champion does.
      expect(res.status).toBe(res.variant === 'iris-v2' ? 500 : 200);
      swy.app.controller.tick();
    }
    expect(await rolledBack(swy)).toBe(true);
    const a = await analysis(swy);
    expect(a.phase).toBe('rolled_back');
    expect(a.arms.find((arm) => arm.name === 'iris-v2')!.failures).toBeGreaterThanOrEqual(5);
    expect(await metric(swy.adminUrl, 'switchyard_upstream_errors_total{route="iris",variant="iris-v2",kind="status_5xx"}')).toBeGreaterThanOrEqual(5);
  });
});
