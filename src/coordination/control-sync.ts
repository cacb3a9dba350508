// Replicated control state (rollback, pause, operator split) as a pure three-way merge of local, last-synced and shared.
//
// Each replica keeps its rollbacks, pauses and overrides in its StateStore (persisted, applied to its snapshot). The
// fleet's copy lives in one Redis hash per route, written only by compare-and-set on its revision. Comparing the local
// state with the state at the last sync tells a local edit (a person, this replica's controller) from a remote one.
// A resume bumps the generation, which starts a new experiment epoch; an edit judged in an older generation is stale
// and loses, so a late rollback can never hit the experiment that a person resumed meanwhile.
import { z } from 'zod';
import { overrideSchema, type OperatorOverride } from '../decision/shares.js';

/** The three replicated inputs of a route's live split. */
const localControlSchema = z.object({ rolledBack: z.boolean(), paused: z.boolean(), override: overrideSchema.nullable() });
export type LocalControl = Readonly<z.infer<typeof localControlSchema>>;

/** The fleet's record in Redis: the inputs plus the generation and who wrote it last, why. */
const sharedControlSchema = localControlSchema.extend({
  /** Experiment generation: +1 on every resume of a rollback. */
  gen: z.number().int().min(0),
  /** Instance that wrote the record. */
  by: z.string(),
  /** Why (a guardrail name, "manual", "resume", "split", "seed"). */
  reason: z.string(),
});
export type SharedControl = Readonly<z.infer<typeof sharedControlSchema>>;

/** A record with its compare-and-set revision (monotonic, also across a Redis data loss: see lease.ts). */
export interface Versioned {
  readonly rev: number;
  readonly record: SharedControl;
}

/** What this replica last agreed with the fleet on; `rev` and `gen` are null before the first contact. */
export interface SyncBase {
  readonly rev: number | null;
  readonly gen: number | null;
  readonly control: LocalControl;
}

/** What to do now. */
export type SyncPlan =
  | { readonly kind: 'in-sync' }
  /** Make the local state equal to the shared record (a remote change, or a stale local edit that lost). */
  | { readonly kind: 'apply'; readonly target: Versioned; readonly superseded: boolean }
  /** Write `record` if the revision is still `expectRev` (0: the key is absent). */
  | { readonly kind: 'push'; readonly expectRev: number; readonly record: SharedControl };

/** A record read from Redis, or null when it is not valid. */
export function parseSharedControl(text: string): SharedControl | null {
  try {
    const parsed = sharedControlSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** Equality of two operator overrides (shares in order, group id). */
export function sameOverride(a: OperatorOverride | null, b: OperatorOverride | null): boolean {
  if (a === null || b === null) return a === b;
  if ((a.groupId ?? null) !== (b.groupId ?? null) || a.challengers.length !== b.challengers.length) return false;
  return a.challengers.every((c, i) => {
    const d = b.challengers[i]!;
    return c.name === d.name && c.mode === d.mode && c.percent === d.percent;
  });
}

/** Field-wise equality of the replicated inputs. */
export function sameControl(a: LocalControl, b: LocalControl): boolean {
  return a.rolledBack === b.rolledBack && a.paused === b.paused && sameOverride(a.override, b.override);
}

/** The replicated inputs of a record. */
export function controlOf(record: LocalControl): LocalControl {
  return { rolledBack: record.rolledBack, paused: record.paused, override: record.override };
}

/** Each field from `local` where this replica changed it since `base`, else from `shared`. */
function mergeFields(base: LocalControl, local: LocalControl, shared: LocalControl): LocalControl {
  return {
    rolledBack: local.rolledBack !== base.rolledBack ? local.rolledBack : shared.rolledBack,
    paused: local.paused !== base.paused ? local.paused : shared.paused,
    override: sameOverride(local.override, base.override) ? shared.override : local.override,
  };
}

function reasonFor(previous: LocalControl | null, next: LocalControl, rollbackReason: string): string {
  if (previous === null) return 'seed';
  if (next.rolledBack && !previous.rolledBack) return rollbackReason;
  if (!next.rolledBack && previous.rolledBack) return 'resume';
  if (next.paused !== previous.paused) return next.paused ? 'pause' : 'resume';
  return 'split';
}

function recordFrom(previous: LocalControl | null, previousGen: number, next: LocalControl, by: string, rollbackReason: string): SharedControl {
  // Resuming a rollback is the start of a new experiment: a new generation, hence a new epoch for the statistics.
  const gen = previousGen + (previous !== null && previous.rolledBack && !next.rolledBack ? 1 : 0);
  return { ...controlOf(next), gen, by, reason: reasonFor(previous, next, rollbackReason) };
}

/**
 * Plans one reconciliation. `rollbackReason` names the guardrail (or "manual") when the local edit is a rollback.
 *
 * - No shared record (first replica, or Redis lost its data): seed it from the local state.
 * - First contact: the fleet's record wins, except for what changed locally since start (kept as local edits).
 * - Only the fleet changed: apply it. Only this replica changed: push. Both: an edit made in an older generation
 *   is superseded (apply); otherwise merge field by field, this replica's edits winning, and push.
 */
export function planSync(local: LocalControl, base: SyncBase, shared: Versioned | null, by: string, rollbackReason = 'manual'): SyncPlan {
  const localEdit = !sameControl(local, base.control);
  if (shared === null) {
    return { kind: 'push', expectRev: 0, record: recordFrom(base.rev === null ? null : base.control, base.gen ?? 0, local, by, rollbackReason) };
  }
  const sharedControl = controlOf(shared.record);
  if (base.rev === null || shared.rev !== base.rev) {
    if (!localEdit) return { kind: 'apply', target: shared, superseded: false };
    if (base.gen !== null && shared.record.gen !== base.gen) return { kind: 'apply', target: shared, superseded: true };
    const merged = mergeFields(base.control, local, sharedControl);
    if (sameControl(merged, sharedControl)) return { kind: 'apply', target: shared, superseded: false };
    return { kind: 'push', expectRev: shared.rev, record: recordFrom(sharedControl, shared.record.gen, merged, by, rollbackReason) };
  }
  if (!localEdit) return { kind: 'in-sync' };
  return { kind: 'push', expectRev: shared.rev, record: recordFrom(sharedControl, shared.record.gen, local, by, rollbackReason) };
}
