// Optional webhooks for rollbacks and promotions: JSON POSTs retried with backoff, never awaited by serving or the controller.
import type { Logger } from 'pino';
import { request } from 'undici';
import type { Metrics } from '../metrics/registry.js';

/** Sends controller events to configured URLs. */
export class Webhooks {
  readonly #urls: readonly string[];
  readonly #logger: Logger | undefined;
  readonly #metrics: Metrics;
  readonly #attempts: number;
  readonly #baseDelayMs: number;
  readonly #pending = new Set<Promise<void>>();

  constructor(urls: readonly string[], metrics: Metrics, logger?: Logger, options: { attempts?: number; baseDelayMs?: number } = {}) {
    this.#urls = urls;
    this.#metrics = metrics;
    this.#logger = logger;
    this.#attempts = options.attempts ?? 5;
    this.#baseDelayMs = options.baseDelayMs ?? 500;
  }

  /** Parses SWITCHYARD_WEBHOOK_URLS (comma separated); each must be an http(s) URL. */
  static parse(value: string | undefined): string[] {
    if (!value) return [];
    return value.split(',').map((u) => u.trim()).filter((u) => u !== '').map((u) => {
      const url = new URL(u);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`SWITCHYARD_WEBHOOK_URLS: ${u} is not an http(s) URL`);
      return url.toString();
    });
  }

  /** Fires the event at every URL in the background. */
  send(event: object): void {
    for (const url of this.#urls) {
      const job = this.#deliver(url, event);
      this.#pending.add(job);
      void job.finally(() => this.#pending.delete(job));
    }
  }

  async #deliver(url: string, event: object): Promise<void> {
    const body = JSON.stringify(event);
    for (let attempt = 1; attempt <= this.#attempts; attempt++) {
      try {
        const res = await request(url, { method: 'POST', body, headers: { 'content-type': 'application/json', 'user-agent': 'switchyard-webhook' }, headersTimeout: 5_000, bodyTimeout: 5_000 });
        await res.body.dump();
        if (res.statusCode < 300) {
          this.#metrics.webhooks.labels('delivered').inc();
          return;
        }
        this.#logger?.warn({ url, status: res.statusCode, attempt }, 'webhook refused');
      } catch (err) {
        this.#logger?.warn({ url, attempt, code: (err as { code?: string }).code }, 'webhook failed');
      }
      // Exponential backoff: 0.5 s, 1 s, 2 s, 4 s.
      if (attempt < this.#attempts) await new Promise((resolve) => setTimeout(resolve, this.#baseDelayMs * 2 ** (attempt - 1)).unref());
    }
    this.#metrics.webhooks.labels('failed').inc();
  }

  /** Waits for deliveries in flight (tests, shutdown). */
  async settle(): Promise<void> {
    await Promise.all(this.#pending);
  }
}
