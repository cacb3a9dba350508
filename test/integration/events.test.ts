// GET /v1/events: paged and filtered, reloaded from audit.ndjson after a restart (ids continue, a torn line tolerated), and one fleet-wide trail through Redis.
import { randomUUID } from 'node:crypto';
import { appendFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { parseAdminTokens } from '../../src/admin/auth.js';
import { pino } from 'pino';
import { AuditLog, type AuditEvent, type EventPage } from '../../src/control/audit.js';
import { auditKeys, RedisEventTrail } from '../../src/control/event-trail.js';
import { parseRedisUrl } from '../../src/coordination/redis-url.js';
import { Metrics } from '../../src/metrics/registry.js';
import { routePolicy, startSwitchyard, type RunningSwitchyard } from '../helpers/switchyard.js';
import { startUpstreamPair, type UpstreamPair } from '../helpers/upstream.js';
import { runCli } from '../helpers/cli.js';

const TOKEN = `t-${randomUUID()}`;
const adminTokens = parseAdminTokens({ token: TOKEN });

async function get<T = EventPage>(base: string, url: string): Promise<{ status: number; body: T }> {
  const res = await request(`${base}${url}`);
  return { status: res.statusCode, body: (await res.body.json()) as T };
}

async function post(base: string, url: string, body?: unknown): Promise<number> {
  const res = await request(`${base}${url}`, { method: body === undefined ? 'POST' : 'PUT', headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body: body === undefined ? null : JSON.stringify(body) });
  await res.body.dump();
  return res.statusCode;
}

let upstreams: UpstreamPair;
const running: RunningSwitchyard[] = [];
beforeAll(async () => {
  upstreams = await startUpstreamPair();
});
afterAll(async () => {
  await upstreams.close();
});
afterEach(async () => {
  for (const swy of running.splice(0)) await swy.app.close();
});

function policy() {
  return routePolicy(upstreams.champion.url, [{ url: upstreams.challenger.url, percent: 10 }]);
}

describe('GET /v1/events on one replica', () => {
  it('pages after an id (oldest first) and before one (newest first), filters by route, type and since, and refuses bad parameters by name', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'swy-events-'));
    const swy = await startSwitchyard(policy(), { adminTokens, dataDir: dir });
    running.push(swy);
    expect(await post(swy.adminUrl, '/v1/routes/iris/pause')).toBe(200);
    expect(await post(swy.adminUrl, '/v1/routes/iris/resume')).toBe(200);
    expect(await post(swy.adminUrl, '/v1/routes/iris/split', { challenger: 'iris-v2', percent: 30 })).toBe(200);
    expect(await post(swy.adminUrl, '/v1/routes/iris/rollback')).toBe(200);

    const all = (await get(swy.adminUrl, '/v1/events?after=0')).body;
    expect(all.events.map((e) => e.action)).toEqual(['pause', 'resume', 'split.set', 'rollback']);
    expect(all).toMatchObject({ lastId: 4, firstId: 1, source: 'local' });
    const first = (await get(swy.adminUrl, '/v1/events?after=0&limit=2')).body.events;
    const next = (await get(swy.adminUrl, `/v1/events?after=${first.at(-1)!.id}&limit=2`)).body.events;
    expect([...first, ...next].map((e) => e.id)).toEqual([1, 2, 3, 4]);
    expect((await get(swy.adminUrl, '/v1/events?before=3')).body.events.map((e) => e.id)).toEqual([2, 1]);
    expect((await get(swy.adminUrl, '/v1/events')).body.events.map((e) => e.id)).toEqual([4, 3, 2, 1]);
    expect((await get(swy.adminUrl, '/v1/events?type=rollback,pause&after=0')).body.events.map((e) => e.action)).toEqual(['pause', 'rollback']);
    expect((await get(swy.adminUrl, '/v1/events?route=other')).body.events).toEqual([]);
    expect((await get(swy.adminUrl, '/v1/events?since=1h')).body.events).toHaveLength(4);
    expect((await get(swy.adminUrl, `/v1/events?since=${new Date(Date.now() + 60_000).toISOString()}`)).body.events).toEqual([]);

    for (const [query, message] of [
      ['after=abc', /after: must be an event id/],
      ['limit=0', /limit: must be a whole number from 1 to 1000/],
      ['since=yesterday', /since: must be an ISO 8601 time .* or a duration back from now/],
      ['type=Roll back', /type: must be an action such as rollback/],
      ['after=1&before=3', /after, before: give one of them/],
      ['page=2', /page: unknown query parameter \(allowed: after, before, limit, route, type, since\)/],
    ] as const) {
      const reply = await get<{ error: { code: string; message: string } }>(swy.adminUrl, `/v1/events?${query}`);
      expect(reply.status, query).toBe(400);
      expect(reply.body.error.code).toBe('SWY_ERR_BAD_REQUEST');
      expect(reply.body.error.message, query).toMatch(message);
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('reloads the trail after a restart: the events are back, ids continue, a torn last line is skipped and reported', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'swy-events-'));
    const first = await startSwitchyard(policy(), { adminTokens, dataDir: dir });
    expect(await post(first.adminUrl, '/v1/routes/iris/rollback')).toBe(200);
    expect(await post(first.adminUrl, '/v1/routes/iris/pause')).toBe(200);
    await first.app.close();
    // A crash mid-write leaves half a line behind.
    await appendFile(path.join(dir, 'audit.ndjson'), '{"id":3,"who":"admin","action":"res');

    const second = await startSwitchyard(policy(), { adminTokens, dataDir: dir });
    running.push(second);
    expect(second.app.audit.loadReport).toMatchObject({ loaded: 2, lastId: 2, skippedLines: 1, tornTail: true });
    const reloaded = (await get(second.adminUrl, '/v1/events?after=0')).body.events;
    expect(reloaded.map((e) => [e.id, e.action])).toEqual([[1, 'rollback'], [2, 'pause']]);
    expect(await post(second.adminUrl, '/v1/routes/iris/resume')).toBe(200);
    const after = (await get(second.adminUrl, '/v1/events?after=2')).body.events;
    expect(after.map((e) => [e.id, e.action])).toEqual([[3, 'resume']]);

    // `switchyard events` reads the same trail.
    const cli = await runCli(['events', '--admin-url', second.adminUrl, '--after', '1', '--route', 'iris']);
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).toMatch(/^2 +\S+ +pause +iris +admin/m);
    expect(cli.stdout).toMatch(/^3 +\S+ +resume +iris +admin/m);
    expect(cli.stdout).not.toMatch(/rollback/);
    const json = await runCli(['events', '--admin-url', second.adminUrl, '--type', 'rollback', '--json']);
    expect((JSON.parse(json.stdout) as EventPage).events.map((e: AuditEvent) => e.action)).toEqual(['rollback']);
    const bad = await runCli(['events', '--admin-url', second.adminUrl, '--after', 'x']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--after: must be an event id/);
    await rm(dir, { recursive: true, force: true });
  });
});

describe('GET /v1/events with Redis: one fleet-wide trail', () => {
  const prefix = `swy-events-${randomUUID().slice(0, 8)}`;
  const redis = new Redis('redis://127.0.0.1:6379', { lazyConnect: true });

  afterAll(async () => {
    const keys = auditKeys(prefix);
    await redis.del(keys.stream, keys.seq);
    redis.disconnect();
  });

  it('shows every replica the same events in the same order, paged by fleet ids', async () => {
    const start = (id: string) => startSwitchyard(policy(), { adminTokens, coordination: { redisUrl: 'redis://127.0.0.1:6379', prefix, instanceId: id, intervalMs: 50 } });
    const a = await start('replica-a');
    running.push(a);
    const b = await start('replica-b');
    running.push(b);
    // B follows the fleet trail live (as the status page does): it hears A's pause with its fleet id.
    const heard: AuditEvent[] = [];
    await expect.poll(async () => (await get(b.adminUrl, '/v1/events')).body.source).toBe('fleet');
    const unsubscribe = b.app.trail.subscribe((event) => heard.push(event), (await get(b.adminUrl, '/v1/events')).body.lastId);
    expect(await post(a.adminUrl, '/v1/routes/iris/pause')).toBe(200);
    await expect.poll(async () => (await get(b.adminUrl, '/v1/events?after=0')).body.events.length).toBeGreaterThanOrEqual(1);
    await expect.poll(() => heard.find((e) => e.action === 'pause')?.instance, { timeout: 5_000 }).toBe('replica-a');
    unsubscribe();
    expect(await post(b.adminUrl, '/v1/routes/iris/split', { challenger: 'iris-v2', percent: 25 })).toBe(200);
    expect(await post(a.adminUrl, '/v1/routes/iris/rollback')).toBe(200);

    const own = (e: AuditEvent) => ['pause', 'split.set', 'rollback'].includes(e.action);
    await expect.poll(async () => (await get(a.adminUrl, '/v1/events?after=0&limit=1000')).body.events.filter(own).length).toBe(3);
    const fromA = (await get(a.adminUrl, '/v1/events?after=0&limit=1000')).body;
    expect(fromA.source).toBe('fleet');
    // B reads the same stream; the last event may reach it a moment after A.
    await expect.poll(async () => (await get(b.adminUrl, '/v1/events?after=0&limit=1000')).body.events).toEqual(fromA.events);
    expect(fromA.events.filter(own).map((e) => [e.action, e.instance])).toEqual([['pause', 'replica-a'], ['split.set', 'replica-b'], ['rollback', 'replica-a']]);
    // Fleet ids increase without gaps; each event keeps the id its replica answered with.
    const ids = fromA.events.map((e) => e.id);
    expect(ids).toEqual(ids.map((_, i) => ids[0]! + i));
    expect(fromA.lastId).toBe(ids.at(-1));
    expect(heard.find((e) => e.action === 'pause')).toEqual(fromA.events.find((e) => e.action === 'pause'));
    const rollback = fromA.events.find((e) => e.action === 'rollback')!;
    expect(a.app.audit.page({ after: 0, limit: 100, actions: ['rollback'] }).events[0]!.id).toBe(rollback.originId);
    // Paging and filters on the fleet trail.
    const page1 = (await get(b.adminUrl, `/v1/events?after=${ids[0]! - 1}&limit=2`)).body.events;
    const page2 = (await get(b.adminUrl, `/v1/events?after=${page1.at(-1)!.id}&limit=1000`)).body.events;
    expect([...page1, ...page2]).toEqual(fromA.events);
    expect((await get(b.adminUrl, '/v1/events?type=rollback')).body.events.map((e) => e.instance)).toEqual(['replica-a']);
    expect((await get(b.adminUrl, `/v1/events?before=${rollback.id}&type=pause,split.set`)).body.events.map((e) => e.action)).toEqual(['split.set', 'pause']);
    expect(await metricValue(a.adminUrl, 'switchyard_audit_stream_events_total{result="dropped"}')).toBe(0);
  });
});

describe('the fleet trail itself', () => {
  it('keeps the Redis stream bounded (XADD MAXLEN ~) and ships, in order, the events queued before its connection was ready', async () => {
    const prefix = `swy-bound-${randomUUID().slice(0, 8)}`;
    const audit = new AuditLog({ file: null });
    const metrics = new Metrics({ defaultMetrics: false });
    const logger = pino({ level: 'silent' });
    const trail = new RedisEventTrail({ target: parseRedisUrl('redis://127.0.0.1:6379'), prefix, instanceId: 'bound', timeoutMs: 200, maxLen: 50 }, { audit, metrics, logger });
    const redis = new Redis('redis://127.0.0.1:6379');
    try {
      // Appended right after start, before the connection is ready: queued, then shipped in order.
      trail.start();
      for (let i = 0; i < 1_000; i++) audit.append({ who: 'test', action: 'split.set', route: `r${i % 7}`, before: null, after: null, detail: { i } });
      await expect.poll(() => trail.pending, { timeout: 20_000 }).toBe(0);
      const length = await redis.xlen(auditKeys(prefix).stream);
      // MAXLEN ~ trims whole stream nodes (100 entries each by default), so the bound is approximate but holds.
      expect(length).toBeGreaterThanOrEqual(50);
      expect(length).toBeLessThan(250);
      const page = await trail.page({ limit: 5 });
      expect(page.source).toBe('fleet');
      expect(page.lastId).toBe(1_000);
      expect(page.events.map((e) => e.id)).toEqual([1_000, 999, 998, 997, 996]);
      expect(page.firstId).toBe(1_000 - length + 1);
      expect((await trail.page({ after: 990, limit: 100, route: 'r0' })).events.map((e) => (e.detail as { i: number }).i)).toEqual([994]);
      const published = (await metrics.auditStream.get()).values.find((x) => x.labels.result === 'published')?.value;
      expect(published).toBe(1_000);
    } finally {
      await trail.close();
      await redis.del(auditKeys(prefix).stream, auditKeys(prefix).seq);
      redis.disconnect();
    }
  });
});

async function metricValue(adminUrl: string, series: string): Promise<number> {
  const text = await (await request(`${adminUrl}/metrics`)).body.text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  if (line === undefined) throw new Error(`${series} is not exported`);
  return Number(line.slice(series.length + 1));
}
