// Writes an operator's split change to the route's Unleash flag (Admin API) so every replica converges on it.
import type { ChallengerMode } from '../config/policy-schema.js';
import type { SplitOverlay } from '../decision/shares.js';
import type { CompiledRoute } from '../decision/snapshot.js';
import { SWY_ERR_FLAG_WRITE } from '../errors.js';
import { overlayFromFlag, rolloutStrategy, strategyGroupId, type FlagStrategyLike } from './mapping.js';
import type { StrategyVariantInput, UnleashAdminClient } from './unleash-admin.js';

/** One split change for a flag-driven route. */
export interface FlagSplitChange {
  route: CompiledRoute;
  challenger: string;
  mode: ChallengerMode;
  percent: number;
  /** Unleash environment the router's backend token reads (UNLEASH_ENVIRONMENT). */
  environment: string;
}

/** What was written, and the overlay the flag now maps to (applied locally at once). */
export interface FlagWriteResult {
  flag: string;
  environment: string;
  strategyId: string;
  /** patch-rollout: only `rollout` changed; replace-strategy: variants changed too; add-strategy: none existed. */
  operation: 'patch-rollout' | 'replace-strategy' | 'add-strategy';
  createdFlag: boolean;
  /** True when the flag was off in the environment and was turned on. */
  enabled: boolean;
  overlay: SplitOverlay;
}

/** Writes a route's split to its flag. Control's SplitChanger takes one (null: flag writes are off) and knows no flag service. */
export interface FlagWriter {
  write(change: Omit<FlagSplitChange, 'environment'>): Promise<FlagWriteResult>;
}

/** The FlagWriter of Unleash's Admin API for the environment the router's backend token reads. */
export function unleashFlagWriter(client: UnleashAdminClient, environment: string): FlagWriter {
  return { write: (change) => writeSplitToUnleash(client, { ...change, environment }) };
}

/**
 * Variants that make the flag name a challenger and mode. None are needed for the route's first challenger in its
 * policy mode (the mapping's default), which keeps flags edited by hand in the Unleash UI simple.
 */
function variantsFor(route: CompiledRoute, challenger: string, mode: ChallengerMode): StrategyVariantInput[] {
  const first = route.policy.challengers[0];
  if (first !== undefined && first.name === challenger && first.mode === mode) return [];
  return [{ name: challenger, weight: 1000, payload: { type: 'json', value: JSON.stringify({ challenger, mode }) } }];
}

/** The overlay a flexibleRollout with these parameters maps to (the same function the flag source runs). */
function overlayOf(route: CompiledRoute, flag: string, strategy: FlagStrategyLike): SplitOverlay {
  return overlayFromFlag(route, { name: flag, enabled: true, strategies: [strategy] }).overlay;
}

/**
 * Sets the route's flag so it maps to `challenger` at `percent` in `mode`: PATCHes only the rollout when the strategy
 * already names that challenger and mode (variants stay untouched), else replaces the strategy keeping its stickiness
 * and groupId (so enabled keys stay enabled), and adds a flexibleRollout (and the flag) when there is none.
 */
export async function writeSplitToUnleash(client: UnleashAdminClient, change: FlagSplitChange): Promise<FlagWriteResult> {
  const { route, challenger, mode, percent, environment } = change;
  const flag = route.flagName;
  if (flag === null) throw new SWY_ERR_FLAG_WRITE(`route ${route.name} names no flag`);
  let createdFlag = false;
  let definition = await client.getFlag(flag);
  if (definition === undefined) {
    await client.createFlag(flag, { type: 'experiment', description: `Switchyard split of route ${route.name}` });
    createdFlag = true;
    definition = await client.getFlag(flag);
  }
  const env = definition?.environments[environment];
  if (definition === undefined || env === undefined) {
    throw new SWY_ERR_FLAG_WRITE(`flag ${flag} has no environment "${environment}" in Unleash (set UNLEASH_ENVIRONMENT to the environment the API token reads)`);
  }
  const variants = variantsFor(route, challenger, mode);
  const strategy = rolloutStrategy(env.strategies);
  let strategyId: string;
  let operation: FlagWriteResult['operation'];
  let written: FlagStrategyLike;
  if (strategy === undefined) {
    const groupId = flag;
    strategyId = await client.addFlexibleRollout(flag, environment, { rollout: percent, stickiness: 'default', groupId, variants, title: `switchyard ${route.name}` });
    operation = 'add-strategy';
    written = { name: 'flexibleRollout', parameters: { rollout: percent, groupId }, variants: variants.map((v) => ({ name: v.name, weight: v.weight, payload: v.payload })) };
  } else {
    strategyId = strategy.id;
    const groupId = strategyGroupId(strategy);
    const patched: FlagStrategyLike = { ...strategy, parameters: { ...strategy.parameters, rollout: percent } };
    const wanted: FlagStrategyLike = { name: 'flexibleRollout', parameters: { rollout: percent, groupId }, variants: variants.map((v) => ({ name: v.name, weight: v.weight, payload: v.payload })) };
    const target = overlayOf(route, flag, wanted);
    const patchedOverlay = overlayOf(route, flag, patched);
    const samePlacement = patchedOverlay.challengers.every((c, i) => c.mode === target.challengers[i]?.mode && c.percent === target.challengers[i]?.percent);
    if (samePlacement) {
      const updated = await client.setRollout(flag, environment, strategyId, percent);
      operation = 'patch-rollout';
      written = updated;
    } else {
      const updated = await client.replaceStrategy(flag, environment, strategyId, {
        rollout: percent,
        stickiness: strategy.parameters.stickiness ?? 'default',
        groupId,
        variants,
        ...(strategy.title ? { title: strategy.title } : {}),
      });
      operation = 'replace-strategy';
      written = updated;
    }
  }
  const enabled = !env.enabled;
  if (enabled) await client.enable(flag, environment);
  return { flag, environment, strategyId, operation, createdFlag, enabled, overlay: overlayOf(route, flag, written) };
}
