// The lease and fencing Lua scripts on a real Redis: one holder, renewal by the holder only, late writes of a deposed
// leader rejected (also when the same instance re-acquired), tokens and revisions monotonic across a data loss.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeKeys } from '../../src/coordination/keys.js';
import { CONTROL_SCRIPT, ControlWrite, LEASE_SCRIPT, LeaseStatus, parseLease, RELEASE_SCRIPT, RENEW_SCRIPT } from '../../src/coordination/lease.js';
import { waitFor } from '../helpers/wait-for.js';

const REDIS_URL = 'redis://127.0.0.1:6379';

/** Pings the machine's Redis; starts it the way .ci/run does when it is down. */
async function ensureMachineRedis(): Promise<void> {
  const probe = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    await probe.ping();
    return;
  } catch {
    execFileSync('redis-server', ['--daemonize', 'yes', '--bind', '127.0.0.1', '--port', '6379', '--save', '', '--appendonly', 'no']);
  } finally {
    probe.disconnect();
  }
  await waitFor('the machine Redis answering PING', async () => {
    const again = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    again.on('error', () => undefined);
    const answer = await again.connect().then(() => again.ping(), () => 'down');
    again.disconnect();
    return answer === 'PONG';
  }, { timeoutMs: 10_000, intervalMs: 50 });
}

interface Scripts extends Redis {
  swyLease(lease: string, fence: string, leaderState: string, instance: string, mine: string, ttlMs: number, stateJson: string, stateTtlMs: number): Promise<[number, string]>;
  swyRenew(lease: string, mine: string, ttlMs: number): Promise<number>;
  swyRelease(lease: string, mine: string): Promise<number>;
  swyControl(control: string, lease: string, expectRev: number, record: string, fence: string, channel: string, route: string): Promise<[number, string, string]>;
}

describe('lease and fencing scripts', () => {
  const prefix = `swy-test-lease-${randomUUID().slice(0, 8)}`;
  const keys = routeKeys(prefix, 'iris');
  const channel = `${prefix}:control`;
  let redis: Scripts;
  let subscriber: Redis;
  const messages: string[] = [];

  beforeAll(async () => {
    await ensureMachineRedis();
    redis = new Redis(REDIS_URL) as Scripts;
    redis.defineCommand('swyLease', { numberOfKeys: 3, lua: LEASE_SCRIPT });
    redis.defineCommand('swyRenew', { numberOfKeys: 1, lua: RENEW_SCRIPT });
    redis.defineCommand('swyRelease', { numberOfKeys: 1, lua: RELEASE_SCRIPT });
    redis.defineCommand('swyControl', { numberOfKeys: 2, lua: CONTROL_SCRIPT });
    subscriber = new Redis(REDIS_URL);
    await subscriber.subscribe(channel);
    subscriber.on('message', (_channel: string, message: string) => messages.push(message));
  });

  afterAll(async () => {
    const leftovers = await redis.keys(`${prefix}:*`);
    if (leftovers.length > 0) await redis.del(...leftovers);
    redis.disconnect();
    subscriber.disconnect();
  });

  const lease = (instance: string, mine: string, ttlMs = 5_000) => redis.swyLease(keys.lease, keys.fence, keys.leaderState, instance, mine, ttlMs, '', 60_000);
  const record = (by: string, rolledBack: boolean) => JSON.stringify({ gen: 0, rolledBack, paused: false, override: null, by, reason: rolledBack ? 'error_rate' : 'seed' });
  const write = (expectRev: number, by: string, rolledBack: boolean, fence = '') => redis.swyControl(keys.control, keys.lease, expectRev, record(by, rolledBack), fence, channel, 'iris');
  const gone = (key: string) => expect.poll(() => redis.exists(key), { timeout: 3_000, interval: 5 }).toBe(0);

  it('grants the lease to one instance, names the holder to the others, and renews it only for the holder', async () => {
    const [status, value] = await lease('pod-a', '');
    expect(status).toBe(LeaseStatus.Acquired);
    expect(parseLease(value)?.instance).toBe('pod-a');
    expect(await lease('pod-b', '')).toEqual([LeaseStatus.HeldByOther, value]);
    expect(await lease('pod-a', value)).toEqual([LeaseStatus.Renewed, value]);
    expect(await redis.swyRenew(keys.lease, `pod-b|${parseLease(value)!.token}`, 5_000)).toBe(0);
    expect(await redis.swyRelease(keys.lease, 'pod-b|1')).toBe(0);
    expect(await redis.swyRelease(keys.lease, value)).toBe(1);
    expect(await redis.exists(keys.lease)).toBe(0);
  });

  it('rejects the late write of a leader whose lease expired, even after the same instance re-acquired', async () => {
    const [, seedRev] = await write(0, 'pod-a', false);
    const [, first] = await lease('pod-a', '', 50);
    await gone(keys.lease); // pod-a "paused" past its lease
    const [acquired, other] = await lease('pod-b', '');
    expect(acquired).toBe(LeaseStatus.Acquired);
    const late = await write(Number(seedRev), 'pod-a', true, first);
    expect(late[0]).toBe(ControlWrite.FenceRejected);
    expect(JSON.parse(late[2])).toMatchObject({ rolledBack: false, by: 'pod-a' });
    const published = messages.length;
    const [code, rev] = await write(Number(seedRev), 'pod-b', true, other);
    expect(code).toBe(ControlWrite.Written);
    await expect.poll(() => messages.length, { timeout: 2_000, interval: 5 }).toBe(published + 1);
    expect(JSON.parse(messages.at(-1)!)).toEqual({ route: 'iris', rev: Number(rev), record: JSON.parse(record('pod-b', true)) });

    await redis.swyRelease(keys.lease, other);
    const [, again] = await lease('pod-a', '');
    expect(parseLease(again)!.token).toBeGreaterThan(parseLease(first)!.token);
    expect((await write(Number(rev), 'pod-a', false, first))[0]).toBe(ControlWrite.FenceRejected);
    expect((await write(Number(rev), 'pod-a', false, again))[0]).toBe(ControlWrite.Written);
  });

  it('returns the current record on a stale revision (compare-and-set)', async () => {
    const current = await redis.hgetall(keys.control);
    const [code, rev, text] = await write(Number(current.rev) - 1, 'pod-c', true);
    expect(code).toBe(ControlWrite.RevisionMismatch);
    expect(rev).toBe(current.rev);
    expect(text).toBe(current.record);
  });

  it('keeps tokens and revisions increasing when Redis loses its data', async () => {
    const token = parseLease((await redis.get(keys.lease))!)!.token;
    const rev = Number(await redis.hget(keys.control, 'rev'));
    await redis.del(keys.lease, keys.fence, keys.control); // what a restart without persistence does
    const [, value] = await lease('pod-d', '');
    expect(parseLease(value)!.token).toBeGreaterThan(token);
    const [code, newRev] = await write(0, 'pod-d', false);
    expect(code).toBe(ControlWrite.Written);
    expect(Number(newRev)).toBeGreaterThan(rev);
  });
});
