// The flag plug point: a FlagSource turns an external flag system's state into route overlays on LiveSplits.
import type { CompiledRoute } from '../decision/snapshot.js';
import type { SplitOverlay } from '../decision/shares.js';

/**
 * How current a flag-driven route's split is:
 * - `live`: Unleash answered the last poll and the split follows the flag;
 * - `stale`: Unleash has not answered (yet, or any more); the route keeps its last flag split or the policy split;
 * - `bootstrap`: the split comes from UNLEASH_BOOTSTRAP_FILE and Unleash has not answered yet;
 * - `unauthorized`: Unleash refused the API token (401/403); the SDK stopped polling until the client is recreated;
 * - `missing`: Unleash answered but has no such flag, so the route serves the champion only;
 * - `unconfigured`: the route names a flag but no Unleash is configured (UNLEASH_URL unset); the policy split applies.
 */
export type FlagStatus = 'live' | 'stale' | 'bootstrap' | 'unauthorized' | 'missing' | 'unconfigured';

/** Every FlagStatus value, for metrics that publish one series per status. */
export const FLAG_STATUSES: readonly FlagStatus[] = ['live', 'stale', 'bootstrap', 'unauthorized', 'missing', 'unconfigured'];

/** Writes flag overlays; LiveSplits implements it (the narrow slice a source needs). */
export interface FlagOverlayTarget {
  setFlagOverlay(route: string, overlay: SplitOverlay | null): void;
}

/**
 * A source of flag state. Implementations evaluate locally and push overlays when their data changes; nothing here is
 * ever called per request.
 */
export interface FlagSource {
  /** 'unleash' or 'nop', for logs and the admin API. */
  readonly kind: string;
  /** Starts following flags for these routes; resolves without waiting for the flag server. */
  start(routes: readonly CompiledRoute[]): Promise<void>;
  /** A policy reload installed new routes: recompute every flag-driven route's overlay from the data at hand. */
  setRoutes(routes: readonly CompiledRoute[]): void;
  /** Recreates the client (policy reload, SIGHUP), e.g. after a 401 made the SDK stop polling for good. */
  restart(): Promise<void>;
  /** The route's flag status; null when the route does not follow a flag. */
  status(route: string): FlagStatus | null;
  /** Seconds since the flag server last confirmed the snapshot (since start when it never did); null without flags. */
  snapshotAgeSeconds(): number | null;
  /** True when this source drives the route's split from a flag (so admin changes must go to the flag server). */
  drives(route: string): boolean;
  /**
   * Applies a split just written to the flag server at once. For a grace period, flag data that still shows the split
   * it replaced is ignored, so a poll answered before the server saw the write does not flip the route back.
   */
  expect(route: string, overlay: SplitOverlay): void;
  close(): Promise<void>;
}
