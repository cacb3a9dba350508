// Redis key names and the experiment epoch: every key of a route shares one hash tag, so Lua scripts work on Cluster.
import { createHash } from 'node:crypto';
import type { RoutePolicy } from '../config/policy-schema.js';

/** The Redis keys of one route. */
export interface RouteKeys {
  /** Hash {rev, record}: the replicated rollback, pause and operator override (control-sync.ts). */
  readonly control: string;
  /** The leader's lease: `<instance>|<fencing token>`, with a PX expiry. */
  readonly lease: string;
  /** Fencing counter behind the tokens (INCR, floored by Redis TIME so it survives a data loss). */
  readonly fence: string;
  /** The leader's rollout state (phase, step), so a new leader continues where the old one stopped. */
  readonly leaderState: string;
  /** Hash of per-replica cumulative window totals for one experiment epoch. */
  stats(epoch: string): string;
}

/**
 * Keys of `route` under `prefix`, e.g. `swy:{iris}:lease`. The Cluster hash tag is `{route}` alone: every key one Lua
 * script or pipeline touches hashes to the same slot (no CROSSSLOT), and the names stay those a single node always used.
 */
export function routeKeys(prefix: string, route: string): RouteKeys {
  const tag = `${prefix}:{${route}}`;
  return {
    control: `${tag}:control`,
    lease: `${tag}:lease`,
    fence: `${tag}:fence`,
    leaderState: `${tag}:leader`,
    stats: (epoch) => `${tag}:stats:${epoch}`,
  };
}

/** The pub/sub channel carrying control changes (rollback, resume, pause, split) of every route. */
export function controlChannel(prefix: string): string {
  return `${prefix}:control`;
}

const versions = new WeakMap<RoutePolicy, string>();

/**
 * Content hash of one route's policy (10 hex digits). Replicas loading the same file agree on it; a change to another
 * route leaves it alone, so an unrelated reload does not restart this route's experiment across the fleet.
 */
export function routeVersion(policy: RoutePolicy): string {
  let version = versions.get(policy);
  if (version === undefined) {
    version = createHash('sha256').update(JSON.stringify(policy)).digest('hex').slice(0, 10);
    versions.set(policy, version);
  }
  return version;
}

/**
 * The experiment epoch every replica derives alike: the route's policy version, the generation (bumped in Redis by
 * each resume) and the controlled challenger. Statistics of different epochs are never pooled.
 */
export function epochOf(version: string, generation: number, challenger: string | null): string {
  return `${version}.${generation}.${challenger ?? '-'}`;
}
