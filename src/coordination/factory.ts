// Picks the coordination (Redis when SWITCHYARD_REDIS_URL is set, else each replica alone) and derives its settings from the environment.
import { hostname } from 'node:os';
import type { EnvConfig } from '../config/env.js';
import { SWY_ERR_ENV_INVALID } from '../errors.js';
import type { Coordination } from './coordination.js';
import { LocalCoordination } from './nop.js';
import { RedisCoordination, type RedisCoordinationDeps, type RedisCoordinationSettings } from './redis.js';
import { parseRedisUrl } from './redis-url.js';

/** Coordination options of a Switchyard instance; `redisUrl` absent: every replica decides alone. */
export interface CoordinationOptions {
  redisUrl?: string;
  /** Unique per replica (a pod name); default `<hostname>-<pid>`. */
  instanceId?: string;
  prefix?: string;
  intervalMs?: number;
  leaseMs?: number;
  timeoutMs?: number;
}

/** Default instance id: unique per process on a host, stable for the process' life. */
export function defaultInstanceId(): string {
  return `${hostname()}-${process.pid}`;
}

/** Validates the options (throwing SWY_ERR_ENV_INVALID) and returns the Redis settings, or null without a URL. */
export function redisSettings(options: CoordinationOptions | null | undefined): RedisCoordinationSettings | null {
  if (!options?.redisUrl) return null;
  const intervalMs = options.intervalMs ?? 250;
  const leaseMs = options.leaseMs ?? Math.max(2_000, 8 * intervalMs);
  const timeoutMs = options.timeoutMs ?? 200;
  if (leaseMs < 3 * intervalMs) throw new SWY_ERR_ENV_INVALID(`SWITCHYARD_LEASE_MS: must be at least 3 × SWITCHYARD_COORDINATION_MS (${3 * intervalMs}), so a live leader renews in time; got ${leaseMs}`);
  if (timeoutMs >= leaseMs / 2) throw new SWY_ERR_ENV_INVALID(`SWITCHYARD_REDIS_TIMEOUT_MS: must be under half of SWITCHYARD_LEASE_MS (${leaseMs / 2}); got ${timeoutMs}`);
  const prefix = options.prefix ?? 'swy';
  if (!/^[A-Za-z0-9:_.-]{1,64}$/.test(prefix)) throw new SWY_ERR_ENV_INVALID(`SWITCHYARD_REDIS_PREFIX: letters, digits and : _ . - only (at most 64); got ${JSON.stringify(prefix)}`);
  return { target: parseRedisUrl(options.redisUrl), instanceId: options.instanceId ?? defaultInstanceId(), prefix, intervalMs, leaseMs, timeoutMs };
}

/** Builds the coordination: Redis when a URL is given, else the nop (each replica decides alone). */
export function createCoordination<State>(options: CoordinationOptions | null | undefined, deps: RedisCoordinationDeps<State>): Coordination<State> {
  const settings = redisSettings(options);
  if (settings === null) return new LocalCoordination(options?.instanceId ?? defaultInstanceId());
  return new RedisCoordination(settings, deps);
}

/** Coordination options from the validated environment. */
export function coordinationOptionsFromEnv(env: Readonly<EnvConfig>): CoordinationOptions {
  return {
    ...(env.SWITCHYARD_REDIS_URL ? { redisUrl: env.SWITCHYARD_REDIS_URL } : {}),
    ...(env.SWITCHYARD_INSTANCE_ID ? { instanceId: env.SWITCHYARD_INSTANCE_ID } : {}),
    prefix: env.SWITCHYARD_REDIS_PREFIX,
    intervalMs: env.SWITCHYARD_COORDINATION_MS,
    ...(env.SWITCHYARD_LEASE_MS !== undefined ? { leaseMs: env.SWITCHYARD_LEASE_MS } : {}),
    timeoutMs: env.SWITCHYARD_REDIS_TIMEOUT_MS,
  };
}
