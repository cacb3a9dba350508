// Coordination on real Redis Sentinel and Cluster topologies: a split change reaches the other replica by pub/sub, one
// replica leads through the lease script, a clean shutdown hands the lease over, and the replicas follow a Sentinel
// failover and a Cluster failover to the promoted master (replicas.test.ts covers a single node).
import { randomUUID } from 'node:crypto';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RouteAnalysis } from '../../src/control/controller.js';
import { controlChannel, routeKeys } from '../../src/coordination/keys.js';
import { parseLease } from '../../src/coordination/lease.js';
import { describeTarget, parseRedisUrl } from '../../src/coordination/redis-url.js';
import { startCluster, startSentinel, type ClusterTopology, type RedisTopology } from '../helpers/redis-topologies.js';
import { routePolicy, startSwitchyard, type RunningSwitchyard } from '../helpers/switchyard.js';
import { behave, startUpstream, type Upstream } from '../helpers/upstream.js';

const TOKEN = 'topologies-test-token';
/** Cadence of a replica that must learn of a change by pub/sub: its next exchange comes long after the test's deadline. */
const SLOW_MS = 30_000;
/** Bound on the waits below, far under SLOW_MS, so no periodic exchange can stand in for a missed message. */
const WAIT_MS = 3_000;

/** What every test of this file needs: a topology, two upstreams, and the replicas to close after each test. */
interface Fixture<T extends RedisTopology = RedisTopology> {
  topology: T;
  champion: Upstream;
  challenger: Upstream;
  readonly cleanup: (() => Promise<void>)[];
}

/** Starts the topology and the upstreams before the block's tests; stops replicas after each test and the rest after all. */
function useFixture<T extends RedisTopology>(start: () => Promise<T>): Fixture<T> {
  // The other fields are set by beforeAll, before any test reads them.
  const fixture = { cleanup: [] } as unknown as Fixture<T>;
  beforeAll(async () => {
    const started = performance.now();
    fixture.topology = await start();
    console.info(`${describeTarget(parseRedisUrl(fixture.topology.url))} up in ${Math.round(performance.now() - started)} ms`);
    fixture.champion = await startUpstream(behave.json('setosa'), { name: 'v1' });
    fixture.challenger = await startUpstream(behave.json('setosa'), { name: 'v2' });
  });
  afterEach(async () => {
    for (const fn of fixture.cleanup.splice(0).reverse()) await fn();
  });
  afterAll(async () => {
    for (const fn of fixture.cleanup.splice(0).reverse()) await fn();
    await fixture.champion?.close();
    await fixture.challenger?.close();
    await fixture.topology?.stop();
  });
  return fixture;
}

/** A Switchyard coordinated through the topology, built by buildApp from the URL exactly as `switchyard serve` does. */
async function replica(f: Fixture, prefix: string, instanceId: string, intervalMs: number): Promise<RunningSwitchyard> {
  const swy = await startSwitchyard(routePolicy(f.champion.url, [{ url: f.challenger.url, percent: 10 }]), {
    adminTokens: [{ name: 'ci', secret: TOKEN }],
    controlIntervalMs: 50,
    pairs: { sink: 'none' },
    coordination: { redisUrl: f.topology.url, prefix, instanceId, intervalMs, leaseMs: Math.max(1_000, 3 * intervalMs) },
  });
  f.cleanup.push(() => swy.close());
  // A request every 100 ms, as long as the replica runs: a route is exchanged and led only while it has traffic
  // (docs/replicas.md, "Idle routes"), and these tests are about leading and following.
  let running = true;
  const trickle = (async () => {
    while (running) {
      const res = await request(`${swy.dataUrl}/v1/models/iris:predict`, { method: 'POST', body: '{}' }).catch(() => null);
      await res?.body.dump();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  f.cleanup.push(async () => {
    running = false;
    await trickle;
  });
  return swy;
}

const idOf = (swy: RunningSwitchyard): string => swy.app.coordination.instanceId;

async function analysis(swy: RunningSwitchyard): Promise<RouteAnalysis> {
  return (await (await request(`${swy.adminUrl}/v1/routes/iris/analysis`)).body.json()) as RouteAnalysis;
}

async function percentOf(swy: RunningSwitchyard): Promise<number | undefined> {
  const view = (await (await request(`${swy.adminUrl}/v1/routes/iris`)).body.json()) as { challengers: { percent: number }[] };
  return view.challengers[0]?.percent;
}

async function setPercent(swy: RunningSwitchyard, percent: number): Promise<void> {
  const res = await request(`${swy.adminUrl}/v1/routes/iris/split`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ challenger: 'iris-v2', percent }),
  });
  const body = await res.body.text();
  expect(res.statusCode, body).toBe(200);
}

/** `role:leader` of each replica, e.g. ['leader:a', 'follower:a']. */
async function roles(replicas: readonly RunningSwitchyard[]): Promise<string[]> {
  return (await Promise.all(replicas.map(analysis))).map((a) => `${a.coordination}/${a.role}:${a.leader}`);
}

/** Waits until both replicas are coordinated and agree on one leader; returns it. */
async function oneLeader(replicas: readonly RunningSwitchyard[], timeout = WAIT_MS): Promise<string> {
  const expected = (leader: string) => replicas.map((r) => `ok/${idOf(r) === leader ? 'leader' : 'follower'}:${leader}`);
  await expect.poll(async () => {
    const now = await roles(replicas);
    const leader = /:(.+)$/.exec(now[0]!)?.[1] ?? '';
    return now.every((r, i) => r === expected(leader)[i]) ? 'one leader' : now;
  }, { timeout, interval: 10 }).toBe('one leader');
  return /:(.+)$/.exec((await roles(replicas))[0]!)![1]!;
}

/** Subscribers of `channel` across the topology (on Cluster, over every node: a subscriber may sit on a replica). */
async function subscribers(topology: RedisTopology, channel: string): Promise<number> {
  if (topology.kind === 'sentinel') return ((await topology.client().pubsub('NUMSUB', channel)) as [string, number])[1];
  return topology.subscribers(channel);
}

/** The replicated control record as stored in the topology. */
async function storedRecord(topology: RedisTopology, prefix: string): Promise<unknown> {
  return JSON.parse((await topology.client().hget(routeKeys(prefix, 'iris').control, 'record')) ?? 'null');
}

/**
 * Changes the split on `from` and expects `to`, which exchanges only every SLOW_MS, to apply it within WAIT_MS: that
 * can only be the pub/sub message the control script publishes.
 */
async function splitReachesByPubSub(f: Fixture, prefix: string, from: RunningSwitchyard, to: RunningSwitchyard, percent: number): Promise<void> {
  await expect.poll(() => subscribers(f.topology, controlChannel(prefix)), { timeout: WAIT_MS }).toBe(2);
  expect(await percentOf(to)).not.toBe(percent);
  await setPercent(from, percent);
  const at = performance.now();
  await expect.poll(() => percentOf(to), { timeout: WAIT_MS, interval: 10 }).toBe(percent);
  console.info(`${f.topology.kind}: split change on ${idOf(from)} applied on ${idOf(to)} after ${Math.round(performance.now() - at)} ms (its own exchange runs every ${SLOW_MS} ms)`);
  expect(await storedRecord(f.topology, prefix)).toMatchObject({ by: idOf(from), override: { challengers: [{ name: 'iris-v2', percent }] } });
}

describe.each<[string, () => Promise<RedisTopology>]>([
  // A non-zero database, so a URL whose /db were ignored would write where the inspection client does not look; and
  // passwords on the master and on the sentinel, with characters the URL must percent-encode.
  ['Sentinel', () => startSentinel({ db: 2, password: 'p@ss/w:rd', sentinelPassword: 's3nt#nel&?' })],
  ['Cluster', () => startCluster()],
])('coordination through Redis %s', (_name, start) => {
  const f = useFixture(start);

  it('delivers a split change made on one replica to the other by pub/sub, and stores it in the topology', async () => {
    const prefix = `swy-topo-${randomUUID().slice(0, 8)}`;
    const fast = await replica(f, prefix, 'split-fast', 50);
    // The slow replica exchanges once at its start and then only every SLOW_MS.
    const slow = await replica(f, prefix, 'split-slow', SLOW_MS);
    await expect.poll(async () => (await Promise.all([fast, slow].map(analysis))).map((a) => a.coordination), { timeout: WAIT_MS }).toEqual(['ok', 'ok']);
    expect(await percentOf(slow)).toBe(10);
    await splitReachesByPubSub(f, prefix, fast, slow, 30);
  });

  it('elects one leader through the lease script and hands the lease over when the leader shuts down', async () => {
    const prefix = `swy-topo-${randomUUID().slice(0, 8)}`;
    const replicas = [await replica(f, prefix, 'lease-a', 50), await replica(f, prefix, 'lease-b', 50)];
    const leaderId = await oneLeader(replicas);
    // The lease the replicas agree on is the one held in the topology, with a fencing token.
    const lease = parseLease((await f.topology.client().get(routeKeys(prefix, 'iris').lease)) ?? '');
    expect(lease?.instance).toBe(leaderId);

    const leader = replicas.find((r) => idOf(r) === leaderId)!;
    const follower = replicas.find((r) => r !== leader)!;
    const closedAt = performance.now();
    await leader.close();
    // close() releases the lease (compare-and-delete), so the follower takes it at its next exchange, not after expiry.
    await expect.poll(async () => (await roles([follower]))[0], { timeout: WAIT_MS, interval: 10 }).toBe(`ok/leader:${idOf(follower)}`);
    console.info(`${f.topology.kind}: leader ${leaderId} shut down -> ${idOf(follower)} leads after ${Math.round(performance.now() - closedAt)} ms`);
    const handedOver = parseLease((await f.topology.client().get(routeKeys(prefix, 'iris').lease)) ?? '');
    expect(handedOver?.instance).toBe(idOf(follower));
    expect(handedOver!.token).toBeGreaterThan(lease!.token);
  });
});

/**
 * `<name>-fast` (exchanging every 50 ms), once it leads, and `<name>-slow` (every SLOW_MS), once it has exchanged the
 * route: it knows the leader within WAIT_MS, long before its first periodic exchange, because a route is exchanged as
 * soon as the controller links it. That first exchange learns the epoch, so the slow replica has no pooled read (and
 * reports the route degraded) until its next one.
 */
async function fastLeaderAndSlowReplica(f: Fixture, prefix: string, name: string): Promise<{ fast: RunningSwitchyard; slow: RunningSwitchyard }> {
  const fast = await replica(f, prefix, `${name}-fast`, 50);
  await expect.poll(async () => (await roles([fast]))[0], { timeout: WAIT_MS, interval: 10 }).toBe(`ok/leader:${name}-fast`);
  const slow = await replica(f, prefix, `${name}-slow`, SLOW_MS);
  await expect.poll(async () => (await roles([slow]))[0], { timeout: WAIT_MS, interval: 10 }).toBe(`ok/degraded:${name}-fast`);
  return { fast, slow };
}

describe('a Sentinel failover', () => {
  const f = useFixture(() => startSentinel({ replica: true }));

  it('moves both replicas to the promoted master: they lead and follow again, and a split change still arrives by pub/sub', async () => {
    const prefix = `swy-topo-${randomUUID().slice(0, 8)}`;
    // Before the failover the slow replica has exchanged the route and knows its epoch, so its exchange on 'ready' is enough to follow.
    const { fast, slow } = await fastLeaderAndSlowReplica(f, prefix, 'failover');
    const before = f.topology.master;

    const killedAt = performance.now();
    const promoted = await f.topology.killMaster();
    const promotedAfter = performance.now() - killedAt;
    expect(promoted.port).not.toBe(before.port);
    // ioredis asks the sentinel again on reconnect; the slow replica also rejoins at once (on 'ready'), not at its cadence.
    await oneLeader([fast, slow], 5_000);
    console.info(`master killed -> sentinel promoted the replica after ${Math.round(promotedAfter)} ms; both replicas coordinated again after ${Math.round(performance.now() - killedAt)} ms`);
    const lease = parseLease((await f.topology.client().get(routeKeys(prefix, 'iris').lease)) ?? '');
    expect(lease?.instance).toBe((await analysis(fast)).leader);

    await splitReachesByPubSub(f, prefix, fast, slow, 40);
  });
});

describe('Cluster failovers', () => {
  // Two replicas per master, so a second master can still fail over after the first one died.
  const f = useFixture<ClusterTopology>(() => startCluster({ replicas: 2 }));

  it('moves the replicas to the promoted master of the route\'s slot and to a new subscriber node: the leader leads again, and split changes still arrive by pub/sub', async () => {
    const prefix = `swy-topo-${randomUUID().slice(0, 8)}`;
    const { fast, slow } = await fastLeaderAndSlowReplica(f, prefix, 'cluster');
    const leaseKey = routeKeys(prefix, 'iris').lease;
    const before = parseLease((await f.topology.client().get(leaseKey)) ?? '');
    expect(before?.instance).toBe('cluster-fast');

    // 1. The master of the route's slot dies. Every key of the route shares one hash tag, so it held the lease, the
    // stats and the control record. The fast replica's commands fail until ioredis learns the new slot owner; then it
    // leads again. (Unlike Sentinel, a Cluster client does not reconnect as a whole: the slow replica, which exchanges
    // only every SLOW_MS, learns the new owner at its next exchange, so only its link is checked.)
    const routeMaster = await f.topology.masterOf(leaseKey);
    let killedAt = performance.now();
    // While the cluster fails over, the fast replica reports the route degraded and keeps serving its split.
    const seen = new Set<string>();
    const statuses: number[] = [];
    let failingOver = true;
    const sampling = (async () => {
      while (failingOver) {
        seen.add((await analysis(fast)).coordination);
        const res = await request(`${fast.dataUrl}/v1/models/iris:predict`, { method: 'POST', body: '{}' });
        await res.body.dump();
        statuses.push(res.statusCode);
      }
    })();
    const { promoted } = await f.topology.kill(routeMaster).finally(() => (failingOver = false));
    const promotedAfter = performance.now() - killedAt;
    await sampling;
    expect(promoted).not.toBeNull();
    expect(seen).toContain('degraded');
    expect(statuses.length).toBeGreaterThan(0);
    expect(new Set(statuses)).toEqual(new Set([200]));
    await expect.poll(async () => (await roles([fast]))[0], { timeout: 15_000, interval: 10 }).toBe('ok/leader:cluster-fast');
    expect((await analysis(slow)).coordination).toBe('ok');
    console.info(`cluster: master ${routeMaster.port} of the route's slot killed -> replica ${promoted!.port} promoted after ${Math.round(promotedAfter)} ms; the leader coordinated again after ${Math.round(performance.now() - killedAt)} ms`);
    // The lease lives on the promoted node now, held by the leader, and its fencing token never went back.
    const after = parseLease((await f.topology.client().get(leaseKey)) ?? '');
    expect(after?.instance).toBe('cluster-fast');
    expect(after!.token).toBeGreaterThanOrEqual(before!.token);
    await splitReachesByPubSub(f, prefix, fast, slow, 40);

    // 2. The node the slow replica listens on for control changes dies: ioredis subscribes again on another node, and
    // the next change still arrives by pub/sub, long before the slow replica's own exchange.
    const listening = await f.topology.nodeWithSubscriber('switchyard:cluster-slow:sub');
    expect(listening).not.toBeNull();
    killedAt = performance.now();
    await f.topology.kill(listening!);
    console.info(`cluster: node ${listening!.port} holding cluster-slow's subscription killed; cluster ok again after ${Math.round(performance.now() - killedAt)} ms`);
    await expect.poll(() => f.topology.nodeWithSubscriber('switchyard:cluster-slow:sub'), { timeout: 15_000, interval: 50 }).not.toBeNull();
    await expect.poll(async () => (await roles([fast]))[0], { timeout: 15_000, interval: 10 }).toBe('ok/leader:cluster-fast');
    await splitReachesByPubSub(f, prefix, fast, slow, 60);
  });
});
