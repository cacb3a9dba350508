// Operator overrides, pauses and rollbacks that survive a restart: applied to LiveSplits and saved to <data dir>/state.json.
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { z } from 'zod';
import { challengerModes } from '../config/policy-schema.js';
import type { ChallengerShare } from '../decision/snapshot.js';
import { SWY_ERR_STATE_READ } from '../errors.js';
import type { SplitOverlay } from './live-splits.js';

/** The LiveSplits methods the store drives (it is the only writer of these three inputs). */
export interface ControlTarget {
  setOperatorOverlay(route: string, overlay: SplitOverlay | null): void;
  setPaused(route: string, paused: boolean): void;
  setRolledBack(route: string, rolledBack: boolean): void;
}

const shareSchema = z.object({ name: z.string().min(1), mode: z.enum(challengerModes), percent: z.number().min(0).max(100) });
const stateSchema = z.object({
  version: z.literal(1),
  overrides: z.record(z.string(), z.object({ challengers: z.array(shareSchema), groupId: z.string().optional() })).default({}),
  paused: z.array(z.string()).default([]),
  rolledBack: z.array(z.string()).default([]),
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
 * Owns operator overrides, pauses and rollbacks: every change goes to LiveSplits at once (one snapshot swap) and is
 * saved in the background with an atomic write (temp file, fsync, rename), coalescing bursts into one write.
 * Use it instead of calling LiveSplits' three setters directly, or the change is lost on restart.
 */
export class StateStore {
  readonly #file: string | null;
  readonly #target: ControlTarget;
  readonly #logger: Logger | undefined;
  readonly #overrides = new Map<string, OperatorOverride>();
  readonly #paused = new Set<string>();
  readonly #rolledBack = new Set<string>();
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
    if (options.file === null) return store;
    let text: string;
    try {
      text = await readFile(options.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return store;
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
    for (const [route, override] of store.#overrides) store.#target.setOperatorOverlay(route, toOverlay(override));
    for (const route of store.#paused) store.#target.setPaused(route, true);
    for (const route of store.#rolledBack) store.#target.setRolledBack(route, true);
    options.logger?.info({ file: options.file, overrides: store.#overrides.size, paused: store.#paused.size, rolledBack: store.#rolledBack.size }, 'control state restored');
    return store;
  }

  /** Sets (or with null clears) a route's operator override. */
  setOverride(route: string, override: OperatorOverride | null): void {
    if (override === null) this.#overrides.delete(route);
    else this.#overrides.set(route, { challengers: override.challengers.map((c) => ({ ...c })), ...(override.groupId ? { groupId: override.groupId } : {}) });
    this.#target.setOperatorOverlay(route, override === null ? null : toOverlay(override));
    this.#save();
  }

  setPaused(route: string, paused: boolean): void {
    if (paused) this.#paused.add(route);
    else this.#paused.delete(route);
    this.#target.setPaused(route, paused);
    this.#save();
  }

  /** A rolled-back route serves only the champion until a person resumes it; this persists across restarts. */
  setRolledBack(route: string, rolledBack: boolean): void {
    if (rolledBack) this.#rolledBack.add(route);
    else this.#rolledBack.delete(route);
    this.#target.setRolledBack(route, rolledBack);
    this.#save();
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

function toOverlay(override: OperatorOverride): SplitOverlay {
  return { challengers: override.challengers, ...(override.groupId ? { groupId: override.groupId } : {}), source: 'override' };
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
