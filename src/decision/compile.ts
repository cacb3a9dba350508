// Compiles a validated policy into frozen lookup structures (routes, arms, stickiness) and each route's default split.
import type { Policy, RoutePolicy } from '../config/policy-schema.js';
import type { Arm, CompiledRoute, RouteState, StickinessSpec } from './snapshot.js';

function toArm(index: number, name: string, role: Arm['role'], url: string, fallback: boolean): Arm {
  const parsed = new URL(url);
  // Precomputing origin and base path keeps `new URL()` off the request path (docs/performance.md, "Upstream URLs are parsed when the policy is compiled").
  return Object.freeze({ index, name, role, origin: parsed.origin, basePath: parsed.pathname.replace(/\/+$/, ''), fallback });
}

function toStickiness(route: RoutePolicy): StickinessSpec {
  const s = route.stickiness;
  if (s?.header) return { kind: 'header', name: s.header.toLowerCase() };
  if (s?.query) return { kind: 'query', name: s.query };
  if (s?.cookie) return { kind: 'cookie', name: s.cookie };
  return { kind: 'none' };
}

/** Compiles one route policy. */
export function compileRoute(route: RoutePolicy): CompiledRoute {
  const arms: Arm[] = [toArm(0, route.champion.name, 'champion', route.champion.url, false)];
  route.challengers.forEach((c, i) => arms.push(toArm(i + 1, c.name, 'challenger', c.url, c.fallback)));
  return Object.freeze({
    name: route.name,
    prefix: route.match.pathPrefix,
    methods: new Set<string>(route.match.methods),
    methodList: Object.freeze([...route.match.methods]),
    arms: Object.freeze(arms),
    armByName: new Map(arms.map((arm) => [arm.name, arm])),
    stickiness: Object.freeze(toStickiness(route)),
    connectTimeoutMs: route.timeouts.connectMs,
    requestTimeoutMs: route.timeouts.requestMs,
    shadowTimeoutMs: route.timeouts.shadowMs ?? route.timeouts.requestMs,
    bodyLimitBytes: route.bodyLimitBytes,
    shadowMethods: new Set<string>(route.shadow.methods),
    shadowMaxInFlight: route.shadow.maxInFlight,
    shadowMaxBodyBytes: route.shadow.maxBodyBytes,
    flagName: route.flag?.name ?? null,
    streaming: route.streaming === undefined ? null : Object.freeze({ terminal: route.streaming.terminal === null ? null : Buffer.from(route.streaming.terminal, 'utf8'), gapThresholdMs: route.streaming.gaps.thresholdMs }),
    policy: deepFreeze(structuredClone(route)),
  });
}

/** The split a route has when only its policy speaks (no flag, no override). */
export function policyState(route: CompiledRoute): RouteState {
  return Object.freeze({
    challengers: Object.freeze(route.policy.challengers.map((c) => Object.freeze({ name: c.name, mode: c.mode, percent: c.percent }))),
    groupId: route.flagName ?? route.name,
    source: 'policy',
    paused: false,
    rolledBack: false,
  });
}

/** Compiles every route of a policy. */
export function compilePolicy(policy: Policy): CompiledRoute[] {
  return policy.routes.map(compileRoute);
}

/** Freezes an object graph so nothing accepted at load can be changed in place later. */
export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
  }
  return value;
}
