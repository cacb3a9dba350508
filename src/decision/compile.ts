// Compiles a validated policy into frozen lookup structures (routes, arms, stickiness) and each route's default split.
import { parsePointer } from '../config/json-pointer.js';
import type { MirrorRewritePolicy, Policy, RoutePolicy } from '../config/policy-schema.js';
import { ChampionLatency } from './champion-latency.js';
import type { Arm, CompiledRoute, MirrorRewrite, RouteState, StickinessSpec } from './snapshot.js';

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

/** Compiles a shadow challenger's rewrite: pointers parsed and header names lowercased once, not per mirror. */
export function compileMirrorRewrite(rewrite: MirrorRewritePolicy): MirrorRewrite {
  const json = Object.entries(rewrite.json ?? {}).map(([pointer, value]) => Object.freeze({ tokens: Object.freeze(parsePointer(pointer)), value: deepFreeze(structuredClone(value)) }));
  const set = Object.entries(rewrite.headers?.set ?? {});
  const dropHeaders = new Set([...set.map(([name]) => name.toLowerCase()), ...(rewrite.headers?.remove ?? []).map((name) => name.toLowerCase())]);
  // A rewritten body has its own length: the client's Content-Length goes, and undici frames the new body itself.
  if (json.length > 0) dropHeaders.add('content-length');
  return Object.freeze({
    json: json.length > 0 ? Object.freeze(json) : null,
    dropHeaders,
    addHeaders: Object.freeze(set.flatMap(([name, value]) => [name.toLowerCase(), value])),
  });
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
    mirrorRewrites: new Map(route.challengers.flatMap((c) => (c.rewrite === undefined ? [] : [[c.name, compileMirrorRewrite(c.rewrite)] as const]))),
    championLatency: route.shadow.shed === undefined ? null : new ChampionLatency(route.shadow.shed),
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
