// Audits a flag-driven route whose flag snapshot went stale (Unleash unreachable or refusing the token) once per episode, so it is on the trail and notified.
import type { FlagSource } from '../flags/source.js';
import type { AuditLog } from './audit.js';
import type { LiveSplits } from './live-splits.js';

/** What the check reads and where it records. */
export interface FlagStalenessDeps {
  flags: Pick<FlagSource, 'status' | 'snapshotAgeSeconds'>;
  splits: Pick<LiveSplits, 'routes'>;
  audit: AuditLog;
  /** A route is stale once Unleash has not confirmed its flag for this long (the SwitchyardFlagsStale rule's default is 60 s). */
  staleAfterMs: number;
  checkMs?: number;
}

/** Checks flag freshness every `checkMs` off every request path; records `flag.stale` when a route goes stale and `flag.live` when it recovers. */
export class FlagStaleness {
  readonly #deps: FlagStalenessDeps;
  readonly #stale = new Set<string>();
  #timer: NodeJS.Timeout | null = null;

  constructor(deps: FlagStalenessDeps) {
    this.#deps = deps;
  }

  start(): void {
    if (this.#timer !== null) return;
    this.#timer = setInterval(() => this.check(), this.#deps.checkMs ?? Math.min(5_000, Math.max(100, this.#deps.staleAfterMs / 4)));
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** One check of every route (also called directly by tests). */
  check(): void {
    const ageSeconds = this.#deps.flags.snapshotAgeSeconds();
    const old = ageSeconds !== null && ageSeconds * 1000 >= this.#deps.staleAfterMs;
    for (const route of this.#deps.splits.routes) {
      const status = this.#deps.flags.status(route.name);
      const stale = old && (status === 'stale' || status === 'unauthorized');
      if (stale && !this.#stale.has(route.name)) {
        this.#stale.add(route.name);
        this.#deps.audit.append({ who: 'flags', action: 'flag.stale', route: route.name, before: null, after: null, detail: { status, flag: route.flagName ?? null, ageSeconds: Math.round(ageSeconds) } });
      } else if (!stale && this.#stale.has(route.name) && status !== null) {
        this.#stale.delete(route.name);
        this.#deps.audit.append({ who: 'flags', action: 'flag.live', route: route.name, before: null, after: null, detail: { status, flag: route.flagName ?? null } });
      }
    }
  }
}
