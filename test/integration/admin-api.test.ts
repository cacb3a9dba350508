// Admin API and CLI for release engineers: token auth, split validation, local overrides, write-through to Unleash,
// pause/resume (ending rollbacks), the audit log, state persisted across a restart, and the status/set/pause/resume CLI.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { AdminAuth, parseAdminTokens } from '../../src/admin/auth.js';
import type { RouteView } from '../../src/admin/route-view.js';
import { AuditLog, type AuditEvent } from '../../src/control/audit.js';
import { stickyBucket } from '../../src/decision/bucket.js';
import { UnleashAdminClient } from '../../src/flags/unleash-admin.js';
import type { UnleashSettings } from '../../src/flags/unleash.js';
import { getSharedUnleashServer, type UnleashServerInfo } from '../helpers/unleash-server.js';
import { startSwitchyard, type RunningSwitchyard } from '../helpers/switchyard.js';
import { startUpstreamPair, type UpstreamPair } from '../helpers/upstream.js';
import { waitFor } from '../helpers/wait-for.js';

const ENV = 'development';
const ADMIN_SECRET = `admin-${randomUUID()}`;
const ALICE_SECRET = `alice-${randomUUID()}`;
const TOKENS = parseAdminTokens({ token: ADMIN_SECRET, tokens: `alice:${ALICE_SECRET}` });
const cli = path.resolve('dist/src/cli.js');

interface Reply<T = unknown> { status: number; body: T; headers: Record<string, string | string[] | undefined> }

async function call<T = Record<string, unknown>>(base: string, method: 'GET' | 'PUT' | 'POST', url: string, options: { token?: string; body?: unknown; rawBody?: string } = {}): Promise<Reply<T>> {
  const headers: Record<string, string> = {};
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined || options.rawBody !== undefined) headers['content-type'] = 'application/json';
  const res = await request(`${base}${url}`, { method, headers, body: options.rawBody ?? (options.body === undefined ? null : JSON.stringify(options.body)) });
  return { status: res.statusCode, body: (await res.body.json()) as T, headers: res.headers };
}

const errorOf = (reply: Reply) => (reply.body as { error: { code: string; message: string } }).error;

function twoChallengerPolicy(champion: string, challenger: string, extra: Record<string, unknown> = {}): unknown {
  return {
    routes: [{
      name: 'iris',
      match: { pathPrefix: '/v1/models/iris', methods: ['POST'] },
      champion: { name: 'iris-v1', url: champion },
      challengers: [
        { name: 'iris-v2', url: challenger, mode: 'canary', percent: 10 },
        { name: 'iris-v3', url: challenger, mode: 'ab', percent: 0 },
      ],
      stickiness: { header: 'x-user-id' },
      ...extra,
    }],
  };
}

async function variants(swy: RunningSwitchyard, keys: readonly string[]): Promise<string[]> {
  return Promise.all(keys.map(async (key) => {
    const res = await request(`${swy.dataUrl}/v1/models/iris:predict`, { method: 'POST', body: '{}', headers: { 'x-user-id': key } });
    await res.body.dump();
    return String(res.headers['x-switchyard-variant']);
  }));
}

let upstreams: UpstreamPair;
beforeAll(async () => (upstreams = await startUpstreamPair()));
afterAll(() => upstreams?.close());

describe('admin token authentication', () => {
  let open: RunningSwitchyard;
  let guarded: RunningSwitchyard;
  beforeAll(async () => {
    open = await startSwitchyard(twoChallengerPolicy(upstreams.champion.url, upstreams.challenger.url));
    guarded = await startSwitchyard(twoChallengerPolicy(upstreams.champion.url, upstreams.challenger.url), { adminTokens: TOKENS });
  });
  afterAll(async () => {
    await open?.close();
    await guarded?.close();
  });

  it('refuses every mutation when no token is configured, saying how to configure one', async () => {
    for (const [method, url] of [['PUT', '/v1/routes/iris/split'], ['POST', '/v1/routes/iris/pause'], ['POST', '/v1/routes/iris/resume']] as const) {
      const reply = await call(open.adminUrl, method, url, { token: 'anything', ...(method === 'PUT' ? { body: { challenger: 'iris-v2', percent: 5 } } : {}) });
      expect(reply.status).toBe(403);
      expect(errorOf(reply).code).toBe('SWY_ERR_ADMIN_DISABLED');
      expect(errorOf(reply).message).toContain('set SWITCHYARD_ADMIN_TOKEN');
    }
    expect((await call(open.adminUrl, 'GET', '/v1/routes')).status).toBe(200);
  });

  it('answers 401 without a token, with a wrong token or scheme, and accepts each named token', async () => {
    const body = { challenger: 'iris-v2', percent: 12 };
    const missing = await call(guarded.adminUrl, 'PUT', '/v1/routes/iris/split', { body });
    expect(missing.status).toBe(401);
    expect(errorOf(missing).code).toBe('SWY_ERR_UNAUTHORIZED');
    expect(missing.headers['www-authenticate']).toContain('Bearer');
    for (const token of [`${ADMIN_SECRET}x`, ADMIN_SECRET.slice(0, -1), 'x', `alice:${ALICE_SECRET}`]) {
      expect((await call(guarded.adminUrl, 'PUT', '/v1/routes/iris/split', { token, body })).status).toBe(401);
    }
    const basic = await request(`${guarded.adminUrl}/v1/routes/iris/pause`, { method: 'POST', headers: { authorization: `Basic ${ADMIN_SECRET}` } });
    expect(basic.statusCode).toBe(401);
    await basic.body.dump();
    // Unauthenticated callers cannot probe route names either.
    expect((await call(guarded.adminUrl, 'POST', '/v1/routes/nope/pause')).status).toBe(401);

    expect((await call(guarded.adminUrl, 'PUT', '/v1/routes/iris/split', { token: ALICE_SECRET, body })).status).toBe(200);
    expect((await call(guarded.adminUrl, 'POST', '/v1/routes/iris/pause', { token: ADMIN_SECRET })).status).toBe(200);
    const events = (await call<{ events: AuditEvent[] }>(guarded.adminUrl, 'GET', '/v1/events?route=iris')).body.events;
    expect(events.map((e) => [e.who, e.action])).toEqual([['admin', 'pause'], ['alice', 'split.set']]);
  });

  it('compares fixed-size digests, so tokens differing early, late or in length are all refused without throwing', () => {
    // Timing is not asserted (a timed test is noise on shared CI machines); the constant-time property comes from
    // comparing equal-length SHA-256 digests with crypto.timingSafeEqual for every configured token.
    const secret = 'k'.repeat(64);
    const auth = new AdminAuth([{ name: 'admin', secret }, { name: 'ci', secret: 'short' }]);
    expect(auth.identify(secret)).toBe('admin');
    expect(auth.identify('short')).toBe('ci');
    expect(auth.identify(`x${secret.slice(1)}`)).toBeNull();
    expect(auth.identify(`${secret.slice(0, -1)}x`)).toBeNull();
    expect(auth.identify(`${secret}k`)).toBeNull();
    expect(auth.identify('')).toBeNull();
  });

  it('rejects malformed SWITCHYARD_ADMIN_TOKENS entries without echoing secrets', () => {
    expect(() => parseAdminTokens({ tokens: 'alice' })).toThrow(/entry 1 must be name:secret/);
    expect(() => parseAdminTokens({ tokens: 'a:1,a:2' })).toThrow(/used twice/);
    expect(() => parseAdminTokens({ token: 'x', tokens: 'admin:y' })).toThrow(/"admin" is used twice/);
    try {
      parseAdminTokens({ tokens: 'bad name:supersecret' });
    } catch (err) {
      expect((err as Error).message).not.toContain('supersecret');
    }
  });
});

describe('split changes on a route without a flag', () => {
  let swy: RunningSwitchyard;
  let dataDir: string;
  const keys = Array.from({ length: 300 }, (_, i) => `admin-user-${i}`);
  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'swy-admin-data-'));
    swy = await startSwitchyard(twoChallengerPolicy(upstreams.champion.url, upstreams.challenger.url), { adminTokens: TOKENS, dataDir });
  });
  afterAll(async () => {
    await swy?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('validates the body and names the field in every error', async () => {
    const cases: [unknown, string][] = [
      [{ challenger: 'iris-v2', percent: 101 }, 'percent: must be at most 100'],
      [{ challenger: 'iris-v2', percent: -1 }, 'percent: must be at least 0'],
      [{ challenger: 'iris-v2', percent: 10.5 }, 'percent: must be a whole number from 0 to 100'],
      [{ challenger: 'iris-v2', percent: '10' }, 'percent: must be a number'],
      [{ percent: 10 }, 'challenger: is required'],
      [{ challenger: 'iris-v2' }, 'percent: is required'],
      [{ challenger: 'iris-v2', percent: 10, mode: 'blue-green' }, 'mode: must be one of canary, ab, shadow'],
      [{ challenger: 'iris-v2', percent: 10, weight: 3 }, 'weight: unknown field'],
      [{ challenger: 'iris-v9', percent: 10 }, 'challenger: "iris-v9" is not a challenger of route iris (challengers: iris-v2, iris-v3)'],
      [{ challenger: 'iris-v1', percent: 10 }, 'challenger: "iris-v1" is the champion'],
      [[1, 2], 'body: must be a JSON object'],
    ];
    for (const [body, message] of cases) {
      const reply = await call(swy.adminUrl, 'PUT', '/v1/routes/iris/split', { token: ADMIN_SECRET, body });
      expect(reply.status, JSON.stringify(body)).toBe(400);
      expect(errorOf(reply).code).toBe('SWY_ERR_BAD_REQUEST');
      expect(errorOf(reply).message).toContain(message);
    }
    const unknown = await call(swy.adminUrl, 'PUT', '/v1/routes/nope/split', { token: ADMIN_SECRET, body: { challenger: 'a', percent: 1 } });
    expect(unknown.status).toBe(404);
    expect(errorOf(unknown).code).toBe('SWY_ERR_ROUTE_UNKNOWN');
    const over = await call(swy.adminUrl, 'PUT', '/v1/routes/iris/split', { token: ADMIN_SECRET, body: { challenger: 'iris-v3', percent: 95 } });
    expect(over.status).toBe(400);
    expect(errorOf(over).message).toContain('percent: canary and ab challengers would add up to 105');
    expect((await call<{ events: AuditEvent[] }>(swy.adminUrl, 'GET', '/v1/events')).body.events).toEqual([]);
  });

  it('applies a local override at once, recorded in the audit log with before and after', async () => {
    const reply = await call<{ route: RouteView; change: { kind: string } }>(swy.adminUrl, 'PUT', '/v1/routes/iris/split', { token: ADMIN_SECRET, body: { challenger: 'iris-v2', percent: 40 } });
    expect(reply.status).toBe(200);
    expect(reply.body.change.kind).toBe('override');
    expect(reply.body.route).toMatchObject({ source: 'override', flags: null, challengers: [{ name: 'iris-v2', mode: 'canary', percent: 40, servedPercent: 40 }, { name: 'iris-v3', percent: 0 }] });
    expect(await variants(swy, keys)).toEqual(keys.map((k) => (stickyBucket(k, 'iris') <= 40 ? 'iris-v2' : 'iris-v1')));
    const [event] = (await call<{ events: AuditEvent[] }>(swy.adminUrl, 'GET', '/v1/events?route=iris&limit=1')).body.events;
    expect(event).toMatchObject({
      who: 'admin', action: 'split.set', route: 'iris',
      before: { source: 'policy', servedPercent: 10 }, after: { source: 'override', servedPercent: 40 },
      detail: { kind: 'override', challenger: 'iris-v2', mode: 'canary', percent: 40 },
    });
    expect(Date.parse(event!.at)).toBeGreaterThan(Date.now() - 60_000);
  });

  it('pauses without moving traffic; resume clears a pause and a rollback', async () => {
    const paused = await call<{ route: RouteView; changed: boolean }>(swy.adminUrl, 'POST', '/v1/routes/iris/pause', { token: ADMIN_SECRET });
    expect(paused.body).toMatchObject({ changed: true, route: { paused: true, challengers: [{ servedPercent: 40 }, { servedPercent: 0 }] } });
    expect((await call(swy.adminUrl, 'POST', '/v1/routes/iris/pause', { token: ADMIN_SECRET })).body).toMatchObject({ changed: false });
    // What the rollback controller does: the route serves only the champion until a person resumes it.
    swy.app.state.setRolledBack('iris', true);
    expect((await call<RouteView>(swy.adminUrl, 'GET', '/v1/routes/iris')).body).toMatchObject({ rolledBack: true, source: 'rollback', champion: { servedPercent: 100 } });
    expect(new Set(await variants(swy, keys))).toEqual(new Set(['iris-v1']));
    const resumed = await call<{ route: RouteView; changed: boolean }>(swy.adminUrl, 'POST', '/v1/routes/iris/resume', { token: ALICE_SECRET });
    expect(resumed.body).toMatchObject({ changed: true, route: { paused: false, rolledBack: false, source: 'override', challengers: [{ servedPercent: 40 }, { servedPercent: 0 }] } });
    expect((await call(swy.adminUrl, 'POST', '/v1/routes/iris/resume', { token: ALICE_SECRET })).body).toMatchObject({ changed: false });
    const events = (await call<{ events: AuditEvent[] }>(swy.adminUrl, 'GET', '/v1/events?route=iris&limit=2')).body.events;
    expect(events.map((e) => `${e.who}:${e.action}`)).toEqual(['alice:resume', 'admin:pause']);
    expect(events[0]).toMatchObject({ before: { rolledBack: true, paused: true }, after: { rolledBack: false, paused: false }, detail: { clearedPause: true, clearedRollback: true } });
    expect((await call(swy.adminUrl, 'GET', '/v1/events?limit=0')).status).toBe(400);
    expect((await call<{ events: AuditEvent[] }>(swy.adminUrl, 'GET', '/v1/events?route=other')).body.events).toEqual([]);
  });

  it('appends events to audit.ndjson and keeps overrides, pauses and rollbacks across a restart', async () => {
    await call(swy.adminUrl, 'POST', '/v1/routes/iris/pause', { token: ADMIN_SECRET });
    swy.app.state.setRolledBack('iris', true);
    await swy.app.state.flush();
    await swy.app.audit.flush();
    const lines = (await readFile(path.join(dataDir, 'audit.ndjson'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as AuditEvent);
    expect(lines.map((e) => e.action)).toEqual(['split.set', 'pause', 'resume', 'pause']);
    const saved = JSON.parse(await readFile(path.join(dataDir, 'state.json'), 'utf8')) as { overrides: Record<string, unknown>; paused: string[]; rolledBack: string[] };
    expect(saved).toMatchObject({ paused: ['iris'], rolledBack: ['iris'], overrides: { iris: { groupId: 'iris' } } });

    await swy.close();
    swy = await startSwitchyard(twoChallengerPolicy(upstreams.champion.url, upstreams.challenger.url), { adminTokens: TOKENS, dataDir });
    expect((await call<RouteView>(swy.adminUrl, 'GET', '/v1/routes/iris')).body).toMatchObject({
      paused: true, rolledBack: true, champion: { servedPercent: 100 }, challengers: [{ name: 'iris-v2', percent: 40, servedPercent: 0 }, { name: 'iris-v3', percent: 0 }],
    });
    const resumed = await call<{ route: RouteView }>(swy.adminUrl, 'POST', '/v1/routes/iris/resume', { token: ADMIN_SECRET });
    expect(resumed.body.route).toMatchObject({ source: 'override', challengers: [{ servedPercent: 40 }, { servedPercent: 0 }] });
  });
});

describe('audit log and state store limits', () => {
  it('keeps only the newest events in memory (newest first), filtered by route', () => {
    const audit = new AuditLog({ file: null, capacity: 3 });
    for (let i = 1; i <= 5; i++) audit.append({ who: 'ci', action: 'split.set', route: i % 2 === 0 ? 'even' : 'odd', before: i - 1, after: i });
    expect(audit.list().map((e) => e.after)).toEqual([5, 4, 3]);
    expect(audit.list({ route: 'odd' }).map((e) => e.after)).toEqual([5, 3]);
    expect(audit.list({ limit: 1 }).map((e) => e.id)).toEqual([5]);
  });

  it('refuses to start on an unreadable state.json instead of dropping the rollbacks it may hold', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'swy-state-'));
    try {
      await writeFile(path.join(dir, 'state.json'), '{"version":1,"rolledBack":[');
      const err = await startSwitchyard(twoChallengerPolicy(upstreams.champion.url, upstreams.challenger.url), { dataDir: dir }).then(() => null, (e: unknown) => e);
      expect(err).toMatchObject({ code: 'SWY_ERR_STATE_READ' });
      expect((err as Error).message).toContain('state.json');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('split changes on flag-driven routes write through to Unleash', () => {
  let unleash: UnleashServerInfo;
  let admin: UnleashAdminClient;
  let swy: RunningSwitchyard;
  let readOnly: RunningSwitchyard;
  const flag = `swy.admin.${randomUUID()}`;
  const fresh = `swy.admin.fresh.${randomUUID()}`;
  const settings = (adminToken: string | null): UnleashSettings => ({
    apiUrl: unleash.apiUrl, rootUrl: unleash.url, apiToken: unleash.clientToken, adminToken, appName: 'switchyard-admin-test',
    environment: ENV, refreshMs: 200, disableMetrics: true,
  });
  const routeView = async (name: string) => (await call<RouteView>(swy.adminUrl, 'GET', `/v1/routes/${name}`)).body;
  const strategyOf = async (name: string) => (await admin.getFlag(name))?.environments[ENV];

  beforeAll(async () => {
    unleash = await getSharedUnleashServer();
    admin = new UnleashAdminClient({ baseUrl: unleash.url, adminToken: unleash.adminToken });
    await admin.createFlag(flag, { type: 'experiment' });
    await admin.addFlexibleRollout(flag, ENV, { rollout: 10, stickiness: 'default', groupId: flag });
    await admin.enable(flag, ENV);
    const policy = twoChallengerPolicy(upstreams.champion.url, upstreams.challenger.url, { flag: { name: flag } }) as { routes: Record<string, unknown>[] };
    policy.routes.push({ ...policy.routes[0]!, name: 'fresh', match: { pathPrefix: '/v1/models/fresh', methods: ['POST'] }, flag: { name: fresh } });
    swy = await startSwitchyard(policy, { adminTokens: TOKENS, flags: settings(unleash.adminToken) });
    readOnly = await startSwitchyard(policy, { adminTokens: TOKENS, flags: settings(null) });
    await waitFor('flag live', async () => (await routeView('iris')).flags === 'live');
  });
  afterAll(async () => {
    await swy?.close();
    await readOnly?.close();
    await admin?.archiveAndDelete(flag).catch(() => undefined);
    await admin?.archiveAndDelete(fresh).catch(() => undefined);
    await admin?.close();
  });

  it('patches only the rollout when the flag already names the challenger, applies it locally at once, and keeps it when the flag catches up', async () => {
    expect(await routeView('iris')).toMatchObject({ source: 'flag', challengers: [{ name: 'iris-v2', percent: 10 }, { name: 'iris-v3', percent: 0 }] });
    const reply = await call<{ route: RouteView; change: Record<string, unknown> }>(swy.adminUrl, 'PUT', '/v1/routes/iris/split', { token: ALICE_SECRET, body: { challenger: 'iris-v2', percent: 30 } });
    expect(reply.status).toBe(200);
    expect(reply.body.change).toMatchObject({ kind: 'unleash', flag, environment: ENV, operation: 'patch-rollout', createdFlag: false });
    expect(reply.body.route).toMatchObject({ source: 'flag', challengers: [{ name: 'iris-v2', percent: 30, servedPercent: 30 }, { name: 'iris-v3', percent: 0 }] });
    const env = await strategyOf(flag);
    expect(env?.strategies[0]).toMatchObject({ rollout: 30, variants: [] });
    // A change made in Unleash afterwards wins: the local copy only masks flag data older than the write.
    await admin.setRollout(flag, ENV, env!.strategies[0]!.id, 45);
    await waitFor('rollout 45 from Unleash', async () => (await routeView('iris')).challengers[0]?.percent === 45);
    expect(await routeView('iris')).toMatchObject({ flags: 'live', source: 'flag' });
  });

  it('replaces the strategy variants when the challenger or mode changes, and back', async () => {
    const reply = await call<{ route: RouteView; change: Record<string, unknown> }>(swy.adminUrl, 'PUT', '/v1/routes/iris/split', { token: ADMIN_SECRET, body: { challenger: 'iris-v3', percent: 20, mode: 'shadow' } });
    expect(reply.status).toBe(200);
    expect(reply.body.change).toMatchObject({ operation: 'replace-strategy', mode: 'shadow' });
    expect(reply.body.route.challengers).toMatchObject([{ name: 'iris-v2', percent: 0 }, { name: 'iris-v3', mode: 'shadow', percent: 20 }]);
    const strategy = (await strategyOf(flag))!.strategies[0]!;
    expect(strategy).toMatchObject({ rollout: 20, parameters: { groupId: flag } });
    expect(strategy.variants.map((v) => [v.name, v.weight, JSON.parse(v.payload!.value)])).toEqual([['iris-v3', 1000, { challenger: 'iris-v3', mode: 'shadow' }]]);
    const back = await call<{ change: Record<string, unknown> }>(swy.adminUrl, 'PUT', '/v1/routes/iris/split', { token: ADMIN_SECRET, body: { challenger: 'iris-v2', percent: 5 } });
    expect(back.body.change).toMatchObject({ operation: 'replace-strategy', mode: 'canary' });
    expect((await strategyOf(flag))!.strategies[0]).toMatchObject({ rollout: 5, variants: [] });
    await waitFor('flag state followed', async () => {
      const r = await routeView('iris');
      return r.flags === 'live' && r.challengers[0]?.percent === 5 && r.challengers[1]?.percent === 0;
    });
    const events = (await call<{ events: AuditEvent[] }>(swy.adminUrl, 'GET', '/v1/events?route=iris')).body.events;
    expect(events.map((e) => (e.detail as { operation: string }).operation)).toEqual(['replace-strategy', 'replace-strategy', 'patch-rollout']);
  });

  it('creates the flag and a flexibleRollout when there is none, and turns the flag on', async () => {
    await waitFor('missing flag reported', async () => (await routeView('fresh')).flags === 'missing');
    expect(await routeView('fresh')).toMatchObject({ source: 'flag', champion: { servedPercent: 100 } });
    const reply = await call<{ route: RouteView; change: Record<string, unknown> }>(swy.adminUrl, 'PUT', '/v1/routes/fresh/split', { token: ADMIN_SECRET, body: { challenger: 'iris-v2', percent: 15 } });
    expect(reply.status).toBe(200);
    expect(reply.body.change).toMatchObject({ operation: 'add-strategy', createdFlag: true, enabledFlag: true });
    const env = await strategyOf(fresh);
    expect(env).toMatchObject({ enabled: true, strategies: [{ name: 'flexibleRollout', rollout: 15, parameters: { groupId: fresh } }] });
    await waitFor('new flag live', async () => {
      const r = await routeView('fresh');
      return r.flags === 'live' && r.challengers[0]?.percent === 15;
    });
  });

  it('restores the flag\'s split from before a rollback when the route is resumed (the rollback wrote rollout 0)', async () => {
    const set = await call(swy.adminUrl, 'PUT', '/v1/routes/iris/split', { token: ADMIN_SECRET, body: { challenger: 'iris-v2', percent: 25 } });
    expect(set.status).toBe(200);
    const rolled = await call(swy.adminUrl, 'POST', '/v1/routes/iris/rollback', { token: ADMIN_SECRET });
    expect(rolled.status).toBe(200);
    await waitFor('rollout 0 written to Unleash', async () => (await strategyOf(flag))?.strategies[0]?.rollout === 0);
    await waitFor('flag at 0 applied', async () => (await routeView('iris')).challengers[0]?.percent === 0);
    const resumed = await call<{ route: RouteView; restored: { percent: number; kind: string }[] }>(swy.adminUrl, 'POST', '/v1/routes/iris/resume', { token: ADMIN_SECRET });
    expect(resumed.status).toBe(200);
    expect(resumed.body.restored).toMatchObject([{ kind: 'unleash', challenger: 'iris-v2', percent: 25 }]);
    expect(resumed.body.route).toMatchObject({ rolledBack: false, challengers: [{ name: 'iris-v2', percent: 25, servedPercent: 25 }, { name: 'iris-v3', percent: 0 }] });
    expect((await strategyOf(flag))!.strategies[0]).toMatchObject({ rollout: 25 });
    const events = (await call<{ events: AuditEvent[] }>(swy.adminUrl, 'GET', '/v1/events?route=iris&limit=3')).body.events;
    expect(events.map((e) => e.action)).toEqual(['resume', 'resume.restore', 'rollback']);
  });

  it('refuses a flag route change with 409 when no Unleash admin token is configured', async () => {
    const reply = await call(readOnly.adminUrl, 'PUT', '/v1/routes/iris/split', { token: ADMIN_SECRET, body: { challenger: 'iris-v2', percent: 50 } });
    expect(reply.status).toBe(409);
    expect(errorOf(reply)).toMatchObject({ code: 'SWY_ERR_FLAG_WRITE_DISABLED' });
    expect(errorOf(reply).message).toContain('UNLEASH_ADMIN_TOKEN');
  });
});

describe('CLI against a running instance', () => {
  let swy: RunningSwitchyard;
  const run = (args: string[], env: Record<string, string> = {}) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [cli, ...args], { env: { PATH: process.env.PATH, ...env } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d));
      child.stderr.on('data', (d: Buffer) => (stderr += d));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  beforeAll(async () => {
    if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
    swy = await startSwitchyard(twoChallengerPolicy(upstreams.champion.url, upstreams.challenger.url), { adminTokens: TOKENS });
  });
  afterAll(async () => {
    await swy?.close();
  });

  it('status prints a table, one route in detail, and JSON', async () => {
    const table = await run(['status', '--admin-url', swy.adminUrl]);
    expect(table.code).toBe(0);
    const [header, row] = table.stdout.trim().split('\n');
    expect(header).toMatch(/^ROUTE\s+SOURCE\s+FLAG\s+FLAGS\s+CHAMPION\s+CHALLENGERS\s+STATE$/);
    // STATE shows the controller's phase (collecting: no requests yet), or "-" before its first tick.
    expect(row).toMatch(/^iris\s+policy\s+-\s+-\s+iris-v1 90%\s+iris-v2 canary 10%\s+(collecting|-)$/);
    const detail = await run(['status', 'iris'], { SWITCHYARD_ADMIN_URL: swy.adminUrl });
    expect(detail.code).toBe(0);
    expect(detail.stdout).toMatch(/iris-v3\s+challenger\s+ab\s+0%\s+0%/);
    const json = await run(['status', '--json', '--admin-url', swy.adminUrl]);
    const view = (JSON.parse(json.stdout) as { routes: RouteView[] }).routes[0]!;
    expect(view).toMatchObject({ name: 'iris', source: 'policy' });
    expect(['inactive', 'collecting']).toContain(view.phase);
  });

  it('set, pause and resume change the route and say what happened', async () => {
    const set = await run(['set', 'iris', 'iris-v3', '25', '--mode', 'ab', '--admin-url', swy.adminUrl, '--token', ADMIN_SECRET]);
    expect(set.stderr).toBe('');
    expect(set.code).toBe(0);
    expect(set.stdout).toContain('iris: iris-v3 ab 25% — local override on this instance');
    expect(set.stdout).toMatch(/iris\s+override\s+-\s+-\s+iris-v1 65%\s+iris-v2 canary 10%, iris-v3 ab 25%/);
    const env = { SWITCHYARD_ADMIN_URL: swy.adminUrl, SWITCHYARD_ADMIN_TOKEN: ALICE_SECRET };
    const pause = await run(['pause', 'iris'], env);
    expect(pause.code).toBe(0);
    expect(pause.stdout).toMatch(/iris: paused \(audit event \d+\)/);
    const resume = await run(['resume', 'iris', '--json'], env);
    expect(resume.code).toBe(0);
    expect(JSON.parse(resume.stdout)).toMatchObject({ changed: true, route: { paused: false } });
    const setJson = await run(['set', 'iris', 'iris-v2', '0%', '--json'], env);
    expect(JSON.parse(setJson.stdout)).toMatchObject({ change: { kind: 'override', percent: 0 }, route: { challengers: [{ percent: 0 }, { percent: 25 }] } });
    const events = (await call<{ events: AuditEvent[] }>(swy.adminUrl, 'GET', '/v1/events')).body.events;
    expect(events.map((e) => `${e.who}:${e.action}`)).toEqual(['alice:split.set', 'alice:resume', 'alice:pause', 'admin:split.set']);
  });

  it('reports unreachable admin URLs, refused tokens and unknown routes with exit 1, usage errors with exit 2', async () => {
    const unreachable = await run(['status', '--admin-url', 'http://127.0.0.1:1']);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain('cannot reach the admin API at http://127.0.0.1:1 (ECONNREFUSED)');
    const refused = await run(['pause', 'iris', '--admin-url', swy.adminUrl, '--token', 'wrong']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('Missing or wrong bearer token');
    expect(refused.stderr).toContain('--token');
    const unknown = await run(['status', 'nope', '--admin-url', swy.adminUrl]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('No route named nope');
    const invalid = await run(['set', 'iris', 'iris-v9', '5', '--admin-url', swy.adminUrl, '--token', ADMIN_SECRET]);
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toContain('challenger: "iris-v9" is not a challenger');
    for (const args of [['set', 'iris', 'iris-v2', '150'], ['set', 'iris'], ['set', 'iris', 'iris-v2', '5', '--mode', 'blue'], ['pause'], ['status', 'a', 'b'], ['resume', 'iris', '--bogus']]) {
      const usage = await run(args, { SWITCHYARD_ADMIN_URL: swy.adminUrl });
      expect(usage.code, args.join(' ')).toBe(2);
      expect(usage.stderr).toContain('switchyard');
    }
  });
});
