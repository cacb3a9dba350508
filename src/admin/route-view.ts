// JSON views of routes' live splits for the admin API and the CLI.
import type { Phase } from '../control/phases.js';
import type { RouteDecision } from '../decision/snapshot.js';
import { servedShares } from '../decision/split.js';

/** The public shape of one route's live split (GET /v1/routes). */
export interface RouteView {
  name: string;
  pathPrefix: string;
  methods: string[];
  champion: { name: string; url: string; servedPercent: number };
  challengers: { name: string; url: string; mode: string; percent: number; servedPercent: number; fallback: boolean }[];
  source: string;
  groupId: string;
  paused: boolean;
  rolledBack: boolean;
  flag: string | null;
  /** Freshness of the flag behind the split (live, stale, bootstrap, unauthorized, missing, unconfigured); null without a flag. */
  flags: string | null;
  /** The controller's phase (awaiting_approval while a rollout waits at a gate); null where no controller runs. */
  phase: Phase | null;
}

/** Builds the view of a route from its current decision and, for flag-driven routes, the flag status. */
export function routeView(decision: RouteDecision, flags: string | null = null, phase: Phase | null = null): RouteView {
  const { route, state } = decision;
  const shares = new Map(state.challengers.map((c) => [c.name, c]));
  const served = servedShares(decision);
  return {
    name: route.name,
    pathPrefix: route.prefix,
    methods: [...route.methodList],
    champion: { name: route.arms[0]!.name, url: route.policy.champion.url, servedPercent: 100 - decision.servedTotal },
    challengers: route.policy.challengers.map((c) => {
      const share = shares.get(c.name);
      return {
        name: c.name,
        url: c.url,
        mode: share?.mode ?? c.mode,
        percent: share?.percent ?? 0,
        servedPercent: served.get(c.name) ?? 0,
        fallback: c.fallback,
      };
    }),
    source: state.source,
    groupId: decision.groupId,
    paused: state.paused,
    rolledBack: state.rolledBack,
    flag: route.flagName,
    flags,
    phase,
  };
}
