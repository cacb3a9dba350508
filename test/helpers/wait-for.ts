// The one wait for a condition in tests: polls a probe, names what it waited for (and what it saw last) at the deadline.

export interface WaitOptions {
  /** Default 10,000. */
  timeoutMs?: number;
  /** Default 25. */
  intervalMs?: number;
  /** Where the clock starts (performance.now()): the time returned and the deadline count from it. Default: now. */
  since?: number;
  /** What the probe saw last, for the error at the deadline. */
  lastSeen?: () => unknown;
}

/**
 * Re-checks `probe` until it returns true and resolves with the milliseconds since `since`; rejects naming `what` at
 * the deadline. Inside a test `expect.poll` does the same; this one also works in hooks and helpers, and returns the
 * time taken for tests that report how long a change needed to arrive.
 */
export async function waitFor(what: string, probe: () => boolean | Promise<boolean>, options: number | WaitOptions = {}): Promise<number> {
  const { timeoutMs = 10_000, intervalMs = 25, since = performance.now(), lastSeen } = typeof options === 'number' ? { timeoutMs: options } : options;
  for (;;) {
    if (await probe()) return performance.now() - since;
    if (performance.now() - since > timeoutMs) {
      throw new Error(`${what}: not reached within ${timeoutMs} ms${lastSeen === undefined ? '' : `; last seen ${JSON.stringify(lastSeen())}`}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
