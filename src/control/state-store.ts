// The one owner of each route's control state (overrides, pauses, rollbacks, experiment generation), read by LiveSplits and saved to <data dir>/state.json.
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { z } from 'zod';
import { challengerModes } from '../config/policy-schema.js';
import type { ChallengerShare } from '../decision/snapshot.js';
import { SWY_ERR_STATE_READ } from '../errors.js';
import type { RouteControlReader } from './live-splits.js';

/** What the store publishes to: LiveSplits reads the control state from the store and rebuilds the snapshot on publish. */
export interface ControlTarget {
  attachControl(control: RouteControlReader): void;
  publish(): void;
}

const shareSchema = z.object({ name: z.string().min(1), mode: z.enum(challengerModes), percent: z.number().min(0).max(100) });
const stateSchema = z.object({
  version: z.literal(1),
  overrides: z.record(z.string(), z.object({ challengers: z.array(shareSchema), groupId: z.string().optional() })).default({}),
  paused: z.array(z.string()).default([]),
  rolledBack: z.array(z.string()).default([]),
  /** Each rolled-back route's challenger shares just before the rollback (a resume of a flag-driven route restores them). */
  rolledBackFrom: z.record(z.string(), z.array(shareSchema)).default({}),
  savedAt: z.string().optional(),
});

/** The file format of state.json (version 1). */
export type PersistedState = z.infer<typeof stateSchema>;

/** An operator override as persisted: the challengers' shares and optionally the bucketing group. */
export interface OperatorOverride {
  readonly challengers: readonly ChallengerShare[];
  readonly groupId?: string;
}

/**
 * Owns each route's operator overrides, pauses and rollbacks, and the generation of its experiment: every change is
 * published to LiveSplits at once (one snapshot swap) and saved in the background with an atomic write (temp file,
 * fsync, rename), coalescing bursts into one write. LiveSplits reads these from here and holds no copy.
 */
export class StateStore implements RouteControlReader {
  readonly #file: string | null;
  readonly #target: ControlTarget;
  readonly #logger: Logger | undefined;
  readonly #overrides = new Map<string, OperatorOverride>();
  readonly #paused = new Set<string>();
  readonly #rolledBack = new Set<string>();
  readonly #rolledBackFrom = new Map<string, readonly ChallengerShare[]>();
  /** +1 on every resume of a rollback: a new experiment (in memory; a restart starts one anyway). */
  readonly #generation = new Map<string, number>();
  #saving: Promise<void> = Promise.resolve();
  #dirty = false;
  #writing = false;

  private constructor(file: string | null, target: ControlTarget, logger: Logger | undefined) {
    this.#file = file;
    this.#target = target;
    this.#logger = logger;
  }

  /**
   * Loads `file` (absent = empty) and applies it to `target`. Throws SWY_ERR_STATE_READ on an unreadable or invalid
   * file rather than starting without a rollback it may hold. `file: null` keeps state in memory only.
   */
  static async open(options: { file: string | null; target: ControlTarget; logger?: Logger }): Promise<StateStore> {
    const store = new StateStore(options.file, options.target, options.logger);
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
    let parsed: PersistedState;
    try {
      const result = stateSchema.safeParse(JSON.parse(text));
      if (!result.success) throw new Error(z.prettifyError(result.error).replaceAll('\n', '; '));
      parsed = result.data;
    } catch (err) {
      throw new SWY_ERR_STATE_READ(options.file, (err as Error).message, { cause: err });
    }
    for (const [route, override] of Object.entries(parsed.overrides)) store.#overrides.set(route, override);
    for (const route of parsed.paused) store.#paused.add(route);
    for (const route of parsed.rolledBack) store.#rolledBack.add(route);
    for (const [route, shares] of Object.entries(parsed.rolledBackFrom)) if (store.#rolledBack.has(route)) store.#rolledBackFrom.set(route, shares);
    store.#target.attachControl(store);
    options.logger?.info({ file: options.file, overrides: store.#overrides.size, paused: store.#paused.size, rolledBack: store.#rolledBack.size }, 'control state restored');
    return store;
  }

  /** Sets (or with null clears) a route's operator override. */
  setOverride(route: string, override: OperatorOverride | null): void {
    if (override === null) this.#overrides.delete(route);
    else this.#overrides.set(route, { challengers: override.challengers.map((c) => ({ ...c })), ...(override.groupId ? { groupId: override.groupId } : {}) });
    this.#target.publish();
    this.#save();
  }

  setPaused(route: string, paused: boolean): void {
    if (paused) this.#paused.add(route);
    else this.#paused.delete(route);
    this.#target.publish();
    this.#save();
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
    } else if (this.#rolledBack.delete(route)) {
      this.#rolledBackFrom.delete(route);
      this.#generation.set(route, this.generation(route) + 1);
    }
    this.#target.publish();
    this.#save();
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

  #save(): void {
    if (this.#file === null) return;
    this.#dirty = true;
    if (this.#writing) return;
    this.#writing = true;
    this.#saving = this.#drain(this.#file);
  }

  async #drain(file: string): Promise<void> {
    try {
      while (this.#dirty) {
        this.#dirty = false;
        try {
          await writeAtomically(file, `${JSON.stringify({ ...this.snapshot(), savedAt: new Date().toISOString() }, null, 2)}\n`);
        } catch (err) {
          this.#logger?.error({ err, file }, 'control state not saved; it is live in memory but would be lost on restart');
        }
      }
    } finally {
      this.#writing = false;
    }
  }
}


/** Writes a temp file next to `file`, fsyncs it and renames it over `file`, so readers see the old or the new file. */
async function writeAtomically(file: string, text: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  const handle = await open(tmp, 'w', 0o600);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, file);
}
