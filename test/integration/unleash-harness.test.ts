// Integration: a real Unleash server, Switchyard's Admin API client writing to it, and a real unleash-client observing.
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { InMemStorageProvider, Unleash, UnleashEvents } from 'unleash-client';
import { UnleashAdminClient } from '../../src/flags/unleash-admin.js';
import type { StrategyVariantInput, UnleashAdminError, UnleashAdminInputError } from '../../src/flags/unleash-admin.js';
import { databaseExists, startUnleashServer } from '../helpers/unleash-server.js';
import type { UnleashServer, UnleashStartError } from '../helpers/unleash-server.js';

const ENV = 'development';
const KEYS = Array.from({ length: 4000 }, (_, i) => `req-${i}`);
/** Server revision tick (1 s) + refreshInterval (250 ms) + request time, with margin for a loaded 2-core machine. */
const PROPAGATION_TIMEOUT_MS = 5_000;
const VARIANTS: StrategyVariantInput[] = [
  { name: 'champion', weight: 700, payload: { type: 'json', value: JSON.stringify({ model: 'model-x-v1' }) } },
  { name: 'challenger', weight: 300, payload: { type: 'json', value: JSON.stringify({ model: 'model-x-v2' }) } },
];

/** Rejects with the error a call throws, so its `code` and fields can be asserted. */
async function rejectionOf(promise: Promise<unknown>): Promise<Record<string, unknown>> {
  try {
    await promise;
  } catch (err) {
    return err as Record<string, unknown>;
  }
  throw new Error('expected the call to reject');
}

/**
 * Resolves with the ms since `since` once `condition()` holds, re-checking on the client's `changed` and `ready`
 * events (a new client's first `changed` comes one tick before it accepts evaluations, hence `ready` too).
 */
function waitForClient(client: Unleash, what: string, condition: () => boolean, since = performance.now()): Promise<number> {
  if (condition()) return Promise.resolve(performance.now() - since);
  return new Promise((resolve, reject) => {
    const recheck = (): void => {
      if (!condition()) return;
      cleanup();
      resolve(performance.now() - since);
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`unleash-client did not observe ${what} within ${PROPAGATION_TIMEOUT_MS} ms`));
    }, PROPAGATION_TIMEOUT_MS);
    const cleanup = (): void => {
      clearTimeout(timer);
      client.off(UnleashEvents.Changed, recheck);
      client.off(UnleashEvents.Ready, recheck);
    };
    client.on(UnleashEvents.Changed, recheck);
    client.on(UnleashEvents.Ready, recheck);
  });
}

function enabledKeys(client: Unleash, flag: string): Set<string> {
  return new Set(KEYS.filter((key) => client.isEnabled(flag, { properties: { requestKey: key } })));
}

function clientRollout(client: Unleash, flag: string): unknown {
  return client.getFeatureToggleDefinition(flag)?.strategies?.[0]?.parameters.rollout;
}

describe('UnleashAdminClient transport (stub HTTP server on port 0)', () => {
  let stub: Server;
  let baseUrl: string;
  let connections = 0;
  let requests: string[] = [];
  let handle: (req: IncomingMessage, res: ServerResponse, requestOnSocket: number) => void = () => {};
  const clients: UnleashAdminClient[] = [];
  const perSocket = new WeakMap<Socket, number>();
  const flagBody = JSON.stringify({ name: 'f', project: 'default', type: 'release', environments: [] });

  const newClient = (timeoutMs = 2_000): UnleashAdminClient => {
    // One connection, so the second call must reuse the first socket (with more, undici may open a fresh one
    // because the first has not signalled 'drain' yet when the next call is dispatched).
    const client = new UnleashAdminClient({ baseUrl, adminToken: '*:*.stub', timeoutMs, connections: 1 });
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    stub = createServer((req, res) => {
      const nth = (perSocket.get(req.socket) ?? 0) + 1;
      perSocket.set(req.socket, nth);
      requests.push(`${req.method} ${req.url}`);
      req.resume();
      handle(req, res, nth);
    });
    stub.on('connection', () => connections++);
    stub.listen(0, '127.0.0.1');
    await once(stub, 'listening');
    baseUrl = `http://127.0.0.1:${(stub.address() as AddressInfo).port}`;
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
    stub.closeAllConnections();
    connections = 0;
    requests = [];
  });
  afterAll(async () => {
    stub.close();
    await once(stub, 'close');
  });

  test('an idempotent call is retried once when a reused keep-alive socket is reset', async () => {
    // First request on a socket is answered (keep-alive); the next one on that same socket is cut off, which is
    // what a client sees when Unleash closed the idle socket first (docs/flags.md, section 6, item 6).
    handle = (_req, res, nth) => (nth === 1 ? res.setHeader('content-type', 'application/json').end(flagBody) : res.socket?.destroy());
    const admin = newClient();
    expect((await admin.getFlag('f'))?.name).toBe('f');
    expect((await admin.getFlag('f'))?.name).toBe('f');
    expect(requests).toHaveLength(3);
    expect(connections).toBe(2);
  });

  test('a non-idempotent call is not retried after a reset and fails with SWY_ERR_FLAG_WRITE', async () => {
    handle = (_req, res, nth) => (nth === 1 ? res.setHeader('content-type', 'application/json').end(flagBody) : res.socket?.destroy());
    const admin = newClient();
    await admin.getFlag('f');
    const err = await rejectionOf(admin.createFlag('g', { type: 'release' }));
    expect(err.code).toBe('SWY_ERR_FLAG_WRITE');
    expect(err.unleashStatus).toBeNull();
    expect(err.statusCode).toBe(502);
    expect((err.cause as { code?: string }).code).toBe('UND_ERR_SOCKET');
    expect(requests).toEqual(['GET /api/admin/projects/default/features/f', 'POST /api/admin/projects/default/features']);
  });

  test('a server that never answers hits the headers timeout', async () => {
    handle = () => {};
    const err = await rejectionOf(newClient(200).enable('f', ENV));
    expect(err.code).toBe('SWY_ERR_FLAG_WRITE');
    expect((err.cause as { code?: string }).code).toBe('UND_ERR_HEADERS_TIMEOUT');
  });

  test('a 2xx body that is not a flag is reported, not returned half-parsed', async () => {
    handle = (_req, res) => res.setHeader('content-type', 'application/json').end('{"name":"f"}');
    const err = await rejectionOf(newClient().getFlag('f'));
    expect(err.code).toBe('SWY_ERR_FLAG_WRITE');
    expect(err.unleashStatus).toBe(200);
    expect(String(err.message)).toContain('unexpected response shape');
  });

  test('invalid inputs fail before any request and name the wrong field', async () => {
    const admin = newClient();
    for (const percent of [60.5, -1, 101, Number.NaN]) {
      const err = (await rejectionOf(admin.setRollout('f', ENV, 'sid', percent))) as unknown as UnleashAdminInputError;
      expect(err.code).toBe('SWY_ERR_BAD_REQUEST');
      expect(err.field).toBe('percent');
      expect(err.message).toContain(String(percent));
    }
    const cases: Array<[Promise<unknown>, string]> = [
      [admin.getFlag('bad name!'), 'name'],
      [admin.enable('f', ''), 'environment'],
      [admin.addFlexibleRollout('f', ENV, { rollout: 30, stickiness: 'requestKey', groupId: 'f', variants: [{ name: 'a', weight: 700 }] }), 'variants'],
      [admin.addFlexibleRollout('f', ENV, { rollout: 30, stickiness: 'requestKey', groupId: 'f', variants: [{ name: 'a', weight: 1.5 }] }), 'variants[0].weight'],
      [admin.addFlexibleRollout('f', ENV, {
        rollout: 30, stickiness: 'requestKey', groupId: 'f', variants: [{ name: 'a', weight: 1000, payload: { type: 'json', value: '{nope' } }],
      }), 'variants[0].payload.value'],
      [admin.addFlexibleRollout('f', ENV, { rollout: 30, stickiness: '', groupId: 'f' }), 'stickiness'],
    ];
    for (const [call, field] of cases) {
      const err = await rejectionOf(call);
      expect(err.code).toBe('SWY_ERR_BAD_REQUEST');
      expect(err.field).toBe(field);
    }
    expect(() => new UnleashAdminClient({ baseUrl: 'not a url', adminToken: 't' })).toThrow(expect.objectContaining({ field: 'baseUrl' }));
    expect(() => new UnleashAdminClient({ baseUrl, adminToken: 't', keepAliveMaxTimeoutMs: 15_000 }))
      .toThrow(expect.objectContaining({ code: 'SWY_ERR_BAD_REQUEST', field: 'keepAliveMaxTimeoutMs' }));
    expect(requests).toEqual([]);
  });
});

describe('real Unleash server (scripts/start-unleash.mjs on a fresh database)', () => {
  const flag = `router.test.harness-${process.pid}`;
  let server: UnleashServer;
  let admin: UnleashAdminClient;
  let client: Unleash | undefined;
  let strategyId = '';
  let enabledAt30 = new Set<string>();
  const clientErrors: unknown[] = [];

  beforeAll(async () => {
    server = await startUnleashServer();
    console.info(`[unleash-harness] server ready in ${server.startMs} ms at ${server.url} (db ${server.database})`);
    admin = new UnleashAdminClient({ baseUrl: server.url, adminToken: server.adminToken });
  });
  afterAll(async () => {
    client?.destroy();
    await admin?.close();
    await server?.stop();
  });

  test('a 30 % flexibleRollout with two variants, written by the admin client, is seen by a real unleash-client', async () => {
    expect(await admin.ensureContextField('requestKey')).toBe('created');
    expect(await admin.ensureContextField('requestKey')).toBe('exists');
    await admin.createFlag(flag, { type: 'experiment', description: 'harness: model-x champion/challenger' });
    strategyId = await admin.addFlexibleRollout(flag, ENV, { rollout: 30, stickiness: 'requestKey', groupId: flag, variants: VARIANTS });
    await admin.enable(flag, ENV);

    const written = await admin.getFlag(flag);
    const strategy = written?.environments[ENV]?.strategies[0];
    expect(written?.environments[ENV]?.enabled).toBe(true);
    expect(written?.environments.production?.enabled).toBe(false);
    expect(strategy).toMatchObject({ id: strategyId, name: 'flexibleRollout', rollout: 30 });
    expect(strategy?.parameters).toEqual({ rollout: '30', stickiness: 'requestKey', groupId: flag });
    // Exact weights survive because only the first variant is 'variable' (all-variable would be re-spread 500/500).
    expect(strategy?.variants.map((v) => [v.name, v.weight, v.weightType])).toEqual([
      ['challenger', 300, 'fix'],
      ['champion', 700, 'variable'],
    ]);

    const startedAt = performance.now();
    client = new Unleash({
      url: server.apiUrl,
      appName: 'switchyard-harness-test',
      customHeaders: { Authorization: server.clientToken },
      refreshInterval: 250,
      disableMetrics: true,
      storageProvider: new InMemStorageProvider(),
    });
    let clientReady = false; // isEnabled() answers the fallback (false) until the client emitted 'ready'
    client.on(UnleashEvents.Ready, () => (clientReady = true));
    client.on(UnleashEvents.Error, (err: unknown) => clientErrors.push(err));
    // Wait for both writes: the server's 1 s revision tick can serve the strategy before the enable (docs/flags.md, section 3).
    const seenMs = await waitForClient(client, 'the enabled 30 % rollout',
      () => clientReady && client!.getFeatureToggleDefinition(flag)?.enabled === true && clientRollout(client!, flag) === '30', startedAt);
    console.info(`[unleash-harness] new client saw the flag after ${Math.round(seenMs)} ms`);

    enabledAt30 = enabledKeys(client, flag);
    const share = enabledAt30.size / KEYS.length;
    expect(share).toBeGreaterThan(0.27);
    expect(share).toBeLessThan(0.33);
    const variants = [...enabledAt30].map((key) => client!.getVariant(flag, { properties: { requestKey: key } }));
    const champions = variants.filter((v) => v.name === 'champion');
    expect(champions.length + variants.filter((v) => v.name === 'challenger').length).toBe(variants.length);
    expect(champions.length / variants.length).toBeGreaterThan(0.64);
    expect(champions.length / variants.length).toBeLessThan(0.76);
    expect(JSON.parse(champions[0]?.payload?.value ?? '{}')).toEqual({ model: 'model-x-v1' });
  });

  test('setRollout(60) reaches the client through a changed event, keeps the variants and every enabled key', async () => {
    expect(client).toBeDefined();
    const writtenAt = performance.now();
    const updated = await admin.setRollout(flag, ENV, strategyId, 60);
    expect(updated.rollout).toBe(60);
    expect(updated.variants).toHaveLength(2);

    const propagationMs = await waitForClient(client!, 'rollout 60', () => clientRollout(client!, flag) === '60', writtenAt);
    console.info(`[unleash-harness] setRollout 30→60 propagated in ${Math.round(propagationMs)} ms`);
    const enabledAt60 = enabledKeys(client!, flag);
    expect(enabledAt60.size / KEYS.length).toBeGreaterThan(0.57);
    expect(enabledAt60.size / KEYS.length).toBeLessThan(0.63);
    // Gradual rollout is monotonic: raising it never takes a key off the candidate.
    expect([...enabledAt30].filter((key) => !enabledAt60.has(key))).toEqual([]);
    expect(client!.getFeatureToggleDefinition(flag)?.strategies?.[0]?.variants).toHaveLength(2);
  });

  test('disable (the kill switch) is observed: no key stays enabled', async () => {
    expect(client).toBeDefined();
    const writtenAt = performance.now();
    await admin.disable(flag, ENV);
    const propagationMs = await waitForClient(client!, 'the flag turned off', () => client!.getFeatureToggleDefinition(flag)?.enabled === false, writtenAt);
    console.info(`[unleash-harness] disable propagated in ${Math.round(propagationMs)} ms`);
    expect(enabledKeys(client!, flag).size).toBe(0);
    expect(client!.getVariant(flag, { properties: { requestKey: 'req-1' } })).toMatchObject({ name: 'disabled', enabled: false });
    expect((await admin.getFlag(flag))?.environments[ENV]?.enabled).toBe(false);
    expect(clientErrors).toEqual([]);
  });

  test('replaceStrategy changes variants; archiveAndDelete frees the name', async () => {
    const replaced = await admin.replaceStrategy(flag, ENV, strategyId, {
      rollout: 10, stickiness: 'requestKey', groupId: flag, variants: [{ name: 'challenger', weight: 1000 }],
    });
    expect(replaced.variants.map((v) => v.name)).toEqual(['challenger']);
    expect(replaced.rollout).toBe(10);
    await admin.archiveAndDelete(flag);
    expect(await admin.getFlag(flag)).toBeUndefined();
    await admin.archiveAndDelete(flag); // already gone: not an error
    await admin.createFlag(flag, { type: 'release' });
    await admin.archiveAndDelete(flag);
  });

  test('a wrong admin token gives 401 and a backend token 403, both as SWY_ERR_FLAG_WRITE', async () => {
    const unknownToken = new UnleashAdminClient({ baseUrl: server.url, adminToken: '*:*.not-a-real-token' });
    const backendToken = new UnleashAdminClient({ baseUrl: server.url, adminToken: server.clientToken });
    try {
      const unauthorized = (await rejectionOf(unknownToken.disable(flag, ENV))) as unknown as UnleashAdminError;
      expect(unauthorized.code).toBe('SWY_ERR_FLAG_WRITE');
      expect(unauthorized.unleashStatus).toBe(401);
      expect(unauthorized.operation).toBe('disable');
      expect(unauthorized.message).toContain('401');
      const forbidden = (await rejectionOf(backendToken.getFlag(flag))) as unknown as UnleashAdminError;
      expect(forbidden.code).toBe('SWY_ERR_FLAG_WRITE');
      expect(forbidden.unleashStatus).toBe(403);
      expect(forbidden.unleashBody).toContain('token');
    } finally {
      await Promise.all([unknownToken.close(), backendToken.close()]);
    }
  });

  test('stop() ends the child process and drops its database', async () => {
    client?.destroy();
    client = undefined;
    await admin.close();
    expect(await databaseExists(server.database)).toBe(true);
    await server.stop();
    expect(await databaseExists(server.database)).toBe(false);
    expect(() => process.kill(server.pid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
  });
});

describe('startUnleashServer failure', () => {
  test("a server that cannot start rejects with the child's stderr and leaves no database behind", async () => {
    // Point the child at a database that does not exist: unleash-server fails its migration right after import.
    const err = (await rejectionOf(startUnleashServer({
      env: { UNLEASH_DB_URL: 'postgres://postgres@127.0.0.1:5432/swy_absent_database' },
    }))) as unknown as UnleashStartError;
    expect(err.code).toBe('SWY_TEST_UNLEASH_START');
    expect(err.message).toMatch(/exited \(code 1\) before its ready line/);
    expect(err.output).toMatch(/\[stderr\] start-unleash: failed to start: .*database "swy_absent_database" does not exist/);
    const database = /database (swy_unleash_\d+_\d+)/.exec(err.message)?.[1];
    expect(database).toBeDefined();
    expect(await databaseExists(database!)).toBe(false);
  });
});
