// FlagSource used when no flag server is configured: routes keep their policy split; flag-naming routes say so.
import type { Logger } from 'pino';
import type { SplitOverlay } from '../decision/shares.js';
import type { CompiledRoute } from '../decision/snapshot.js';
import type { FlagSource, FlagStatus } from './source.js';

/** Drives nothing; reports `unconfigured` for routes that name a flag so the gap is visible in /v1/routes. */
export class NopFlagSource implements FlagSource {
  readonly kind = 'nop';
  readonly #logger: Logger;
  #flagRoutes = new Set<string>();

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  async start(routes: readonly CompiledRoute[]): Promise<void> {
    this.setRoutes(routes);
  }

  setRoutes(routes: readonly CompiledRoute[]): void {
    const named = routes.filter((r) => r.flagName !== null);
    for (const route of named) {
      if (!this.#flagRoutes.has(route.name)) {
        this.#logger.warn({ route: route.name, flag: route.flagName }, 'route names a flag but UNLEASH_URL is not set; it serves its policy split');
      }
    }
    this.#flagRoutes = new Set(named.map((r) => r.name));
  }

  async restart(): Promise<void> {}

  status(route: string): FlagStatus | null {
    return this.#flagRoutes.has(route) ? 'unconfigured' : null;
  }

  snapshotAgeSeconds(): number | null {
    return null;
  }

  drives(): boolean {
    return false;
  }

  expect(_route: string, _overlay: SplitOverlay): void {}

  async close(): Promise<void> {}
}
