// Combines the policy's splits with flag states, operator overrides and rollbacks, and publishes one new snapshot per change.
import { policyState } from '../config/compile.js';
import { buildSnapshot, type ChallengerShare, type CompiledRoute, type DecisionSnapshot, type RouteState, type SnapshotRef, type SplitSource } from '../decision/snapshot.js';

/** A split set from outside the policy (a flag, an operator, bootstrap data). */
export interface SplitOverlay {
  challengers: readonly ChallengerShare[];
  groupId?: string;
  source: SplitSource;
}

/** Owns the inputs of every route's live state; each mutation rebuilds the snapshot off the request path and swaps it. */
export class LiveSplits {
  #routes: readonly CompiledRoute[] = [];
  #version = '';
  readonly #flagOverlays = new Map<string, SplitOverlay>();
  readonly #operatorOverlays = new Map<string, SplitOverlay>();
  readonly #paused = new Set<string>();
  readonly #rolledBack = new Set<string>();
  readonly #ref: SnapshotRef;

  constructor(ref: SnapshotRef) {
    this.#ref = ref;
  }

  get snapshot(): DecisionSnapshot {
    return this.#ref.current;
  }

  get routes(): readonly CompiledRoute[] {
    return this.#routes;
  }

  /** Installs a newly loaded policy; overlays for routes that no longer exist are dropped. */
  setPolicy(routes: readonly CompiledRoute[], version: string): void {
    this.#routes = routes;
    this.#version = version;
    const names = new Set(routes.map((r) => r.name));
    for (const map of [this.#flagOverlays, this.#operatorOverlays]) for (const key of map.keys()) if (!names.has(key)) map.delete(key);
    this.publish();
  }

  setFlagOverlay(route: string, overlay: SplitOverlay | null): void {
    if (overlay) this.#flagOverlays.set(route, overlay);
    else this.#flagOverlays.delete(route);
    this.publish();
  }

  setOperatorOverlay(route: string, overlay: SplitOverlay | null): void {
    if (overlay) this.#operatorOverlays.set(route, overlay);
    else this.#operatorOverlays.delete(route);
    this.publish();
  }

  setPaused(route: string, paused: boolean): void {
    if (paused) this.#paused.add(route);
    else this.#paused.delete(route);
    this.publish();
  }

  setRolledBack(route: string, rolledBack: boolean): void {
    if (rolledBack) this.#rolledBack.add(route);
    else this.#rolledBack.delete(route);
    this.publish();
  }

  isRolledBack(route: string): boolean {
    return this.#rolledBack.has(route);
  }

  /** The live state a route would get now. */
  stateFor(route: CompiledRoute): RouteState {
    const base = policyState(route);
    const overlay = this.#operatorOverlays.get(route.name) ?? this.#flagOverlays.get(route.name);
    const rolledBack = this.#rolledBack.has(route.name);
    return Object.freeze({
      challengers: overlay ? Object.freeze([...overlay.challengers]) : base.challengers,
      groupId: overlay?.groupId ?? base.groupId,
      source: rolledBack ? 'rollback' : (overlay?.source ?? base.source),
      paused: this.#paused.has(route.name),
      rolledBack,
    });
  }

  /** Rebuilds the snapshot from current inputs and swaps it in (one reference assignment). */
  publish(): void {
    const states = new Map(this.#routes.map((route) => [route.name, this.stateFor(route)]));
    this.#ref.swap(buildSnapshot(this.#routes, states, this.#version));
  }
}
