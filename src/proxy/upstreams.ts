// Long-lived undici keep-alive pools: one per route and upstream origin (a lane), shared across reloads, closed when unused.
import { Pool } from 'undici';

/** Pool settings; keepAliveTimeout stays below common model-server idle timeouts (docs/performance.md, "Keep-alive timeouts"). */
export interface PoolOptions {
  connections: number;
  keepAliveTimeoutMs: number;
}

const defaults: PoolOptions = { connections: 256, keepAliveTimeoutMs: 4_000 };

function createPool(origin: string, connectTimeoutMs: number, options: PoolOptions): Pool {
  return new Pool(origin, {
    connections: options.connections,
    // Inference calls are long and variable: pipelining would add head-of-line blocking (docs/performance.md, "No pipelining to model servers").
    pipelining: 1,
    keepAliveTimeout: options.keepAliveTimeoutMs,
    keepAliveMaxTimeout: 60_000,
    connect: { timeout: connectTimeoutMs },
  });
}

/**
 * One route's connections to one upstream origin. Routes never share a lane, so requests that hold connections for
 * long (slow uploads, a hanging model) exhaust only their own route's. undici queues a request when every connection
 * is taken, with no time limit: `inFlight` lets the data plane see that moment without asking undici (whose pool
 * statistics walk every client) and bound the wait itself.
 */
export class Lane {
  readonly pool: Pool;
  readonly connections: number;
  /** Exchanges dispatched on this lane and not yet finished; the data plane keeps it. */
  inFlight = 0;
  readonly #origin: string;
  readonly #connectTimeoutMs: number;
  #fresh: Pool | null = null;

  constructor(origin: string, connectTimeoutMs: number, options: PoolOptions) {
    this.pool = createPool(origin, connectTimeoutMs, options);
    this.connections = options.connections;
    this.#origin = origin;
    this.#connectTimeoutMs = connectTimeoutMs;
  }

  /**
   * A pool that never reuses a connection (pipelining 0: each request goes out on a new connection with `Connection:
   * close`), for the one retry of a request whose kept-alive connection the upstream had closed: on another idle
   * connection it could meet the same race. Created on the first retry.
   */
  fresh(): Pool {
    this.#fresh ??= new Pool(this.#origin, { connections: this.connections, pipelining: 0, connect: { timeout: this.#connectTimeoutMs } });
    return this.#fresh;
  }

  /** True once a reload or shutdown closed the lane: requests must look it up again. */
  get closed(): boolean {
    return this.pool.closed || this.pool.destroyed;
  }

  async close(): Promise<void> {
    await Promise.all([this.pool.close(), this.#fresh?.close()]);
  }

  async destroy(): Promise<void> {
    await Promise.all([this.pool.destroy(), this.#fresh?.destroy()]);
  }
}

/** Registry of upstream pools: lanes keyed by route, origin and connect timeout; plain pools keyed by origin and timeout. */
export class UpstreamPools {
  readonly #pools = new Map<string, Pool>();
  readonly #lanes = new Map<string, Lane>();
  readonly #options: PoolOptions;

  constructor(options: Partial<PoolOptions> = {}) {
    this.#options = { ...defaults, ...options };
  }

  /** A pool per origin shared by every caller (shadow mirrors), created on first use (at compile time, not per request). */
  get(origin: string, connectTimeoutMs: number): Pool {
    const key = UpstreamPools.key(origin, connectTimeoutMs);
    let pool = this.#pools.get(key);
    if (!pool) {
      pool = createPool(origin, connectTimeoutMs, this.#options);
      this.#pools.set(key, pool);
    }
    return pool;
  }

  /** The lane of a route to an origin, created on first use (at compile time, not per request). */
  lane(route: string, origin: string, connectTimeoutMs: number): Lane {
    const key = UpstreamPools.laneKey(route, origin, connectTimeoutMs);
    let lane = this.#lanes.get(key);
    if (!lane) {
      lane = new Lane(origin, connectTimeoutMs, this.#options);
      this.#lanes.set(key, lane);
    }
    return lane;
  }

  /** Closes pools and lanes whose key is not in `keep`, after their in-flight requests finish. */
  async retain(keep: ReadonlySet<string>): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const [key, pool] of this.#pools) {
      if (keep.has(key)) continue;
      this.#pools.delete(key);
      closing.push(pool.close());
    }
    for (const [key, lane] of this.#lanes) {
      if (keep.has(key)) continue;
      this.#lanes.delete(key);
      closing.push(lane.close());
    }
    await Promise.all(closing);
  }

  /** Key under which `get` stores a pool; used to compute what a new policy still needs. */
  static key(origin: string, connectTimeoutMs: number): string {
    return `${origin}|${connectTimeoutMs}`;
  }

  /** Key under which `lane` stores a lane (route names cannot hold "|"). */
  static laneKey(route: string, origin: string, connectTimeoutMs: number): string {
    return `${route}|${origin}|${connectTimeoutMs}`;
  }

  async close(): Promise<void> {
    await this.retain(new Set());
  }

  /** Aborts everything in flight and closes every pool at once (shutdown after the drain, or shadow pools). */
  async destroy(): Promise<void> {
    const pools = [...this.#pools.values()];
    const lanes = [...this.#lanes.values()];
    this.#pools.clear();
    this.#lanes.clear();
    await Promise.all([...pools.map((pool) => pool.destroy()), ...lanes.map((lane) => lane.destroy())]);
  }
}
