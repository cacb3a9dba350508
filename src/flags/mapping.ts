// Pure mapping from an Unleash flag definition to a route's split overlay (flag ↔ split rules, documented in docs/flags.md).
import { challengerModes, type ChallengerMode } from '../config/policy-schema.js';
import type { ChallengerShare, CompiledRoute, SplitSource } from '../decision/snapshot.js';
import type { SplitOverlay } from '../decision/shares.js';

/** A variant as both the client API and the Admin API carry it (weights per mille). */
export interface FlagVariantLike {
  readonly name: string;
  readonly weight: number;
  readonly payload?: { readonly type: string; readonly value: string } | undefined;
}

/** A strategy as both APIs carry it. */
export interface FlagStrategyLike {
  readonly name: string;
  readonly parameters?: Readonly<Record<string, unknown>> | undefined;
  readonly constraints?: readonly unknown[] | undefined;
  readonly segments?: readonly unknown[] | undefined;
  readonly variants?: readonly FlagVariantLike[] | undefined;
  readonly disabled?: boolean | null | undefined;
}

/** The parts of a flag definition (client API `/api/client/features` entry) the mapping reads. */
export interface FlagDefinitionLike {
  readonly name: string;
  readonly enabled: boolean;
  readonly strategies?: readonly FlagStrategyLike[] | undefined;
  readonly variants?: readonly FlagVariantLike[] | undefined;
}

/** What the flag said, in the router's terms. */
export type FlagReadingKind = 'missing' | 'disabled' | 'no-rollout' | 'rollout';

/** The overlay for a route plus why, and what in the flag was ignored. */
export interface FlagOverlayResult {
  readonly kind: FlagReadingKind;
  readonly overlay: SplitOverlay;
  /** Served percent from the strategy's `rollout` (0 unless kind is 'rollout'). */
  readonly rollout: number;
  /** The strategy's stickiness parameter ('default' when unset); the router hashes the route's own key. */
  readonly stickiness: string;
  /** Human-readable problems (unknown challenger names, bad modes, constraints); each is logged as a warning. */
  readonly warnings: readonly string[];
}

/** Where one variant sends its share: a challenger with a mode, or the champion. */
export type VariantTarget = { readonly kind: 'challenger'; readonly name: string; readonly mode: ChallengerMode } | { readonly kind: 'champion' };

const modes: ReadonlySet<string> = new Set(challengerModes);

/** The first enabled flexibleRollout strategy: the one that carries the route's rollout. */
export function rolloutStrategy<S extends FlagStrategyLike>(strategies: readonly S[] | undefined): S | undefined {
  return strategies?.find((s) => s.name === 'flexibleRollout' && s.disabled !== true);
}

/**
 * The strategy's groupId, exactly as unleash-client 6 hashes it: `parameters.groupId || context.featureToggle || ''`,
 * and the node SDK never sets `featureToggle`, so a missing or empty groupId hashes as ''. (Unleash itself stores the
 * flag name as groupId when a strategy is created without one, so in practice it is set.)
 */
export function strategyGroupId(strategy: FlagStrategyLike): string {
  const raw = strategy.parameters?.groupId;
  return raw === undefined || raw === null ? '' : String(raw);
}

/**
 * Unleash enables a key when `bucket <= Number(rollout)` with integer buckets 1..100, so flooring a fractional rollout
 * gives the same set; anything unparsable or out of range is clamped (with a warning) rather than trusted.
 */
function parseRollout(raw: unknown, warnings: string[]): number {
  const value = Number(raw === undefined || raw === null ? NaN : String(raw));
  if (!Number.isFinite(value)) {
    warnings.push(`rollout ${JSON.stringify(raw)} is not a number; serving the champion only`);
    return 0;
  }
  if (value < 0 || value > 100) warnings.push(`rollout ${value} is outside 0..100; clamped`);
  return Math.min(100, Math.max(0, Math.floor(value)));
}

/** The default target: the route's first challenger in its policy mode (null for a route without challengers). */
function defaultTarget(route: CompiledRoute): (VariantTarget & { kind: 'challenger' }) | null {
  const first = route.policy.challengers[0];
  return first ? { kind: 'challenger', name: first.name, mode: first.mode } : null;
}

/**
 * Resolves one variant to a target: a JSON payload `{"challenger": "<arm>", "mode": "canary|ab|shadow"}` (`model` is
 * accepted for `challenger`), else a variant named after an arm, else the route's first challenger. Unknown names
 * resolve to the champion: a typo in Unleash must never send traffic somewhere unplanned.
 */
export function variantTarget(route: CompiledRoute, variant: FlagVariantLike, warnings: string[]): VariantTarget {
  let named: string | undefined;
  let mode: string | undefined;
  if (variant.payload?.type === 'json') {
    let payload: unknown;
    try {
      payload = JSON.parse(variant.payload.value);
    } catch {
      warnings.push(`variant "${variant.name}": payload is not valid JSON; ignored`);
    }
    if (payload !== null && typeof payload === 'object' && !Array.isArray(payload)) {
      const fields = payload as Record<string, unknown>;
      const target = fields.challenger ?? fields.model;
      if (typeof target === 'string') named = target;
      if (typeof fields.mode === 'string') mode = fields.mode;
    }
  }
  if (named === undefined && route.armByName.has(variant.name)) named = variant.name;
  const champion = route.arms[0]!;
  let name: string;
  if (named === undefined) {
    const fallback = defaultTarget(route);
    if (fallback === null) return { kind: 'champion' };
    name = fallback.name;
  } else if (named === champion.name) {
    return { kind: 'champion' };
  } else if (route.armByName.get(named)?.role === 'challenger') {
    name = named;
  } else {
    warnings.push(`variant "${variant.name}" names "${named}", which is not a challenger of route ${route.name} (known: ${route.policy.challengers.map((c) => c.name).join(', ') || 'none'}); its share goes to the champion`);
    return { kind: 'champion' };
  }
  const policyMode = route.policy.challengers.find((c) => c.name === name)!.mode;
  if (mode !== undefined && !modes.has(mode)) {
    warnings.push(`variant "${variant.name}": mode "${mode}" is not one of ${challengerModes.join(', ')}; using the policy mode ${policyMode}`);
    mode = undefined;
  }
  return { kind: 'challenger', name, mode: (mode as ChallengerMode | undefined) ?? policyMode };
}

/**
 * Splits `total` whole percent over weights with the largest-remainder method, so the parts add up to `total` exactly
 * and served buckets stay whole (a bucket is one percent).
 */
export function apportion(total: number, weights: readonly number[]): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  if (sum <= 0 || total <= 0) return weights.map(() => 0);
  const exact = weights.map((w) => (total * w) / sum);
  const parts = exact.map(Math.floor);
  let left = total - parts.reduce((a, b) => a + b, 0);
  const order = exact.map((x, i) => ({ i, r: x - Math.floor(x) })).sort((a, b) => b.r - a.r || a.i - b.i);
  for (const { i } of order) {
    if (left <= 0) break;
    parts[i]! += 1;
    left -= 1;
  }
  return parts;
}

/** Every challenger of the route at 0 % in its policy mode: the champion-only split. */
function championOnly(route: CompiledRoute): ChallengerShare[] {
  return route.policy.challengers.map((c) => ({ name: c.name, mode: c.mode, percent: 0 }));
}

/**
 * Computes a route's overlay from its flag definition:
 * absent or disabled flag → champion only; the first flexibleRollout's `rollout` → served percent, its `groupId` →
 * bucketing group; strategy variants (else flag variants) → which challenger(s) and mode, weights splitting the rollout.
 */
export function overlayFromFlag(route: CompiledRoute, flag: FlagDefinitionLike | undefined, source: SplitSource = 'flag'): FlagOverlayResult {
  const flagName = route.flagName ?? route.name;
  const warnings: string[] = [];
  const closed = (kind: FlagReadingKind, groupId = flagName): FlagOverlayResult => ({
    kind,
    overlay: { challengers: championOnly(route), groupId, source },
    rollout: 0,
    stickiness: 'default',
    warnings,
  });
  if (flag === undefined) {
    warnings.push(`flag "${flagName}" does not exist in Unleash; route ${route.name} serves the champion only`);
    return closed('missing');
  }
  if (!flag.enabled) return closed('disabled');
  const strategy = rolloutStrategy(flag.strategies);
  if (strategy === undefined) {
    warnings.push(`flag "${flagName}" is enabled but has no flexibleRollout (gradual rollout) strategy; route ${route.name} serves the champion only`);
    return closed('no-rollout');
  }
  const groupId = strategyGroupId(strategy);
  const rollout = parseRollout(strategy.parameters?.rollout, warnings);
  const stickiness = String(strategy.parameters?.stickiness ?? 'default') || 'default';
  if ((strategy.constraints?.length ?? 0) > 0 || (strategy.segments?.length ?? 0) > 0) {
    warnings.push(`flag "${flagName}": strategy constraints and segments are not evaluated by the router; the rollout applies to every request`);
  }
  const variants = (strategy.variants?.length ? strategy.variants : flag.variants ?? []).filter((v) => v.weight > 0);
  let targets: { target: VariantTarget; weight: number }[];
  if (variants.length === 0) {
    const fallback = defaultTarget(route);
    targets = fallback ? [{ target: fallback, weight: 1 }] : [];
  } else {
    targets = variants.map((v) => ({ target: variantTarget(route, v, warnings), weight: v.weight }));
  }
  if (targets.length === 0 && rollout > 0) warnings.push(`route ${route.name} has no challengers; rollout ${rollout} serves the champion`);
  const parts = apportion(rollout, targets.map((t) => t.weight));
  const shares = new Map<string, { mode: ChallengerMode; percent: number }>();
  targets.forEach(({ target }, i) => {
    if (target.kind !== 'challenger') return;
    const seen = shares.get(target.name);
    if (seen === undefined) shares.set(target.name, { mode: target.mode, percent: parts[i]! });
    else {
      if (seen.mode !== target.mode) warnings.push(`flag "${flagName}": challenger ${target.name} appears with modes ${seen.mode} and ${target.mode}; using ${seen.mode}`);
      seen.percent += parts[i]!;
    }
  });
  const challengers = route.policy.challengers.map((c) => {
    const share = shares.get(c.name);
    return share ? { name: c.name, mode: share.mode, percent: share.percent } : { name: c.name, mode: c.mode, percent: 0 };
  });
  return { kind: 'rollout', overlay: { challengers, groupId, source }, rollout, stickiness, warnings };
}

/** True when two overlays route identically (same group and the same non-zero shares), whatever their source. */
export function sameSplit(a: SplitOverlay, b: SplitOverlay): boolean {
  if ((a.groupId ?? '') !== (b.groupId ?? '')) return false;
  const key = (o: SplitOverlay) =>
    o.challengers
      .filter((c) => c.percent > 0)
      .map((c) => `${c.name}\u0000${c.mode}\u0000${c.percent}`)
      .sort()
      .join('\u0001');
  return key(a) === key(b);
}
