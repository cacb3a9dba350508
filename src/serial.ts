// Runs asynchronous work one at a time per key (a route): the one per-route lock of the split changer and of coordination.

/** Serialises work per key: each run starts after every earlier run of the same key settled, whether it failed or not. */
export class KeyedSerial {
  readonly #tails = new Map<string, Promise<unknown>>();

  /** Runs `work` after every earlier run for `key`; its result or rejection is returned, the queue goes on either way. */
  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const run = previous.then(work, work);
    const tail = run.catch(() => undefined);
    this.#tails.set(key, tail);
    // A key whose queue ran empty is forgotten, so the map holds only keys with work pending.
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return run;
  }
}
