// The routes the controller works on: those with recent traffic or a recent change. An idle route costs nothing per tick.
//
// A route joins when the windows saw traffic for it (until `now + quietMs`) or a snapshot swap changed it (until
// `now + changeMs`: long enough for the first looks, e.g. a rollout's first step and the fleet's first exchange). It
// leaves once that time has passed and the shell has nothing pending for it (`canLeave`). Work per tick is
// proportional to the routes in the set, never to the routes in the policy.

/** Route names with the time (clock ms) until which each stays active. */
export class ActiveRoutes {
  readonly #until = new Map<string, number>();

  /** Keeps `route` active at least until `until`. */
  touch(route: string, until: number): void {
    const current = this.#until.get(route);
    if (current === undefined || current < until) this.#until.set(route, until);
  }

  delete(route: string): void {
    this.#until.delete(route);
  }

  has(route: string): boolean {
    return this.#until.has(route);
  }

  get size(): number {
    return this.#until.size;
  }

  /** The active routes at `now`; those past their time for which `canLeave` holds leave the set first. */
  due(now: number, canLeave: (route: string) => boolean): string[] {
    const due: string[] = [];
    for (const [route, until] of this.#until) {
      if (until <= now && canLeave(route)) this.#until.delete(route);
      else due.push(route);
    }
    return due;
  }
}
