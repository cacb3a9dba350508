// The one owner of each route's control state (overrides, pauses, rollbacks, experiment generation), read by LiveSplits and saved to <data dir>/state.json.
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { z } from 'zod';
import { overrideSchema, sharesSchema, type ChallengerShare, type OperatorOverride } from '../decision/shares.js';
import type { CompiledRoute } from '../decision/snapshot.js';
import { SWY_ERR_STATE_READ, SWY_ERR_STATE_WRITE } from '../errors.js';
import type { Metrics } from '../metrics/registry.js';
import type { AuditLog } from './audit.js';
import type { RouteControlReader } from './live-splits.js';

/** What the store publishes to: LiveSplits reads the control state from the store and rebuilds the snapshot on publish. */
export interface ControlTarget {
  /** The policy's routes: what the persisted state is checked against at start-up. */
  readonly routes: readonly CompiledRoute[];
  attachControl(control: RouteControlReader): void;
  publish(): void;
}

const stateSchema = z.object({
  version: z.literal(1),
  overrides: z.record(z.string(), overrideSchema).default({}),
  paused: z.array(z.string()).default([]),
  rolledBack: z.array(z.string()).default([]),
  /** Each rolled-back route's challenger shares just before the rollback (a resume of a flag-driven route restores them). */
  rolledBackFrom: z.record(z.string(), sharesSchema).default({}),
  savedAt: z.string().optional(),
});
/**
 * The file as read: its frame must hold (else SWY_ERR_STATE_READ: a rollback it holds must not be lost silently), its
 * entries are checked one by one and against the policy, and one that does not apply is dropped, not fatal.
 */
const fileSchema = stateSchema.extend({
  overrides: z.record(z.string(), z.unknown()).default({}),
  paused: z.array(z.unknown()).default([]),
  rolledBack: z.array(z.unknown()).default([]),
  rolledBackFrom: z.record(z.string(), z.unknown()).default({}),
});

/** The file format of state.json (version 1). */
export type PersistedState = z.infer<typeof stateSchema>;

export type { OperatorOverride };

/** A persisted entry the policy does not admit (any more), dropped with a warning and a `state.dropped` audit event. */
export interface StateDrop {
  readonly route: string;
  readonly what: 'override' | 'pause' | 'rollback' | 'rollbackFrom';
  readonly why: string;
  /** The dropped entry as it was. */
  readonly entry: unknown;
}

/** A problem an admin response carries while the change it made is live but not on disk. */
export interface StateWarning {
  readonly code: string;
  readonly message: string;
}

/** Whether every change made so far is on disk (response fields of the admin API; a memory-only store is never persisted). */
export interface Persistence {
  readonly persisted: boolean;
  readonly warnings?: readonly StateWarning[];
}

/** Options of {@link StateStore.open}. */
export interface StateStoreOptions {
  /** state.json; null keeps state in memory only. */
  file: string | null;
  target: ControlTarget;
  logger?: Logger;
  /** Where dropped entries and unsaved changes are recorded. */
  audit?: AuditLog;
  metrics?: Pick<Metrics, 'stateSaveFailures' | 'stateUnsaved'>;
  /** How long persisted() waits for a save before it answers "not yet" (a hung disk must not hang the admin API). Default 2000. */
  saveWaitMs?: number;
  /** First delay before a failed save is retried without a new change; doubles up to a minute. Default 1000. */
  retryMs?: number;
}

const MAX_RETRY_MS = 60_000;

/** One unsaved kind of change to a route, and whether its failure to save was audited already. */
interface Unsaved {
  readonly route: string;
  readonly change: string;
  /** The change counter when it was made: a save that began at or after it includes it. */
  readonly at: number;
  reported: boolean;
}

/** Why a change is not on disk, in the error registry's words. */
function warningOf(file: string, reason: string): StateWarning {
  const error = new SWY_ERR_STATE_WRITE(file, reason);
  return { code: error.code, message: error.message };
}

/** The issues of a failed entry parse, one per field: "challengers.0.mode: must be one of shadow, canary, ab". */
function problemOf(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : 'entry'}: ${issue.message}`).join('; ');
}

/** Why `shares` cannot be `route`'s split (null when they can): unknown or repeated challengers, served shares over 100 %. */
function sharesProblem(route: CompiledRoute, shares: readonly ChallengerShare[]): string | null {
  const seen = new Set<string>();
  let served = 0;
  for (const share of shares) {
    if (route.armByName.get(share.name)?.role !== 'challenger') {
      return `challenger "${share.name}" is not a challenger of route ${route.name} (challengers: ${route.policy.challengers.map((c) => c.name).join(', ') || 'none'})`;
    }
    if (seen.has(share.name)) return `challenger "${share.name}" is named twice`;
    seen.add(share.name);
    if (share.mode !== 'shadow') served += share.percent;
  }
  return served > 100 ? `canary and ab shares add up to ${served} %; at most 100` : null;
}

const unknownRoute = (route: string) => `no route named ${route} in the policy`;

/**
 * Owns each route's operator overrides, pauses and rollbacks, and the generation of its experiment: every change is
 * published to LiveSplits at once (one snapshot swap) and saved in the background with an atomic write (temp file,
 * fsync, rename), coalescing bursts into one write. LiveSplits reads these from here and holds no copy.
 *
 * A change that cannot be saved stays live: it is logged, counted, audited (`state.not_persisted`) and reported to the
 * admin call that waits for it (persisted()); the save is retried on the next change and with a backoff, never in a loop.
 */
export class StateStore implements RouteControlReader {
  readonly #file: string | null;
  readonly #target: ControlTarget;
  readonly #logger: Logger | undefined;
  readonly #audit: AuditLog | undefined;
  readonly #metrics: StateStoreOptions['metrics'];
  readonly #saveWaitMs: number;
  readonly #retryMs: number;
  readonly #overrides = new Map<string, OperatorOverride>();
  readonly #paused = new Set<string>();
  readonly #rolledBack = new Set<string>();
  readonly #rolledBackFrom = new Map<string, readonly ChallengerShare[]>();
  /** +1 on every resume of a rollback: a new experiment (in memory; a restart starts one anyway). */
  readonly #generation = new Map<string, number>();
  readonly #experimentListeners: ((route: string) => void)[] = [];
  #saving: Promise<void> = Promise.resolve();
  #dirty = false;
  #writing = false;
  /** Changes made so far, and how many of them are on disk. */
  #changes = 0;
  #savedThrough = 0;
  /** Changes not on disk yet, one per route and kind (bounded by routes x kinds, however long the disk is away). */
  readonly #unsaved = new Map<string, Unsaved>();
  /** The last save's failure, until a save succeeds. */
  #failure: { through: number; reason: string } | null = null;
  #failedAttempts = 0;
  readonly #waiters = new Set<{ through: number; settle: (outcome: Persistence) => void }>();
  #retryTimer: NodeJS.Timeout | null = null;
  #retryDelayMs: number;
  #closed = false;

  private constructor(options: StateStoreOptions) {
    this.#file = options.file;
    this.#target = options.target;
    this.#logger = options.logger;
    this.#audit = options.audit;
    this.#metrics = options.metrics;
    this.#saveWaitMs = options.saveWaitMs ?? 2000;
    this.#retryMs = options.retryMs ?? 1000;
    this.#retryDelayMs = this.#retryMs;
  }

  /**
   * Loads `file` (absent = empty), drops what the target's policy does not admit (with a warning and an audit event,
   * saving the cleaned file) and applies the rest to `target`. Throws SWY_ERR_STATE_READ on an unreadable file or one
   * whose frame is invalid rather than starting without a rollback it may hold. `file: null` keeps state in memory only.
   */
  static async open(options: StateStoreOptions): Promise<StateStore> {
    const store = new StateStore(options);
    if (options.file === null) {
      store.#target.attachControl(store);
      return store;
    }
    let text: string;
    try {
      text = await readFile(options.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        store.#target.attachControl(store);
        return store;
      }
      throw new SWY_ERR_STATE_READ(options.file, (err as Error).message, { cause: err });
    }
    let parsed: z.infer<typeof fileSchema>;
    try {
      const result = fileSchema.safeParse(JSON.parse(text));
      if (!result.success) throw new Error(z.prettifyError(result.error).replaceAll('\n', '; '));
      parsed = result.data;
    } catch (err) {
      throw new SWY_ERR_STATE_READ(options.file, (err as Error).message, { cause: err });
    }
    const drops = [...store.#load(parsed), ...store.#reconcile(store.#target.routes)];
    store.#target.attachControl(store);
    options.logger?.info({ file: options.file, overrides: store.#overrides.size, paused: store.#paused.size, rolledBack: store.#rolledBack.size, dropped: drops.length }, 'control state restored');
    store.#dropped(drops, 'start-up');
    return store;
  }

  /** Takes every entry of the file that parses; the others are returned as drops. */
  #load(parsed: z.infer<typeof fileSchema>): StateDrop[] {
    const drops: StateDrop[] = [];
    for (const [route, entry] of Object.entries(parsed.overrides)) {
      const override = overrideSchema.safeParse(entry);
      if (override.success) this.#overrides.set(route, override.data);
      else drops.push({ route, what: 'override', why: problemOf(override.error), entry });
    }
    for (const [list, set, what] of [[parsed.paused, this.#paused, 'pause'], [parsed.rolledBack, this.#rolledBack, 'rollback']] as const) {
      for (const entry of list) {
        if (typeof entry === 'string' && entry !== '') set.add(entry);
        else drops.push({ route: JSON.stringify(entry) ?? String(entry), what, why: 'must be a route name', entry });
      }
    }
    for (const [route, entry] of Object.entries(parsed.rolledBackFrom)) {
      // Only a rolled-back route's split from before is kept (and written back).
      if (!this.#rolledBack.has(route)) continue;
      const shares = sharesSchema.safeParse(entry);
      if (shares.success) this.#rolledBackFrom.set(route, shares.data);
      else drops.push({ route, what: 'rollbackFrom', why: problemOf(shares.error), entry });
    }
    return drops;
  }

  /** Removes what `routes` do not admit: entries of unknown routes, overrides and pre-rollback splits they cannot serve. */
  #reconcile(routes: readonly CompiledRoute[]): StateDrop[] {
    const byName = new Map(routes.map((route) => [route.name, route]));
    const drops: StateDrop[] = [];
    for (const [name, override] of this.#overrides) {
      const route = byName.get(name);
      const why = route === undefined ? unknownRoute(name) : sharesProblem(route, override.challengers);
      if (why === null) continue;
      this.#overrides.delete(name);
      drops.push({ route: name, what: 'override', why, entry: override });
    }
    for (const name of this.#paused) {
      if (byName.has(name)) continue;
      this.#paused.delete(name);
      drops.push({ route: name, what: 'pause', why: unknownRoute(name), entry: true });
    }
    for (const name of this.#rolledBack) {
      if (byName.has(name)) continue;
      this.#rolledBack.delete(name);
      drops.push({ route: name, what: 'rollback', why: unknownRoute(name), entry: { rolledBack: true, from: this.#rolledBackFrom.get(name) ?? null } });
      this.#rolledBackFrom.delete(name);
    }
    for (const [name, shares] of this.#rolledBackFrom) {
      const route = byName.get(name);
      const why = route === undefined ? unknownRoute(name) : sharesProblem(route, shares);
      if (why === null) continue;
      this.#rolledBackFrom.delete(name);
      drops.push({ route: name, what: 'rollbackFrom', why, entry: shares });
    }
    return drops;
  }

  /**
   * Checks the state against a newly loaded policy before it is installed: what it no longer admits is dropped with a
   * warning and a `state.dropped` audit event, and the cleaned state is saved; the rest stays. The caller publishes
   * (installing the policy swaps the snapshot), so no request sees the policy with state it does not admit.
   */
  reconcile(routes: readonly CompiledRoute[]): readonly StateDrop[] {
    const drops = this.#reconcile(routes);
    this.#dropped(drops, 'reload');
    return drops;
  }

  #dropped(drops: readonly StateDrop[], trigger: 'start-up' | 'reload'): void {
    if (drops.length === 0) return;
    for (const drop of drops) {
      this.#logger?.warn({ route: drop.route, what: drop.what, why: drop.why, trigger, file: this.#file }, `control state entry dropped: the ${drop.what} of route ${drop.route} (${drop.why})`);
      this.#audit?.append({ who: 'state', action: 'state.dropped', route: drop.route, before: drop.entry, after: null, detail: { what: drop.what, why: drop.why, trigger } });
      this.#mark(drop.route, `dropped ${drop.what}`);
    }
    this.#save();
  }

  /** Sets (or with null clears) a route's operator override. */
  setOverride(route: string, override: OperatorOverride | null): void {
    if (override === null) this.#overrides.delete(route);
    else this.#overrides.set(route, { challengers: override.challengers.map((c) => ({ ...c })), ...(override.groupId ? { groupId: override.groupId } : {}) });
    this.#target.publish();
    this.#changed(route, override === null ? 'override cleared' : 'override');
  }

  setPaused(route: string, paused: boolean): void {
    if (paused) this.#paused.add(route);
    else this.#paused.delete(route);
    this.#target.publish();
    this.#changed(route, paused ? 'pause' : 'unpause');
  }

  /**
   * A rolled-back route serves only the champion until a person resumes it; this persists across restarts. `from` is
   * the split just before the rollback. Clearing a rollback starts a new experiment (the generation moves) in the same
   * synchronous step, so nothing can judge the resumed route with the evidence that rolled it back.
   */
  setRolledBack(route: string, rolledBack: boolean, from?: readonly ChallengerShare[]): void {
    if (rolledBack) {
      this.#rolledBack.add(route);
      if (from !== undefined) this.#rolledBackFrom.set(route, from.map((c) => ({ name: c.name, mode: c.mode, percent: c.percent })));
    } else if (this.#rolledBack.has(route)) {
      this.#liftRollback(route);
    }
    this.#target.publish();
    this.#changed(route, rolledBack ? 'rollback' : 'rollback lifted');
  }

  /**
   * A person's resume in one snapshot swap: lifts the pause and the rollback and, when given, installs the split the
   * resumed route serves (`override`), so no request sees a state in between.
   */
  resume(route: string, override?: OperatorOverride): { clearedPause: boolean; clearedRollback: boolean } {
    const clearedPause = this.#paused.delete(route);
    const clearedRollback = this.#rolledBack.has(route);
    if (override !== undefined) this.#overrides.set(route, { challengers: override.challengers.map((c) => ({ ...c })), ...(override.groupId ? { groupId: override.groupId } : {}) });
    if (clearedRollback) this.#liftRollback(route);
    this.#target.publish();
    this.#changed(route, 'resume');
    return { clearedPause, clearedRollback };
  }

  /** Calls `listener` synchronously whenever a route starts a new experiment (a rollback is lifted), before any publish. */
  onNewExperiment(listener: (route: string) => void): void {
    this.#experimentListeners.push(listener);
  }

  #liftRollback(route: string): void {
    this.#rolledBack.delete(route);
    this.#rolledBackFrom.delete(route);
    this.#generation.set(route, this.generation(route) + 1);
    for (const listener of this.#experimentListeners) listener(route);
  }

  /** The route's experiment generation: it moves on every resume of a rollback (here or applied from the fleet). */
  generation(route: string): number {
    return this.#generation.get(route) ?? 0;
  }

  /** The challenger shares a rolled-back route served just before its rollback (undefined when unknown). */
  rolledBackFrom(route: string): readonly ChallengerShare[] | undefined {
    return this.#rolledBackFrom.get(route);
  }

  override(route: string): OperatorOverride | undefined {
    return this.#overrides.get(route);
  }

  isPaused(route: string): boolean {
    return this.#paused.has(route);
  }

  isRolledBack(route: string): boolean {
    return this.#rolledBack.has(route);
  }

  /** The state as it is (and will be) written. */
  snapshot(): PersistedState {
    return {
      version: 1,
      overrides: Object.fromEntries([...this.#overrides].map(([route, o]) => [route, { challengers: o.challengers.map((c) => ({ ...c })), ...(o.groupId ? { groupId: o.groupId } : {}) }])),
      paused: [...this.#paused].sort(),
      rolledBack: [...this.#rolledBack].sort(),
      rolledBackFrom: Object.fromEntries([...this.#rolledBackFrom].map(([route, shares]) => [route, shares.map((c) => ({ ...c }))])),
    };
  }

  /** Resolves once every change made so far is on disk (or its write failed and was logged). */
  async flush(): Promise<void> {
    while (this.#dirty || this.#writing) await this.#saving;
  }

  /**
   * Whether the changes made so far are on disk, as the admin API reports it: waits for the save that includes them,
   * but at most `waitMs` (default: the store's save wait), so a hung disk cannot hang the caller. Not persisted comes
   * with a SWY_ERR_STATE_WRITE warning saying why; the change itself is live either way.
   */
  persisted(waitMs = this.#saveWaitMs): Promise<Persistence> {
    const file = this.#file;
    if (file === null) return Promise.resolve({ persisted: false });
    const through = this.#changes;
    if (this.#savedThrough >= through) return Promise.resolve({ persisted: true });
    // Already tried and failed, and waiting for a retry: say so now rather than wait for the backoff.
    if (!this.#dirty && !this.#writing && this.#failure !== null && this.#failure.through >= through) return Promise.resolve({ persisted: false, warnings: [warningOf(file, this.#failure.reason)] });
    return new Promise((resolve) => {
      const waiter = {
        through,
        settle: (outcome: Persistence) => {
          clearTimeout(timer);
          this.#waiters.delete(waiter);
          resolve(outcome);
        },
      };
      const timer = setTimeout(() => waiter.settle({ persisted: false, warnings: [warningOf(file, `the save did not finish within ${waitMs} ms (the disk may be slow or hung; it is still being tried)`)] }), waitMs);
      this.#waiters.add(waiter);
    });
  }

  /** Stops retrying; a change not on disk yet gets one last save, waited for at most the save wait. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    if (this.#file === null) return;
    if (this.#savedThrough < this.#changes && !this.#writing) this.#save();
    await this.persisted();
  }

  /** Records a change to `route` (what kind, for the audit of an unsaved one) and saves. */
  #changed(route: string, change: string): void {
    this.#mark(route, change);
    this.#save();
  }

  #mark(route: string, change: string): void {
    if (this.#file === null) return;
    this.#changes++;
    this.#unsaved.set(`${route}\u0000${change}`, { route, change, at: this.#changes, reported: false });
    this.#metrics?.stateUnsaved.set(this.#changes - this.#savedThrough);
  }

  #save(): void {
    if (this.#file === null) return;
    this.#dirty = true;
    // A change is saved now, not after the backoff of an earlier failure.
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    if (this.#writing) return;
    this.#writing = true;
    this.#saving = this.#drain(this.#file);
  }

  async #drain(file: string): Promise<void> {
    try {
      // One write per burst of changes: those made during a write are saved by the next pass, failed or not.
      while (this.#dirty) {
        this.#dirty = false;
        const through = this.#changes;
        try {
          await writeAtomically(file, `${JSON.stringify({ ...this.snapshot(), savedAt: new Date().toISOString() }, null, 2)}\n`);
          this.#saved(through);
        } catch (err) {
          this.#failed(file, through, err as Error);
        }
      }
    } finally {
      this.#writing = false;
    }
    this.#scheduleRetry();
  }

  #saved(through: number): void {
    this.#savedThrough = Math.max(this.#savedThrough, through);
    const recovered = new Set<string>();
    for (const [key, unsaved] of this.#unsaved) {
      if (unsaved.at > through) continue;
      if (unsaved.reported) recovered.add(unsaved.route);
      this.#unsaved.delete(key);
    }
    if (this.#failure !== null) {
      this.#logger?.info({ file: this.#file, failedAttempts: this.#failedAttempts }, 'control state saved again');
      for (const route of recovered) this.#audit?.append({ who: 'state', action: 'state.persisted', route, before: null, after: null, detail: { file: this.#file, failedAttempts: this.#failedAttempts } });
    }
    this.#failure = null;
    this.#failedAttempts = 0;
    this.#retryDelayMs = this.#retryMs;
    this.#metrics?.stateUnsaved.set(this.#changes - this.#savedThrough);
    for (const waiter of this.#waiters) if (waiter.through <= through) waiter.settle({ persisted: true });
  }

  #failed(file: string, through: number, err: Error): void {
    this.#failure = { through, reason: err.message };
    this.#failedAttempts++;
    this.#metrics?.stateSaveFailures.inc();
    const warning = warningOf(file, err.message);
    this.#logger?.error({ err, file, code: warning.code, failedAttempts: this.#failedAttempts }, warning.message);
    // Audited once per change (not per retry): which changes of which route would be lost on restart.
    const byRoute = new Map<string, string[]>();
    for (const unsaved of this.#unsaved.values()) {
      if (unsaved.reported || unsaved.at > through) continue;
      unsaved.reported = true;
      byRoute.set(unsaved.route, [...(byRoute.get(unsaved.route) ?? []), unsaved.change]);
    }
    for (const [route, changes] of byRoute) {
      this.#audit?.append({ who: 'state', action: 'state.not_persisted', route, before: null, after: null, detail: { code: warning.code, persisted: false, changes, reason: err.message, file } });
    }
    for (const waiter of this.#waiters) if (waiter.through <= through) waiter.settle({ persisted: false, warnings: [warning] });
  }

  /** After a failed save with no change pending, tries again later: 1 s, 2 s, ... up to a minute (never a tight loop). */
  #scheduleRetry(): void {
    if (this.#closed || this.#retryTimer !== null || this.#writing || this.#savedThrough >= this.#changes) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      this.#save();
    }, this.#retryDelayMs);
    this.#retryTimer.unref();
    this.#retryDelayMs = Math.min(this.#retryDelayMs * 2, MAX_RETRY_MS);
  }
}

/**
 * Writes a temp file next to `file`, fsyncs it and renames it over `file`, so readers see the old or the new file. A
 * failed write removes its temp file (a full disk must not collect empty ones).
 */
async function writeAtomically(file: string, text: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  const handle = await open(tmp, 'w', 0o600);
  try {
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}
