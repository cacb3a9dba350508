// Keys, epochs, lease values and Redis URLs: what every replica must derive identically, and what must never leak.
import { describe, expect, it } from 'vitest';
import { routeSchema } from '../../../src/config/policy-schema.js';
import { controlChannel, epochOf, routeKeys, routeVersion } from '../../../src/coordination/keys.js';
import { parseLease } from '../../../src/coordination/lease.js';
import { describeTarget, parseRedisUrl } from '../../../src/coordination/redis-url.js';
import { redisSettings } from '../../../src/coordination/factory.js';

const route = (challengerPercent: number) => routeSchema.parse({
  name: 'iris',
  match: { pathPrefix: '/v1/models/iris' },
  champion: { name: 'iris-v1', url: 'http://a:1' },
  challengers: [{ name: 'iris-v2', url: 'http://b:1', mode: 'canary', percent: challengerPercent }],
});

describe('epochs and keys', () => {
  it('derives the same route version from equal policies on different replicas, and another one after a change', () => {
    expect(routeVersion(route(10))).toBe(routeVersion(route(10)));
    expect(routeVersion(route(10))).not.toBe(routeVersion(route(20)));
    expect(routeVersion(route(10))).toMatch(/^[0-9a-f]{10}$/);
  });

  it('puts version, generation and challenger in the epoch, so a resume or a new challenger never shares statistics', () => {
    const epochs = new Set([epochOf('v', 0, 'a'), epochOf('v', 1, 'a'), epochOf('v', 0, 'b'), epochOf('w', 0, 'a'), epochOf('v', 0, null)]);
    expect(epochs.size).toBe(5);
  });

  it('gives every key of a route one Cluster hash tag', () => {
    const keys = routeKeys('swy', 'iris');
    const tags = [keys.control, keys.lease, keys.fence, keys.leaderState, keys.stats('e')].map((k) => /\{([^}]*)\}/.exec(k)?.[1]);
    expect(new Set(tags)).toEqual(new Set(['iris']));
    expect(controlChannel('swy')).toBe('swy:control');
  });
});

describe('parseLease', () => {
  it('splits instance and token at the last bar', () => {
    expect(parseLease('pod-a|1795423301395366')).toEqual({ instance: 'pod-a', token: 1795423301395366 });
    expect(parseLease('a|b|7')).toEqual({ instance: 'a|b', token: 7 });
  });
  it.each(['', 'pod', '|5', 'pod|', 'pod|x', 'pod|-1', 'pod|0'])('rejects %j', (value) => {
    expect(parseLease(value)).toBeNull();
  });
});

describe('parseRedisUrl', () => {
  it('accepts a single node, TLS, Sentinel and Cluster', () => {
    expect(parseRedisUrl('redis://:pw@redis:6379/2')).toEqual({ kind: 'single', url: 'redis://:pw@redis:6379/2', tls: false });
    expect(parseRedisUrl('rediss://redis:6380').tls).toBe(true);
    expect(parseRedisUrl('redis+sentinel://:s%40cret@s1:26379,s2/mymaster/1?sentinelPassword=sp')).toEqual({
      kind: 'sentinel', sentinels: [{ host: 's1', port: 26379 }, { host: 's2', port: 26379 }], name: 'mymaster', db: 1, password: 's@cret', sentinelPassword: 'sp', tls: false,
    });
    expect(parseRedisUrl('rediss+cluster://user:pw@n1:7000,[::1]:7001')).toEqual({ kind: 'cluster', nodes: [{ host: 'n1', port: 7000 }, { host: '::1', port: 7001 }], username: 'user', password: 'pw', tls: true });
  });

  it('describes a target without its credentials', () => {
    for (const url of ['redis://:hunter2@redis:6379/0', 'redis+sentinel://:hunter2@s1:26379/m', 'redis+cluster://:hunter2@n1:7000']) {
      expect(describeTarget(parseRedisUrl(url))).not.toContain('hunter2');
    }
  });

  it.each([
    ['http://redis:6379', 'unknown scheme'],
    ['redis+sentinel://s1:26379', 'master name is missing'],
    ['redis+cluster://n1:7000/0', 'no databases'],
    ['redis+cluster://:hunter2@n1:99999', 'bad port'],
  ])('rejects %s with SWY_ERR_ENV_INVALID and no secret', (url, message) => {
    let error: (Error & { code?: string }) | undefined;
    try {
      parseRedisUrl(url);
    } catch (err) {
      error = err as Error & { code?: string };
    }
    expect(error?.code).toBe('SWY_ERR_ENV_INVALID');
    expect(error?.message).toContain(message);
    expect(error?.message).not.toContain('hunter2');
  });

  it('checks the timing settings against each other', () => {
    expect(redisSettings({})).toBeNull();
    expect(redisSettings({ redisUrl: 'redis://r:6379', instanceId: 'a' })).toMatchObject({ intervalMs: 250, leaseMs: 2_000, timeoutMs: 200, prefix: 'swy' });
    expect(() => redisSettings({ redisUrl: 'redis://r:6379', intervalMs: 500, leaseMs: 1_000 })).toThrow(/SWITCHYARD_LEASE_MS/);
    expect(() => redisSettings({ redisUrl: 'redis://r:6379', leaseMs: 1_000, timeoutMs: 600 })).toThrow(/SWITCHYARD_REDIS_TIMEOUT_MS/);
  });
});
