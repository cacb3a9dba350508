// The checklist every FlagSource runs (test/contracts/flag-sources.test.ts): what the rest of Switchyard relies on.
import { afterEach, describe, expect, it } from 'vitest';
import { routeSchema } from '../../src/config/policy-schema.js';
import { LiveSplits } from '../../src/control/live-splits.js';
import { compileRoute } from '../../src/decision/compile.js';
import type { SplitOverlay } from '../../src/decision/shares.js';
import { emptySnapshot, SnapshotRef, type CompiledRoute } from '../../src/decision/snapshot.js';
import { FLAG_STATUSES, type FlagOverlayTarget, type FlagSource } from '../../src/flags/source.js';

/** A route that names a flag, and one that does not. */
export const flagRoute: CompiledRoute = compileRoute(routeSchema.parse({
  name: 'flagged',
  match: { pathPrefix: '/v1/models/flagged' },
  champion: { name: 'flagged-v1', url: 'http://127.0.0.1:9001' },
  challengers: [{ name: 'flagged-v2', url: 'http://127.0.0.1:9002', mode: 'canary', percent: 5 }],
  flag: { name: 'flagged-rollout' },
}));
export const plainRoute: CompiledRoute = compileRoute(routeSchema.parse({
  name: 'plain',
  match: { pathPrefix: '/v1/models/plain' },
  champion: { name: 'plain-v1', url: 'http://127.0.0.1:9001' },
  challengers: [{ name: 'plain-v2', url: 'http://127.0.0.1:9002', mode: 'canary', percent: 5 }],
}));

/** Builds the source under test, writing overlays to `splits`; `cleanup` undoes what the factory set up. */
export type FlagSourceFactory = (splits: FlagOverlayTarget) => Promise<{ source: FlagSource; cleanup?: () => Promise<void> }>;

/** Registers the FlagSource contract for one implementation. */
export function describeFlagSource(name: string, make: FlagSourceFactory): void {
  describe(`FlagSource contract: ${name}`, () => {
    let teardown: (() => Promise<void>) | null = null;
    afterEach(async () => {
      await teardown?.();
      teardown = null;
    });

    /** A started source over both routes, with the LiveSplits it writes to. */
    async function started(): Promise<{ source: FlagSource; splits: LiveSplits }> {
      const splits = new LiveSplits(new SnapshotRef(emptySnapshot()));
      splits.setPolicy([flagRoute, plainRoute], 'v1');
      const { source, cleanup } = await make(splits);
      teardown = async () => {
        await source.close();
        await cleanup?.();
      };
      await source.start([flagRoute, plainRoute]);
      return { source, splits };
    }

    it('names its kind', async () => {
      const { source } = await started();
      expect(source.kind).toMatch(/^[a-z]+$/);
    });

    it('has no say over a route that names no flag: no status, not driven, the policy split stays', async () => {
      const { source, splits } = await started();
      expect(source.status(plainRoute.name)).toBeNull();
      expect(source.drives(plainRoute.name)).toBe(false);
      expect(splits.snapshot.byName.get(plainRoute.name)?.state.source).toBe('policy');
    });

    it('reports one of the known statuses for a route that names a flag, and a non-negative snapshot age', async () => {
      const { source } = await started();
      expect(FLAG_STATUSES).toContain(source.status(flagRoute.name));
      const age = source.snapshotAgeSeconds();
      if (age !== null) expect(age).toBeGreaterThanOrEqual(0);
    });

    it('applies an expected split of a route it drives at once (a write-through is never undone by the next poll)', async () => {
      const { source, splits } = await started();
      const overlay: SplitOverlay = { challengers: [{ name: 'flagged-v2', mode: 'canary', percent: 40 }], groupId: 'flagged-rollout', source: 'flag' };
      if (!source.drives(flagRoute.name)) {
        // A source that drives nothing (flags not configured) leaves the policy split, whatever the route names.
        expect(splits.snapshot.byName.get(flagRoute.name)?.state.source).toBe('policy');
        return;
      }
      source.expect(flagRoute.name, overlay);
      expect(splits.snapshot.byName.get(flagRoute.name)?.state.challengers).toEqual(overlay.challengers);
    });

    it('forgets a route that a reload removed', async () => {
      const { source } = await started();
      source.setRoutes([plainRoute]);
      expect(source.status(flagRoute.name)).toBeNull();
      expect(source.drives(flagRoute.name)).toBe(false);
    });

    it('restarts and closes without throwing, and a closed source can be closed again', async () => {
      const { source } = await started();
      await source.restart();
      await source.close();
      await source.close();
    });
  });
}
