// Three `switchyard serve` processes behind a round-robin balancer share one Redis: pooled counts equal what the upstreams
// received, one leader acts, a failure rolls back all three within 2 s, a resume reaches all three, killing the leader
// hands its lease over, and stopping Redis leaves serving untouched while the replicas degrade and later rejoin.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { RouteAnalysis } from '../../src/control/controller.js';
import { startServe } from '../helpers/cli.js';
import { behave, startUpstream, type Upstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/wait-for.js';

const MACHINE_REDIS = 'redis://127.0.0.1:6379';
const TOKEN = 'replicas-test-token';
const LEASE_MS = 1_000;
const COORDINATION_MS = 250;

interface Replica {
  readonly id: string;
  readonly child: ChildProcessWithoutNullStreams;
  readonly dataUrl: string;
  readonly adminUrl: string;
  /** False once the balancer stopped sending to it (before it is killed). */
  inRotation: boolean;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address() as net.AddressInfo;
      server.close(() => resolve(address.port));
    });
  });
}

async function ping(url: string): Promise<string> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await client.ping();
  } catch {
    return 'down';
  } finally {
    client.disconnect();
  }
}

/** The machine's Redis, started the way .ci/run does when it is down. */
async function ensureMachineRedis(): Promise<void> {
  if ((await ping(MACHINE_REDIS)) === 'PONG') return;
  execFileSync('redis-server', ['--daemonize', 'yes', '--bind', '127.0.0.1', '--port', '6379', '--save', '', '--appendonly', 'no']);
  await waitFor('the machine Redis answering', async () => (await ping(MACHINE_REDIS)) === 'PONG', 10_000);
}

/** A redis-server child on `port` without persistence, so a restart starts empty (the harshest rejoin). */
async function startRedis(port: number): Promise<ChildProcessWithoutNullStreams> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
  child.stdout.resume();
  child.stderr.resume();
  try {
    await waitFor(`redis-server on ${port} answering`, async () => (await ping(`redis://127.0.0.1:${port}`)) === 'PONG', 10_000);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return child;
}

async function stopChild(child: ChildProcessWithoutNullStreams, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  await exited;
}

/** Starts replica `id` as a `switchyard serve` process on the given Redis and resolves once it listens. */
async function serve(id: string, policyFile: string, dir: string, redisUrl: string, prefix: string): Promise<Replica> {
  const started = await startServe(policyFile, {
    PATH: process.env.PATH,
    SWITCHYARD_LOG_LEVEL: 'info',
    SWITCHYARD_DATA_DIR: path.join(dir, id),
    SWITCHYARD_PAIRS_SINK: 'none',
    SWITCHYARD_ADMIN_TOKEN: TOKEN,
    SWITCHYARD_CONTROL_INTERVAL_MS: '100',
    SWITCHYARD_REDIS_URL: redisUrl,
    SWITCHYARD_REDIS_PREFIX: prefix,
    SWITCHYARD_INSTANCE_ID: id,
    SWITCHYARD_COORDINATION_MS: String(COORDINATION_MS),
    SWITCHYARD_LEASE_MS: String(LEASE_MS),
  }, id);
  return { id, child: started.child, dataUrl: started.dataUrl, adminUrl: started.adminUrl, inRotation: true };
}

/** Waits for every start; when one fails, stops the ones that came up before rethrowing, so no child is left behind. */
async function startAll(starts: Promise<Replica>[]): Promise<Replica[]> {
  const settled = await Promise.allSettled(starts);
  const started = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = settled.find((s) => s.status === 'rejected');
  if (failed) {
    await Promise.all(started.map((r) => stopChild(r.child)));
    throw failed.reason;
  }
  return started;
}

async function analysis(replica: Replica): Promise<RouteAnalysis> {
  return (await (await request(`${replica.adminUrl}/v1/routes/iris/analysis`)).body.json()) as RouteAnalysis;
}

async function metrics(replica: Replica): Promise<string> {
  return (await request(`${replica.adminUrl}/metrics`)).body.text();
}

/** Rollbacks a replica counted, over every reason (each reason's series exists from the start at 0). */
function rollbacksCounted(metricsText: string): number {
  return [...metricsText.matchAll(/^switchyard_rollbacks_total\{[^}]*\} (\d+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
}

async function rolledBack(replica: Replica): Promise<boolean> {
  return ((await (await request(`${replica.adminUrl}/v1/routes/iris`)).body.json()) as { rolledBack: boolean }).rolledBack;
}

/** Polls every replica (25 ms apart) until `condition` holds on each; resolves with the ms each took from `since`. */
async function eachUntil<T>(replicas: readonly Replica[], what: string, read: (r: Replica) => Promise<T>, condition: (value: T) => boolean, timeoutMs: number, since = performance.now()): Promise<number[]> {
  return Promise.all(replicas.map(async (replica) => {
    let last: T | undefined;
    return waitFor(`${replica.id}: ${what}`, async () => condition((last = await read(replica))), { timeoutMs, since, lastSeen: () => last });
  }));
}

function requestsOf(arms: RouteAnalysis['arms'] | null, role: string): number {
  return (arms ?? []).filter((a) => a.role === role).reduce((sum, a) => sum + a.requests, 0);
}

interface Load {
  sent: number;
  statuses: Map<number, number>;
  errors: string[];
  stop(): Promise<void>;
}

/** Closed-loop load spread round-robin over the replicas in rotation (a Kubernetes Service in miniature). */
function balance(replicas: readonly Replica[], concurrency = 9): Load {
  let running = true;
  let turn = 0;
  const load: Load = { sent: 0, statuses: new Map(), errors: [], stop: async () => {
    running = false;
    await Promise.all(workers);
  } };
  const worker = async () => {
    while (running) {
      const live = replicas.filter((r) => r.inRotation);
      const target = live[turn++ % live.length]!;
      const n = load.sent++;
      try {
        const res = await request(`${target.dataUrl}/v1/models/iris:predict`, { method: 'POST', body: '{"instances":[[1,2,3,4]]}', headers: { 'content-type': 'application/json', 'x-user-id': `user-${n}` } });
        await res.body.dump();
        load.statuses.set(res.statusCode, (load.statuses.get(res.statusCode) ?? 0) + 1);
      } catch (err) {
        load.errors.push(`${target.id}: ${(err as Error & { code?: string }).code ?? (err as Error).message}`);
      }
    }
  };
  const workers = Array.from({ length: concurrency }, worker);
  return load;
}

/** Sends exactly `n` requests round-robin, `concurrency` at a time. */
async function sendBalanced(replicas: readonly Replica[], n: number, concurrency = 12): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) {
      const i = next++;
      const res = await request(`${replicas[i % replicas.length]!.dataUrl}/v1/models/iris:predict`, { method: 'POST', body: '{}', headers: { 'x-user-id': `pool-${i}` } });
      await res.body.dump();
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
    }
  }));
  return statuses;
}

async function writePolicy(dir: string, champion: Upstream, challenger: Upstream): Promise<string> {
  const file = path.join(dir, 'policy.yaml');
  await writeFile(file, stringify({
    routes: [{
      name: 'iris',
      match: { pathPrefix: '/v1/models/iris' },
      champion: { name: 'iris-v1', url: champion.url },
      challengers: [{ name: 'iris-v2', url: challenger.url, mode: 'canary', percent: 50, fallback: true }],
      stickiness: { header: 'x-user-id' },
      // A/A phases must not roll back by chance while the test looks at counts; failures are gross.
      guardrails: { alpha: 0.01, latency: { ratio: 3, baselineRequests: 50 } },
    }],
  }));
  return file;
}

async function cleanKeys(url: string, prefix: string): Promise<void> {
  const client = new Redis(url);
  const keys = await client.keys(`${prefix}:*`);
  if (keys.length > 0) await client.del(...keys);
  client.disconnect();
}

describe('three replicas on one Redis', () => {
  const prefix = `swy-test-${randomUUID().slice(0, 8)}`;
  let champion: Upstream;
  let challenger: Upstream;
  let dir: string;
  const replicas: Replica[] = [];

  beforeAll(async () => {
    await ensureMachineRedis();
    champion = await startUpstream(behave.json('setosa'), { name: 'v1' });
    challenger = await startUpstream(behave.json('setosa'), { name: 'v2' });
    dir = await mkdtemp(path.join(tmpdir(), 'swy-replicas-'));
    const policyFile = await writePolicy(dir, champion, challenger);
    replicas.push(...(await startAll(['replica-a', 'replica-b', 'replica-c'].map((id) => serve(id, policyFile, dir, MACHINE_REDIS, prefix)))));
  });

  afterAll(async () => {
    await Promise.all(replicas.map((r) => stopChild(r.child)));
    await champion?.close();
    await challenger?.close();
    await cleanKeys(MACHINE_REDIS, prefix);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('pools evidence: every replica sees the counts the upstreams received, and exactly one replica leads', async () => {
    // A route is exchanged and led while it has traffic (docs/replicas.md, "Idle routes").
    expect(await sendBalanced(replicas, 30)).toEqual(new Map([[200, 30]]));
    await eachUntil(replicas, 'coordinated with a leader', analysis, (a) => a.coordination === 'ok' && a.leader !== null && (a.role === 'leader' || a.role === 'follower'), 10_000);
    const views = await Promise.all(replicas.map(analysis));
    expect(new Set(views.map((v) => v.leader)).size).toBe(1);
    expect(views.filter((v) => v.role === 'leader').map((v) => v.instanceId)).toEqual([views[0]!.leader]);
    const leaderGauges = await Promise.all(replicas.map(async (r) => /switchyard_leader\{route="iris"\} (\d)/.exec(await metrics(r))?.[1]));
    expect(leaderGauges.sort()).toEqual(['0', '0', '1']);

    expect(await sendBalanced(replicas, 900)).toEqual(new Map([[200, 900]]));
    const sentAt = performance.now();
    const times = await eachUntil(replicas, 'pooled counts equal the upstream counts', analysis, (a) =>
      requestsOf(a.counts.pooled, 'champion') === champion.count && requestsOf(a.counts.pooled, 'challenger') === challenger.count, 5_000, sentAt);
    console.info(`pooled counts converged ${times.map((t) => `${Math.round(t)} ms`).join(', ')} after the last response (champion ${champion.count}, challenger ${challenger.count})`);
    const after = await Promise.all(replicas.map(analysis));
    // Each replica saw about a third; the pool is the sum of the local counts, never more.
    const localChampion = after.map((a) => requestsOf(a.counts.local, 'champion'));
    expect(localChampion.reduce((a, b) => a + b, 0)).toBe(champion.count);
    for (const local of localChampion) expect(local).toBeLessThan(champion.count);
    expect(after.every((a) => a.counts.replicas === 3 && a.epoch === after[0]!.epoch)).toBe(true);
  });

  it('rolls back all three within 2 s of a challenger failure, decided once by the leader and applied by the others', async () => {
    const load = balance(replicas);
    try {
      await challenger.waitForRequests(challenger.count + 60);
      const leader = (await analysis(replicas[0]!)).leader!;
      const faultAt = performance.now();
      challenger.setBehaviour(behave.status(500));
      const times = await eachUntil(replicas, 'rolled back', rolledBack, (r) => r, 5_000, faultAt);
      console.info(`challenger failure -> rolled back on each replica: ${times.map((t) => `${Math.round(t)} ms`).join(', ')}`);
      expect(Math.max(...times)).toBeLessThan(2_000);

      const counted = await Promise.all(replicas.map(async (r) => rollbacksCounted(await metrics(r))));
      expect(counted.reduce((a, b) => a + b, 0)).toBe(1);
      const decider = replicas[counted.indexOf(1)]!;
      expect(decider.id).toBe(leader);
      // One fleet-wide trail (a Redis stream): every replica shows the decision and both applications, alike.
      type Events = { source: string; events: { who: string; action: string; at: string; instance?: string; detail: { role?: string; reason?: string } }[] };
      const trail = async (r: Replica) => (await (await request(`${r.adminUrl}/v1/events?route=iris&type=rollback,replica.sync&after=0`)).body.json()) as Events;
      await expect.poll(async () => (await trail(replicas[0]!)).events.length).toBeGreaterThanOrEqual(3);
      const trails = await Promise.all(replicas.map(trail));
      for (const t of trails) expect(t).toEqual({ ...trails[0], source: 'fleet' });
      const events = trails[0]!.events;
      const decision = events.find((e) => e.action === 'rollback')!;
      expect(decision).toMatchObject({ who: 'controller', instance: decider.id, detail: { role: 'leader' } });
      const applied = replicas.filter((r) => r !== decider).map((r) => events.find((e) => e.action === 'replica.sync' && e.instance === r.id)!);
      for (const event of applied) expect(event).toMatchObject({ who: `replica:${leader}`, detail: { reason: decision.detail.reason } });
      const spread = applied.map((e) => Date.parse(e.at) - Date.parse(decision.at));
      console.info(`rollback by ${leader} (${decision.detail.reason}) applied by the other replicas ${spread.map((s) => `${s} ms`).join(', ')} later`);
      for (const ms of spread) expect(ms).toBeLessThan(250);
    } finally {
      await load.stop();
    }
    expect(load.errors).toEqual([]);
    expect([...load.statuses.keys()]).toEqual([200]); // the champion answered every failed challenger call (fallback)
  });

  it('resumes all three when a person resumes the route on one replica, in a new epoch', async () => {
    challenger.setBehaviour(behave.json('setosa'));
    const before = (await analysis(replicas[0]!)).epoch!;
    const roles = await Promise.all(replicas.map(async (r) => (await analysis(r)).role));
    const follower = replicas[roles.indexOf('follower')]!;
    const resumed = await request(`${follower.adminUrl}/v1/routes/iris/resume`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(resumed.statusCode).toBe(200);
    await resumed.body.dump();
    const at = performance.now();
    const times = await eachUntil(replicas, 'resumed in a new epoch', async (r) => ({ rolledBack: await rolledBack(r), epoch: (await analysis(r)).epoch }), (s) => !s.rolledBack && s.epoch !== before && s.epoch !== null, 3_000, at);
    console.info(`resume on ${follower.id} reached every replica: ${times.map((t) => `${Math.round(t)} ms`).join(', ')}`);
    const epochs = await Promise.all(replicas.map(async (r) => (await analysis(r)).epoch));
    expect(new Set(epochs).size).toBe(1);
    expect(epochs[0]!.split('.')[1]).toBe(String(Number(before.split('.')[1]) + 1)); // generation + 1
    // A new experiment: every replica starts its counts afresh, and so do the upstreams' for the next test.
    for (const view of await Promise.all(replicas.map(analysis))) expect(requestsOf(view.counts.pooled, 'champion')).toBe(0);
    champion.clear();
    challenger.clear();
  });

  it('hands the lease over when the leader is killed, and keeps the dead replica’s evidence in the pool', async () => {
    await sendBalanced(replicas, 300);
    const leaderId = (await analysis(replicas[0]!)).leader!;
    const leader = replicas.find((r) => r.id === leaderId)!;
    const survivors = replicas.filter((r) => r !== leader);
    await eachUntil(survivors, 'pool includes the leader’s requests', analysis, (a) => requestsOf(a.counts.pooled, 'champion') === champion.count, 3_000);
    const pooledBefore = champion.count;
    leader.inRotation = false;
    const killedAt = performance.now();
    await stopChild(leader.child, 'SIGKILL');
    const times = await eachUntil(survivors, 'a new leader', analysis, (a) => a.leader !== null && a.leader !== leaderId, 5_000, killedAt);
    const views = await Promise.all(survivors.map(analysis));
    console.info(`leader ${leaderId} killed (SIGKILL) -> ${views[0]!.leader} leads after ${Math.round(Math.max(...times))} ms (lease ${LEASE_MS} ms, exchange every ${COORDINATION_MS} ms)`);
    expect(new Set(views.map((v) => v.leader)).size).toBe(1);
    expect(views.filter((v) => v.role === 'leader')).toHaveLength(1);
    expect(Math.max(...times)).toBeLessThan(LEASE_MS + 4 * COORDINATION_MS + 500);
    for (const view of views) expect(requestsOf(view.counts.pooled, 'champion')).toBeGreaterThanOrEqual(pooledBefore);
  });
});

describe('Redis stopped mid-run', () => {
  const prefix = `swy-test-${randomUUID().slice(0, 8)}`;
  let champion: Upstream;
  let challenger: Upstream;
  let dir: string;
  let port: number;
  let redis: ChildProcessWithoutNullStreams | null = null;
  const replicas: Replica[] = [];

  beforeAll(async () => {
    champion = await startUpstream(behave.json('setosa'), { name: 'v1' });
    challenger = await startUpstream(behave.json('setosa'), { name: 'v2' });
    dir = await mkdtemp(path.join(tmpdir(), 'swy-replicas-outage-'));
    port = await freePort();
    redis = await startRedis(port);
    const policyFile = await writePolicy(dir, champion, challenger);
    replicas.push(...(await startAll(['outage-a', 'outage-b', 'outage-c'].map((id) => serve(id, policyFile, dir, `redis://127.0.0.1:${port}`, prefix)))));
  });

  afterAll(async () => {
    await Promise.all(replicas.map((r) => stopChild(r.child)));
    if (redis) await stopChild(redis);
    await champion?.close();
    await challenger?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('keeps serving every request, degrades each replica, and rejoins without double counting', async () => {
    // A route is exchanged and led while it has traffic (docs/replicas.md, "Idle routes").
    expect(await sendBalanced(replicas, 30)).toEqual(new Map([[200, 30]]));
    await eachUntil(replicas, 'coordinated', analysis, (a) => a.coordination === 'ok' && a.leader !== null && (a.role === 'leader' || a.role === 'follower'), 10_000);
    const load = balance(replicas);
    try {
      await champion.waitForRequests(200);
      const stoppedAt = performance.now();
      await stopChild(redis!);
      redis = null;
      const degraded = await eachUntil(replicas, 'degraded', analysis, (a) => a.coordination === 'degraded' && a.role === 'degraded' && a.counts.pooled === null, 5_000, stoppedAt);
      console.info(`Redis stopped -> degraded on each replica after ${degraded.map((t) => `${Math.round(t)} ms`).join(', ')}`);
      for (const replica of replicas) expect(await metrics(replica)).toContain('switchyard_coordination_degraded 1');
      // Serving goes on while Redis is away.
      const during = load.sent;
      await expect.poll(() => load.sent - during, { timeout: 5_000, interval: 25 }).toBeGreaterThan(300);
      const restartedAt = performance.now();
      redis = await startRedis(port);
      const rejoined = await eachUntil(replicas, 'rejoined', analysis, (a) => a.coordination === 'ok' && a.leader !== null && a.counts.pooled !== null, 10_000, restartedAt);
      console.info(`Redis back (empty) -> rejoined on each replica after ${rejoined.map((t) => `${Math.round(t)} ms`).join(', ')}`);
      for (const replica of replicas) expect(await metrics(replica)).toContain('switchyard_coordination_degraded 0');
    } finally {
      await load.stop();
    }
    expect(load.errors).toEqual([]);
    expect([...load.statuses.keys()]).toEqual([200]);
    // The new Redis started empty: each replica re-sent its absolute totals, so the pool is exact, not doubled.
    await eachUntil(replicas, 'pooled counts equal the upstream counts', analysis, (a) =>
      requestsOf(a.counts.pooled, 'champion') === champion.count && requestsOf(a.counts.pooled, 'challenger') === challenger.count, 5_000);
    const views = await Promise.all(replicas.map(analysis));
    expect(views.filter((v) => v.role === 'leader')).toHaveLength(1);
  });

  it('rolls back on local breakers while degraded (each replica deciding alone), and the fleet holds the rollback after rejoining', async () => {
    await stopChild(redis!);
    redis = null;
    await eachUntil(replicas, 'degraded', analysis, (a) => a.role === 'degraded', 5_000);
    const load = balance(replicas);
    try {
      const faultAt = performance.now();
      challenger.setBehaviour(behave.status(500));
      const times = await eachUntil(replicas, 'rolled back alone', rolledBack, (r) => r, 5_000, faultAt);
      console.info(`degraded: each replica rolled back on its own after ${times.map((t) => `${Math.round(t)} ms`).join(', ')}`);
      redis = await startRedis(port);
      await eachUntil(replicas, 'rejoined', analysis, (a) => a.coordination === 'ok' && a.leader !== null, 10_000);
    } finally {
      await load.stop();
    }
    expect(load.errors).toEqual([]);
    expect([...load.statuses.keys()]).toEqual([200]);
    // Three decisions where one would do: the cost of deciding alone (docs/replicas.md).
    const counted = await Promise.all(replicas.map(async (r) => rollbacksCounted(await metrics(r))));
    expect(counted).toEqual([1, 1, 1]);
    const client = new Redis(`redis://127.0.0.1:${port}`);
    try {
      const record = await client.hget(`${prefix}:{iris}:control`, 'record');
      expect(JSON.parse(record ?? '{}')).toMatchObject({ rolledBack: true, gen: 0 });
    } finally {
      client.disconnect();
    }
  });

  it('treats a frozen Redis (connection open, no answers) like a lost one: commands time out, serving goes on', async () => {
    await eachUntil(replicas, 'coordinated', analysis, (a) => a.coordination === 'ok' && (a.role === 'leader' || a.role === 'follower'), 5_000);
    const load = balance(replicas);
    try {
      await champion.waitForRequests(champion.count + 100);
      const frozenAt = performance.now();
      redis!.kill('SIGSTOP');
      try {
        const degraded = await eachUntil(replicas, 'degraded', analysis, (a) => a.coordination === 'degraded', 5_000, frozenAt);
        console.info(`Redis frozen (SIGSTOP) -> degraded after ${degraded.map((t) => `${Math.round(t)} ms`).join(', ')} (command timeout 200 ms)`);
        const during = load.sent;
        await expect.poll(() => load.sent - during, { timeout: 5_000, interval: 25 }).toBeGreaterThan(200);
      } finally {
        redis!.kill('SIGCONT');
      }
      await eachUntil(replicas, 'rejoined', analysis, (a) => a.coordination === 'ok', 5_000);
    } finally {
      await load.stop();
    }
    expect(load.errors).toEqual([]);
    expect([...load.statuses.keys()]).toEqual([200]);
  });
});
