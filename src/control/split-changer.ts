// Applies a split change the same way for people and the controller: through Unleash for flag-driven routes, else a persisted local override; audited.
import type { Logger } from 'pino';
import type { ChallengerMode } from '../config/policy-schema.js';
import type { ChallengerShare, CompiledRoute, RouteDecision } from '../decision/snapshot.js';
import { SWY_ERR_BAD_REQUEST, SWY_ERR_FLAG_WRITE_DISABLED } from '../errors.js';
import { KeyedSerial } from '../serial.js';
import type { FlagSource } from '../flags/source.js';
import type { FlagWriter } from '../flags/write-through.js';
import type { AuditEvent, AuditLog } from './audit.js';
import type { LiveSplits } from './live-splits.js';
import type { StateStore } from './state-store.js';

export interface SplitChangerDeps {
  splits: LiveSplits;
  flags: FlagSource;
  state: StateStore;
  audit: AuditLog;
  /** Writes a flag-driven route's split to its flag (Unleash's Admin API); null when UNLEASH_ADMIN_TOKEN is not set. */
  flagWriter: FlagWriter | null;
  logger?: Logger;
}

/** What a change did. */
export interface SplitChange {
  detail: Record<string, unknown>;
  event: AuditEvent;
}

/** The route's live state as recorded in audit events. */
export function auditStateOf(decision: RouteDecision | undefined): unknown {
  if (decision === undefined) return null;
  const { state } = decision;
  return {
    source: state.source,
    groupId: state.groupId,
    challengers: state.challengers.map((c) => ({ name: c.name, mode: c.mode, percent: c.percent })),
    servedPercent: decision.servedTotal,
    paused: state.paused,
    rolledBack: state.rolledBack,
  };
}

/** Serialises changes per route, so before/after in the audit log describe one change each. */
export class SplitChanger {
  readonly #deps: SplitChangerDeps;
  readonly #serial = new KeyedSerial();

  constructor(deps: SplitChangerDeps) {
    this.#deps = deps;
  }

  /** Whether the route's split follows an Unleash flag (changes are written there). */
  flagDriven(route: string): boolean {
    return this.#deps.flags.drives(route);
  }

  /** Runs `work` after every earlier change to the same route. */
  exclusive<T>(route: string, work: () => Promise<T>): Promise<T> {
    return this.#serial.run(route, work);
  }

  /** Sets `challenger` to `percent` in `mode` on `route`, records who did it, and returns what was done. */
  change(route: CompiledRoute, challenger: string, percent: number, mode: ChallengerMode, who: string, action = 'split.set', extra: Record<string, unknown> = {}): Promise<SplitChange> {
    const deps = this.#deps;
    return this.exclusive(route.name, async () => {
      const before = deps.splits.snapshot.byName.get(route.name);
      let detail: Record<string, unknown>;
      if (deps.flags.drives(route.name)) {
        if (deps.flagWriter === null) throw new SWY_ERR_FLAG_WRITE_DISABLED(route.name, route.flagName);
        const written = await deps.flagWriter.write({ route, challenger, mode, percent });
        // The flag is the truth for this route now; an old local override would hide it.
        if (deps.state.override(route.name) !== undefined) deps.state.setOverride(route.name, null);
        deps.flags.expect(route.name, written.overlay);
        detail = { kind: 'unleash', challenger, mode, percent, flag: written.flag, environment: written.environment, strategyId: written.strategyId, operation: written.operation, createdFlag: written.createdFlag, enabledFlag: written.enabled };
      } else {
        const current: readonly ChallengerShare[] = before?.state.challengers ?? route.policy.challengers.map((c) => ({ name: c.name, mode: c.mode, percent: c.percent }));
        const next = route.policy.challengers.map((c) => {
          if (c.name === challenger) return { name: c.name, mode, percent };
          return current.find((s) => s.name === c.name) ?? { name: c.name, mode: c.mode, percent: 0 };
        });
        const served = next.filter((c) => c.mode !== 'shadow').reduce((sum, c) => sum + c.percent, 0);
        if (served > 100) throw new SWY_ERR_BAD_REQUEST(`percent: canary and ab challengers would add up to ${served} %; at most 100 (lower another challenger first)`);
        deps.state.setOverride(route.name, { challengers: next, groupId: before?.groupId ?? route.flagName ?? route.name });
        detail = { kind: 'override', challenger, mode, percent };
      }
      const event = deps.audit.append({ who, action, route: route.name, before: auditStateOf(before), after: auditStateOf(deps.splits.snapshot.byName.get(route.name)), detail: { ...detail, ...extra } });
      deps.logger?.info({ who, action, route: route.name, eventId: event.id }, 'split changed');
      return { detail, event };
    });
  }

  /** After a local rollback of a flag-driven route, sets the flag's rollout to 0 so every replica follows. */
  async writeThroughRollback(route: CompiledRoute, challenger: string, mode: ChallengerMode): Promise<void> {
    const deps = this.#deps;
    const writer = deps.flagWriter;
    if (!deps.flags.drives(route.name) || writer === null) return;
    await this.exclusive(route.name, async () => {
      const written = await writer.write({ route, challenger, mode, percent: 0 });
      deps.flags.expect(route.name, written.overlay);
    });
  }
}
