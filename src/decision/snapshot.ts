// The immutable decision snapshot: compiled routes plus their live splits; the request path reads it once per request.
import type { ChallengerMode, HttpMethod, RoutePolicy } from '../config/policy-schema.js';
import type { ChampionLatency } from './champion-latency.js';
import { PrefixTable } from './prefix-table.js';
import type { ChallengerShare, SplitSource } from './shares.js';

export type { ChallengerShare, SplitSource };

/** The live split of one route, as set by the policy, a flag, an operator or the controller. */
export interface RouteState {
  readonly challengers: readonly ChallengerShare[];
  readonly groupId: string;
  readonly source: SplitSource;
  /** Holds progressive rollout at its current step; traffic keeps flowing as split. */
  readonly paused: boolean;
  /** Set by a rollback; forces every challenger's served share to 0 until a person resumes the route. */
  readonly rolledBack: boolean;
}

/** An upstream a route can send to: the champion (index 0) or a challenger. */
export interface Arm {
  readonly index: number;
  readonly name: string;
  readonly role: 'champion' | 'challenger';
  readonly origin: string;
  /** Path prefix of the upstream URL (without trailing slash), prepended to the request path. */
  readonly basePath: string;
  readonly fallback: boolean;
}

/** One value a mirror rewrite sets in the JSON body, at the pointer's reference tokens. */
export interface JsonSet {
  readonly tokens: readonly string[];
  readonly value: unknown;
}

/** A shadow challenger's rewrite of its mirrored requests, compiled from its policy (src/decision/compile.ts). */
export interface MirrorRewrite {
  /** Values set in the JSON body, in policy order; null: the body is mirrored as it is. */
  readonly json: readonly JsonSet[] | null;
  /** Lowercase names of the client's fields the mirror leaves out: those removed and those it sets itself. */
  readonly dropHeaders: ReadonlySet<string>;
  /** Fields the mirror adds, flat [name, value, ...]. */
  readonly addHeaders: readonly string[];
}

/** How the stickiness key is read from a request. */
export type StickinessSpec =
  | { readonly kind: 'header'; readonly name: string }
  | { readonly kind: 'query'; readonly name: string }
  | { readonly kind: 'cookie'; readonly name: string }
  | { readonly kind: 'none' };

/** Everything about a route that only changes when the policy file changes. */
export interface CompiledRoute {
  readonly name: string;
  readonly prefix: string;
  readonly methods: ReadonlySet<string>;
  readonly methodList: readonly HttpMethod[];
  readonly arms: readonly Arm[];
  readonly armByName: ReadonlyMap<string, Arm>;
  readonly stickiness: StickinessSpec;
  readonly connectTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly shadowTimeoutMs: number;
  readonly bodyLimitBytes: number;
  readonly shadowMethods: ReadonlySet<string>;
  readonly shadowMaxInFlight: number;
  readonly shadowMaxBodyBytes: number;
  /** Rewrites of shadow challengers' mirrors by arm name (only arms whose policy has one). */
  readonly mirrorRewrites: ReadonlyMap<string, MirrorRewrite>;
  /** The shadow budget's champion latency estimate (mutable, kept across split changes); null without `shadow.shed`. */
  readonly championLatency: ChampionLatency | null;
  readonly flagName: string | null;
  /** The route's streaming policy as the request path measures with it; null: only text/event-stream answers are measured. */
  readonly streaming: CompiledStreaming | null;
  readonly policy: RoutePolicy;
}

/** What the request path needs of a route's `streaming` policy (src/proxy/stream-probe.ts). */
export interface CompiledStreaming {
  /** The bytes a complete answer ends with (trailing whitespace aside), or null: only an upstream error interrupts. */
  readonly terminal: Buffer | null;
  readonly gapThresholdMs: number;
}

/** A served challenger and the highest bucket (1..100) it takes. */
export interface ServedRange {
  readonly arm: Arm;
  readonly upTo: number;
  readonly mode: ChallengerMode;
}

/** A shadow challenger and the highest bucket it mirrors. */
export interface ShadowRange {
  readonly arm: Arm;
  readonly upTo: number;
  /** How its mirrors differ from the served request; null: an exact copy (plus x-switchyard-shadow). */
  readonly rewrite: MirrorRewrite | null;
}

/** A route with its live split compiled to bucket thresholds. */
export interface RouteDecision {
  readonly route: CompiledRoute;
  readonly state: RouteState;
  readonly groupId: string;
  /** Served challengers in order; a bucket goes to the first range whose upTo it does not exceed. */
  readonly served: readonly ServedRange[];
  readonly servedTotal: number;
  /** Shadow challengers; null when nothing is mirrored. */
  readonly shadows: readonly ShadowRange[] | null;
  /** The highest bucket any shadow mirrors (0: none), so the request path decides "mirrored?" with one comparison. */
  readonly shadowUpTo: number;
}

/** The whole routing table at one instant. Never mutated: a change builds a new snapshot. */
export interface DecisionSnapshot {
  readonly version: string;
  /** Routes ordered by descending prefix length (for listings; matching uses `byPrefix`). */
  readonly decisions: readonly RouteDecision[];
  readonly byName: ReadonlyMap<string, RouteDecision>;
  /** Longest-prefix lookup whose cost does not grow with the number of routes (prefix-table.ts). */
  readonly byPrefix: PrefixTable<RouteDecision>;
}

/** Holds the current snapshot; the only mutable cell between the control plane and the request path. */
export class SnapshotRef {
  #current: DecisionSnapshot;
  readonly #listeners = new Set<(next: DecisionSnapshot, previous: DecisionSnapshot) => void>();

  constructor(initial: DecisionSnapshot) {
    this.#current = initial;
  }

  get current(): DecisionSnapshot {
    return this.#current;
  }

  /** Swaps in a new snapshot in one assignment and tells listeners (metrics, coordination) afterwards. */
  swap(next: DecisionSnapshot): void {
    const previous = this.#current;
    this.#current = next;
    for (const listener of this.#listeners) listener(next, previous);
  }

  onSwap(listener: (next: DecisionSnapshot, previous: DecisionSnapshot) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

/** Compiles one route's live state into bucket thresholds. Arms named in the state but absent from the route are ignored. */
export function decideRoute(route: CompiledRoute, state: RouteState): RouteDecision {
  const served: ServedRange[] = [];
  const shadows: ShadowRange[] = [];
  let cumulative = 0;
  let shadowUpTo = 0;
  for (const share of state.challengers) {
    const arm = route.armByName.get(share.name);
    if (!arm || arm.role !== 'challenger' || share.percent <= 0) continue;
    if (share.mode === 'shadow') {
      const upTo = Math.min(100, share.percent);
      shadows.push({ arm, upTo, rewrite: route.mirrorRewrites.get(arm.name) ?? null });
      if (upTo > shadowUpTo) shadowUpTo = upTo;
      continue;
    }
    if (state.rolledBack) continue;
    cumulative = Math.min(100, cumulative + share.percent);
    served.push({ arm, upTo: cumulative, mode: share.mode });
  }
  return Object.freeze({
    route,
    state,
    groupId: state.groupId,
    served: Object.freeze(served),
    servedTotal: cumulative,
    shadows: shadows.length > 0 ? Object.freeze(shadows) : null,
    shadowUpTo,
  });
}

/** Builds a frozen snapshot from routes and their states. */
export function buildSnapshot(routes: readonly CompiledRoute[], states: ReadonlyMap<string, RouteState>, version: string): DecisionSnapshot {
  const decisions = routes
    .map((route) => {
      const state = states.get(route.name);
      if (!state) throw new Error(`no live state for route ${route.name}`);
      return decideRoute(route, state);
    })
    .sort((a, b) => b.route.prefix.length - a.route.prefix.length);
  return Object.freeze({
    version,
    decisions: Object.freeze(decisions),
    byName: new Map(decisions.map((d) => [d.route.name, d])),
    byPrefix: PrefixTable.of(decisions.map((d) => [d.route.prefix, d] as const)),
  });
}

/** The snapshot before any policy is installed: no route matches, so nothing is forwarded. */
export function emptySnapshot(): DecisionSnapshot {
  return buildSnapshot([], new Map(), 'empty');
}
