// Parses SWITCHYARD_REDIS_URL into a single-node, Sentinel or Cluster connection target for ioredis.
import { SWY_ERR_ENV_INVALID } from '../errors.js';

/** Where Redis is. Passwords stay in here and out of logs (see describeTarget). */
export type RedisTarget =
  | { readonly kind: 'single'; readonly url: string; readonly tls: boolean }
  | { readonly kind: 'sentinel'; readonly sentinels: readonly { host: string; port: number }[]; readonly name: string; readonly db: number; readonly username?: string; readonly password?: string; readonly sentinelPassword?: string; readonly tls: boolean }
  | { readonly kind: 'cluster'; readonly nodes: readonly { host: string; port: number }[]; readonly username?: string; readonly password?: string; readonly tls: boolean };

const usage = 'use redis://[user:password@]host:6379[/db], rediss://… for TLS, redis+sentinel://[:password@]host:26379[,host:26379…]/<master>[/db][?sentinelPassword=…] or redis+cluster://[:password@]host:6379[,host:6379…]';

function invalid(raw: string, why: string): Error {
  // Never echo the URL itself: it may carry a password.
  return new SWY_ERR_ENV_INVALID(`SWITCHYARD_REDIS_URL: ${why} (${usage}); got a value starting with ${JSON.stringify(raw.slice(0, raw.indexOf('://') + 3))}`);
}

function hosts(raw: string, list: string, defaultPort: number): { host: string; port: number }[] {
  return list.split(',').map((entry) => {
    const match = /^(\[[^\]]+\]|[^:]+)(?::(\d{1,5}))?$/.exec(entry.trim());
    if (!match) throw invalid(raw, `bad host "${entry}"`);
    const port = match[2] === undefined ? defaultPort : Number(match[2]);
    if (port < 1 || port > 65_535) throw invalid(raw, `bad port in "${entry}"`);
    return { host: match[1]!.replace(/^\[|\]$/g, ''), port };
  });
}

/** Parses the URL; throws SWY_ERR_ENV_INVALID (without the secret) when it is not one of the accepted forms. */
export function parseRedisUrl(raw: string): RedisTarget {
  const scheme = /^([a-z+]+):\/\//.exec(raw)?.[1];
  switch (scheme) {
    case 'redis':
    case 'rediss': {
      try {
        new URL(raw);
      } catch {
        throw invalid(raw, 'not a valid URL');
      }
      return { kind: 'single', url: raw, tls: scheme === 'rediss' };
    }
    case 'redis+sentinel':
    case 'rediss+sentinel':
    case 'redis+cluster':
    case 'rediss+cluster': {
      // URL() cannot hold a host list, so split by hand: [userinfo@]hosts[/path][?query].
      const rest = raw.slice(scheme.length + 3);
      const at = rest.lastIndexOf('@', rest.search(/[/?]|$/));
      const userinfo = at >= 0 ? rest.slice(0, at) : '';
      const afterAuth = at >= 0 ? rest.slice(at + 1) : rest;
      const [beforeQuery = '', query = ''] = afterAuth.split('?', 2);
      const [hostList = '', ...path] = beforeQuery.split('/');
      if (hostList === '') throw invalid(raw, 'no host');
      const colon = userinfo.indexOf(':');
      const username = colon >= 0 ? decodeURIComponent(userinfo.slice(0, colon)) : decodeURIComponent(userinfo);
      const password = colon >= 0 ? decodeURIComponent(userinfo.slice(colon + 1)) : undefined;
      const auth = { ...(username ? { username } : {}), ...(password ? { password } : {}) };
      const tls = scheme.startsWith('rediss');
      if (scheme.endsWith('+cluster')) {
        if (path.some((p) => p !== '')) throw invalid(raw, 'Redis Cluster has no databases; drop the path');
        return { kind: 'cluster', nodes: hosts(raw, hostList, 6379), ...auth, tls };
      }
      const name = path[0] ?? '';
      if (name === '') throw invalid(raw, 'the Sentinel master name is missing, e.g. redis+sentinel://sentinel:26379/mymaster');
      const db = path[1] === undefined || path[1] === '' ? 0 : Number(path[1]);
      if (!Number.isInteger(db) || db < 0) throw invalid(raw, `bad database "${path[1]}"`);
      const sentinelPassword = new URLSearchParams(query).get('sentinelPassword') ?? undefined;
      return { kind: 'sentinel', sentinels: hosts(raw, hostList, 26379), name: decodeURIComponent(name), db, ...auth, ...(sentinelPassword ? { sentinelPassword } : {}), tls };
    }
    default:
      throw invalid(raw, 'unknown scheme');
  }
}

/** A log-safe description of the target (no credentials). */
export function describeTarget(target: RedisTarget): string {
  switch (target.kind) {
    case 'single': {
      const url = new URL(target.url);
      return `${url.protocol}//${url.host}${url.pathname}`;
    }
    case 'sentinel':
      return `sentinel ${target.sentinels.map((s) => `${s.host}:${s.port}`).join(',')} master ${target.name} db ${target.db}`;
    case 'cluster':
      return `cluster ${target.nodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
  }
}
