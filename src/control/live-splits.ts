// Combines the policy's splits with flag states, operator overrides and rollbacks, and publishes one new snapshot per change.
import { policyState } from '../decision/compile.js';
import type { OperatorOverride, SplitOverlay } from '../decision/shares.js';
import { buildSnapshot, type CompiledRoute, type DecisionSnapshot, type RouteState, type SnapshotRef } from '../decision/snapshot.js';

/**
 * A route's operator control state as its one owner (the StateStore) holds it: LiveSplits reads it when it builds a
 * snapshot and keeps no copy, so a rollback, pause or override cannot disagree between the two.
 */
export interface RouteControlReader {
  override(route: string): OperatorOverride | undefined;
  isPaused(route: string): boolean;
  isRolledBack(route: string): boolean;
}

const noControl: RouteControlReader = { override: () => undefined, isPaused: () => false, isRolledBack: () => false };

/** Builds every route's live state from the policy, flag overlays and the control state; each change swaps one new snapshot. */
export class LiveSplits {
  #routes: readonly CompiledRoute[] = [];
  #version = '';
  readonly #flagOverlays = new Map<string, SplitOverlay>();
  #control: RouteControlReader = noControl;
  readonly #ref: SnapshotRef;

  constructor(ref: SnapshotRef) {
    this.#ref = ref;
  }

  /** Reads operator overrides, pauses and rollbacks from their owner from now on (the StateStore attaches itself). */
  attachControl(control: RouteControlReader): void {
    this.#control = control;
    this.publish();
  }

  get snapshot(): DecisionSnapshot {
    return this.#ref.current;
  }

  get routes(): readonly CompiledRoute[] {
    return this.#routes;
  }

  /** Installs a newly loaded policy; flag overlays for routes that no longer exist are dropped. */
  setPolicy(routes: readonly CompiledRoute[], version: string): void {
    this.#routes = routes;
    this.#version = version;
    const names = new Set(routes.map((r) => r.name));
    for (const key of this.#flagOverlays.keys()) if (!names.has(key)) this.#flagOverlays.delete(key);
    this.publish();
  }

  setFlagOverlay(route: string, overlay: SplitOverlay | null): void {
    if (overlay) this.#flagOverlays.set(route, overlay);
    else this.#flagOverlays.delete(route);
    this.publish();
  }

  /** The live state a route would get now. */
  stateFor(route: CompiledRoute): RouteState {
    const base = policyState(route);
    const override = this.#control.override(route.name);
    const overlay: SplitOverlay | undefined = override !== undefined ? { ...override, source: 'override' } : this.#flagOverlays.get(route.name);
    const rolledBack = this.#control.isRolledBack(route.name);
    return Object.freeze({
      challengers: overlay ? Object.freeze([...overlay.challengers]) : base.challengers,
      groupId: overlay?.groupId ?? base.groupId,
      source: rolledBack ? 'rollback' : (overlay?.source ?? base.source),
      paused: this.#control.isPaused(route.name),
      rolledBack,
    });
  }

  /** Rebuilds the snapshot from current inputs and swaps it in (one reference assignment). */
  publish(): void {
    const states = new Map(this.#routes.map((route) => [route.name, this.stateFor(route)]));
    this.#ref.swap(buildSnapshot(this.#routes, states, this.#version));
  }
}
