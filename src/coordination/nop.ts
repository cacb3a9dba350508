// Coordination without Redis: each replica judges its own traffic and acts alone (the single-node behaviour).
import type { Coordination, RouteLink } from './coordination.js';

const aloneLink: RouteLink<never> = Object.freeze({ role: 'alone', pooled: null, leader: null, leaderState: null });

/** The nop: one constant epoch (only local resets start a new experiment), role `alone`, nothing published. */
export class LocalCoordination implements Coordination<unknown> {
  readonly enabled = false;
  readonly followerGraceMs = 0;
  readonly instanceId: string;

  constructor(instanceId: string) {
    this.instanceId = instanceId;
  }

  status(): 'off' {
    return 'off';
  }

  epoch(): string {
    return 'local';
  }

  link(): RouteLink<never> {
    return aloneLink;
  }

  view(): RouteLink<never> {
    return aloneLink;
  }

  forget(): void {}

  reportState(): void {}

  async announceRollback(): Promise<'alone'> {
    return 'alone';
  }

  async confirmLeadership(): Promise<boolean> {
    return true;
  }

  syncNow(): void {}

  start(): void {}

  async close(): Promise<void> {}
}
