// The controller's view of the fleet: pooled statistics, who leads a route, and how a rollback reaches every replica.
import type { RouteWindow } from '../analysis/window.js';
import type { CompiledRoute } from '../decision/snapshot.js';
import type { ExperimentSnapshot, PooledView } from './pooled.js';

/** off: no Redis configured; starting: before the first exchange; ok; degraded: Redis unreachable or slow. */
export type CoordinationStatus = 'off' | 'starting' | 'ok' | 'degraded';

/**
 * What this replica may do for a route now.
 * - alone: no Redis; judges its own statistics and acts on everything (the single-node behaviour).
 * - leader: judges the pooled statistics and acts (rollback, rollout steps, promotion), fenced by its lease.
 * - follower: judges the pooled statistics for display and handover; acts only on its own hard breakers, and only
 *   if the leader has not acted within a grace period.
 * - degraded: Redis configured but unreachable; judges its own statistics and may roll back, but takes no rollout step.
 */
export type CoordinationRole = 'alone' | 'leader' | 'follower' | 'degraded';

/**
 * How a rollback announcement ended.
 * - alone: no Redis; the replica's rollback is the decision.
 * - published: this replica wrote it for the fleet (it does the external effects: Unleash, webhooks).
 * - already: the fleet had rolled back already (someone else did the effects).
 * - superseded: the fleet moved on (lease lost, or the route was resumed meanwhile); the local rollback was undone.
 * - unavailable: Redis unreachable; the rollback holds locally and is pushed to the fleet on rejoin.
 */
export type RollbackOutcome = 'alone' | 'published' | 'already' | 'superseded' | 'unavailable';

/** Where coordination records a change it applied from the fleet; the audit log is one (this layer never imports it). */
export interface ReplicaJournal {
  append(entry: { who: string; action: string; route: string; before: unknown; after: unknown; detail?: unknown }): unknown;
}

/** One controller tick's view of a route; `State` is the controller's rollout state, which coordination carries without reading. */
export interface RouteLink<State> {
  readonly role: CoordinationRole;
  /** Pooled statistics of the current epoch (this replica's live window included); null when not coordinated. */
  readonly pooled: PooledView | null;
  /** Instance id holding the route's lease (null: none known). */
  readonly leader: string | null;
  /** The leader's published rollout state for this epoch (null: none, or this replica leads). */
  readonly leaderState: State | null;
}

/**
 * The coordination port of the controller (Redis, or the nop for a single replica). `State` is the leader's rollout state:
 * the controller owns its shape and hands its schema to the Redis implementation, so this layer never imports control.
 * Only routes the controller links are exchanged, and a route it stops linking leaves the exchange shortly after: idle
 * routes cost no Redis command.
 */
export interface Coordination<State> {
  /** False without Redis: every replica decides alone. */
  readonly enabled: boolean;
  readonly instanceId: string;
  /** How long a follower's breaker breach must last before it acts itself (the leader gets the first chance). */
  readonly followerGraceMs: number;
  status(): CoordinationStatus;
  /** The experiment epoch of a route and controlled challenger; null while the fleet's generation is unknown. */
  epoch(route: CompiledRoute, challenger: string | null): string | null;
  /**
   * Binds the route's live window to `epoch` for publishing and returns what this replica may do. `experiment` (labelled
   * outcomes and pair agreement since the experiment began) replaces what is published with the window; omitted, it stays.
   */
  link(route: string, epoch: string | null, window: RouteWindow, experiment?: ExperimentSnapshot): RouteLink<State>;
  /**
   * What `link` would return, without binding anything or keeping the route in the exchange: for reads (the analysis
   * API). A route not linked yet has no pooled view.
   */
  view(route: string, epoch: string | null, window: RouteWindow, experiment?: ExperimentSnapshot): RouteLink<State>;
  /** The route left the policy: drop what is kept for it (a held lease is released). */
  forget(route: string): void;
  /** The leader's rollout state, published with the next exchange so a new leader continues from it. */
  reportState(route: string, state: State): void;
  /** Publishes a local rollback to the fleet; `fenced` when it is the leader's decision. Never rejects. */
  announceRollback(route: string, reason: string, fenced: boolean): Promise<RollbackOutcome>;
  /** Renews the lease right before a rollout step; false when this replica no longer leads. Never rejects. */
  confirmLeadership(route: string): Promise<boolean>;
  /** Reconciles the route's replicated control state now instead of at the next exchange (after a local resume). */
  syncNow(route: string): void;
  start(): void;
  /** Stops exchanging and releases held leases (a clean handover). */
  close(): Promise<void>;
}
