// Asks a rollout's confirm webhook whether an open gate may pass: polled in the background, never awaited by the tick.
import type { Logger } from 'pino';
import { request } from 'undici';
import type { Metrics } from '../metrics/registry.js';

/** The confirm settings of a rollout (policy `rollout.confirm`). */
export interface ConfirmSettings {
  url: string;
  /** ms between two asks while the answer is not 2xx. */
  interval: number;
  /** ms one ask may take. */
  timeout: number;
}

/** What is known of one gate's webhook, for the analysis. */
export interface ConfirmView {
  url: string;
  attempts: number;
  /** Status of the last answer, or null (none yet, or no answer in time). */
  lastStatus: number | null;
  /** Error code of the last ask that got no answer. */
  lastError: string | null;
  confirmed: boolean;
}

interface Poll {
  key: string;
  settings: ConfirmSettings;
  inFlight: boolean;
  lastAttempt: number;
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  confirmed: boolean;
}

/**
 * One poll per route, for the gate it waits at (a new gate key starts afresh). check() answers from what the last
 * answers said and at most starts one ask, so a slow or hanging webhook never delays a tick; an answer that arrives
 * for a gate the route has left is ignored.
 */
export class ConfirmGates {
  readonly #polls = new Map<string, Poll>();
  readonly #pending = new Set<Promise<void>>();
  readonly #metrics: Pick<Metrics, 'confirmRequests'>;
  readonly #logger: Logger | undefined;
  readonly #clock: () => number;
  readonly #onConfirmed: (route: string, url: string, status: number) => void;

  constructor(deps: { metrics: Pick<Metrics, 'confirmRequests'>; logger?: Logger; clock?: () => number; onConfirmed: (route: string, url: string, status: number) => void }) {
    this.#metrics = deps.metrics;
    this.#logger = deps.logger;
    this.#clock = deps.clock ?? Date.now;
    this.#onConfirmed = deps.onConfirmed;
  }

  /** True once the webhook answered 2xx for the gate `key` of `route`; else asks again when the interval has passed. */
  check(route: string, key: string, settings: ConfirmSettings, payload: object): boolean {
    let poll = this.#polls.get(route);
    if (poll === undefined || poll.key !== key) {
      poll = { key, settings, inFlight: false, lastAttempt: -Infinity, attempts: 0, lastStatus: null, lastError: null, confirmed: false };
      this.#polls.set(route, poll);
    }
    if (poll.confirmed) return true;
    const now = this.#clock();
    if (!poll.inFlight && now - poll.lastAttempt >= settings.interval) {
      poll.inFlight = true;
      poll.lastAttempt = now;
      poll.attempts++;
      const job = this.#ask(route, poll, payload);
      this.#pending.add(job);
      void job.finally(() => this.#pending.delete(job));
    }
    return false;
  }

  /** The webhook's state for the route's current gate (null when it waits for none). */
  view(route: string, key: string): ConfirmView | null {
    const poll = this.#polls.get(route);
    if (poll === undefined || poll.key !== key) return null;
    return { url: poll.settings.url, attempts: poll.attempts, lastStatus: poll.lastStatus, lastError: poll.lastError, confirmed: poll.confirmed };
  }

  /** Forgets the route's poll (its gate closed); an answer still in flight is then dropped. */
  forget(route: string): void {
    this.#polls.delete(route);
  }

  /** Waits for asks in flight (tests, shutdown). */
  async settle(): Promise<void> {
    await Promise.all(this.#pending);
  }

  async #ask(route: string, poll: Poll, payload: object): Promise<void> {
    const { url, timeout } = poll.settings;
    let status: number | null = null;
    let error: string | null = null;
    try {
      const res = await request(url, {
        method: 'POST',
        body: JSON.stringify(payload),
        headers: { 'content-type': 'application/json', 'user-agent': 'switchyard-confirm' },
        headersTimeout: timeout,
        bodyTimeout: timeout,
        signal: AbortSignal.timeout(timeout),
      });
      await res.body.dump();
      status = res.statusCode;
    } catch (err) {
      error = (err as { code?: string; name?: string }).code ?? (err as { name?: string }).name ?? 'error';
    }
    poll.inFlight = false;
    // The route left this gate (rolled back, promoted by a person, policy reloaded) while the ask was out.
    if (this.#polls.get(route) !== poll) return;
    poll.lastStatus = status;
    poll.lastError = error;
    if (status !== null && status >= 200 && status < 300) {
      poll.confirmed = true;
      this.#metrics.confirmRequests.labels(route, 'confirmed').inc();
      this.#onConfirmed(route, url, status);
      return;
    }
    this.#metrics.confirmRequests.labels(route, status === null ? 'failed' : 'refused').inc();
    this.#logger?.info({ route, url, status, error, attempt: poll.attempts }, 'confirm webhook has not confirmed the gate yet; asking again after the interval');
  }
}
