// One long-lived undici keep-alive Pool per upstream origin, shared across policy reloads and closed when unused.
import { Pool } from 'undici';

/** Pool settings; keepAliveTimeout stays below common model-server idle timeouts (docs/performance.md, "Keep-alive timeouts"). */
export interface PoolOptions {
  connections: number;
  keepAliveTimeoutMs: number;
}

const defaults: PoolOptions = { connections: 256, keepAliveTimeoutMs: 4_000 };

/** Registry of upstream pools keyed by origin and connect timeout. */
export class UpstreamPools {
  readonly #pools = new Map<string, Pool>();
  readonly #options: PoolOptions;

  constructor(options: Partial<PoolOptions> = {}) {
    this.#options = { ...defaults, ...options };
  }

  /** Returns the pool for an origin, creating it on first use (at compile time, not per request). */
  get(origin: string, connectTimeoutMs: number): Pool {
    const key = `${origin}|${connectTimeoutMs}`;
    let pool = this.#pools.get(key);
    if (!pool) {
      pool = new Pool(origin, {
        connections: this.#options.connections,
        // Inference calls are long and variable: pipelining would add head-of-line blocking (docs/performance.md, "No pipelining to model servers").
        pipelining: 1,
        keepAliveTimeout: this.#options.keepAliveTimeoutMs,
        keepAliveMaxTimeout: 60_000,
        connect: { timeout: connectTimeoutMs },
      });
      this.#pools.set(key, pool);
    }
    return pool;
  }

  /** Closes pools whose key is not in `keep`, after their in-flight requests finish. */
  async retain(keep: ReadonlySet<string>): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const [key, pool] of this.#pools) {
      if (keep.has(key)) continue;
      this.#pools.delete(key);
      closing.push(pool.close());
    }
    await Promise.all(closing);
  }

  /** Key under which `get` stores a pool; used to compute what a new policy still needs. */
  static key(origin: string, connectTimeoutMs: number): string {
    return `${origin}|${connectTimeoutMs}`;
  }

  async close(): Promise<void> {
    await this.retain(new Set());
  }

  /** Aborts everything in flight and closes every pool at once (shutdown after the drain, or shadow pools). */
  async destroy(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((pool) => pool.destroy()));
  }
}
