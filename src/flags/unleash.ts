// FlagSource over unleash-client 6: polls Unleash, maps each route's flag to a split off the request path, tracks freshness.
import type { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { request } from 'undici';
import { InMemStorageProvider, Unleash, UnleashEvents } from 'unleash-client';
import { z } from 'zod';
import type { SplitOverlay } from '../decision/shares.js';
import type { CompiledRoute } from '../decision/snapshot.js';
import { SWY_ERR_FLAG_READ } from '../errors.js';
import type { Metrics } from '../metrics/registry.js';
import { overlayFromFlag, sameSplit, type FlagDefinitionLike, type FlagReadingKind } from './mapping.js';
import { FLAG_STATUSES, type FlagOverlayTarget, type FlagSource, type FlagStatus } from './source.js';

/** Connection settings of the Unleash client (from UNLEASH_* env, see factory.ts). */
export interface UnleashSettings {
  /** Client API URL ending in `/api/`, e.g. http://unleash:4242/api/. */
  apiUrl: string;
  /** Server root for the Admin API, e.g. http://unleash:4242. */
  rootUrl: string;
  /** Backend (client) token; the token decides which environment's flags are served. */
  apiToken: string;
  appName: string;
  /** Static context only, and the environment admin write-through targets. */
  environment: string;
  refreshMs: number;
  instanceId?: string;
  /** Body of /api/client/features, served until Unleash first answers. */
  bootstrapFile?: string | null;
  /** Stop the SDK from posting usage metrics to Unleash. */
  disableMetrics?: boolean;
  /** Admin token for write-through (UNLEASH_ADMIN_TOKEN); null disables admin changes to flag-driven routes. */
  adminToken?: string | null;
}

/** What the Unleash source needs from the composition root. */
export interface UnleashFlagSourceDeps {
  splits: FlagOverlayTarget;
  metrics: Metrics;
  logger: Logger;
  /** Read on start and on every restart, so a reload picks up settings that changed. */
  settings: () => UnleashSettings;
}

const bootstrapSchema = z.object({
  features: z.array(
    z.looseObject({
      name: z.string(),
      enabled: z.boolean(),
      strategies: z.array(z.looseObject({ name: z.string(), parameters: z.record(z.string(), z.unknown()).optional() })).optional(),
      variants: z.array(z.looseObject({ name: z.string(), weight: z.number() })).optional(),
    }),
  ),
});

/** How long a write-through applied locally wins over older flag data still in flight (the server's revision tick). */
const MIN_EXPECT_GRACE_MS = 10_000;
/** unleash-client's default request timeout; a poll cannot take longer than this. */
const SDK_TIMEOUT_MS = 10_000;
const PROBE_TIMEOUT_MS = 5_000;

type Connection = 'pending' | 'live' | 'error' | 'unauthorized';

/** Follows Unleash flags for every route that names one. */
export class UnleashFlagSource implements FlagSource {
  readonly kind = 'unleash';
  readonly #deps: UnleashFlagSourceDeps;
  #settings: UnleashSettings;
  #client: Unleash | null = null;
  /** Routes that name a flag, by route name. */
  #routes = new Map<string, CompiledRoute>();
  #connection: Connection = 'pending';
  /** True once this client delivered data from Unleash (its store is then the truth, even if empty). */
  #synced = false;
  #bootstrap: ReadonlyMap<string, FlagDefinitionLike> | null = null;
  readonly #kinds = new Map<string, FlagReadingKind>();
  readonly #warned = new Map<string, string>();
  readonly #applied = new Map<string, SplitOverlay>();
  /** Splits replaced by a write-through: flag data still showing them is older than the write, so it is ignored. */
  readonly #pending = new Map<string, { previous: SplitOverlay | undefined; until: number }>();
  #startedAt = Date.now();
  #confirmedAt: number | null = null;
  #probing = false;
  #closed = false;

  constructor(deps: UnleashFlagSourceDeps) {
    this.#deps = deps;
    this.#settings = deps.settings();
  }

  get settings(): Readonly<UnleashSettings> {
    return this.#settings;
  }

  async start(routes: readonly CompiledRoute[]): Promise<void> {
    this.#startedAt = Date.now();
    this.#setRouteSet(routes);
    this.#deps.metrics.flagProbe = {
      statusNames: FLAG_STATUSES,
      ageSeconds: () => this.snapshotAgeSeconds(),
      statuses: () => [...this.#routes.keys()].map((name) => [name, this.status(name) ?? 'stale'] as const),
    };
    await this.#loadBootstrap();
    this.#createClient();
  }

  setRoutes(routes: readonly CompiledRoute[]): void {
    this.#setRouteSet(routes);
    this.#recompute();
  }

  async restart(): Promise<void> {
    if (this.#closed) return;
    this.#destroyClient();
    this.#settings = this.#deps.settings();
    // A live route stays live while the new client syncs (its data is still the last confirmed one); only a refused
    // token is forgotten, since the new client may carry a fixed one.
    if (this.#connection === 'unauthorized') this.#connection = 'pending';
    this.#synced = false;
    this.#deps.logger.info({ url: this.#settings.apiUrl, appName: this.#settings.appName }, 'unleash client recreated');
    this.#createClient();
  }

  status(route: string): FlagStatus | null {
    if (!this.#routes.has(route)) return null;
    if (this.#connection === 'unauthorized') return 'unauthorized';
    if (this.#isLive()) return this.#kinds.get(route) === 'missing' ? 'missing' : 'live';
    if (!this.#synced && this.#bootstrap !== null) return 'bootstrap';
    return 'stale';
  }

  snapshotAgeSeconds(): number | null {
    if (this.#routes.size === 0) return null;
    return (Date.now() - (this.#confirmedAt ?? this.#startedAt)) / 1000;
  }

  drives(route: string): boolean {
    return this.#routes.has(route);
  }

  expect(route: string, overlay: SplitOverlay): void {
    const grace = Math.max(MIN_EXPECT_GRACE_MS, 5 * this.#settings.refreshMs);
    this.#pending.set(route, { previous: this.#applied.get(route), until: Date.now() + grace });
    this.#applied.set(route, overlay);
    this.#deps.splits.setFlagOverlay(route, overlay);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#destroyClient();
    if (this.#deps.metrics.flagProbe?.statusNames === FLAG_STATUSES) this.#deps.metrics.flagProbe = null;
  }

  /** Live: the last poll succeeded, after the last failure, and recently enough (a hung poll also ages out). */
  #isLive(): boolean {
    if (this.#connection !== 'live' || this.#confirmedAt === null) return false;
    return Date.now() - this.#confirmedAt <= 2 * this.#settings.refreshMs + SDK_TIMEOUT_MS;
  }

  #setRouteSet(routes: readonly CompiledRoute[]): void {
    const next = new Map(routes.filter((r) => r.flagName !== null).map((r) => [r.name, r]));
    for (const name of this.#routes.keys()) {
      if (next.has(name)) continue;
      this.#kinds.delete(name);
      this.#warned.delete(name);
      this.#pending.delete(name);
      if (this.#applied.delete(name)) this.#deps.splits.setFlagOverlay(name, null);
    }
    this.#routes = next;
  }

  async #loadBootstrap(): Promise<void> {
    const file = this.#settings.bootstrapFile;
    if (!file) return;
    try {
      const parsed = bootstrapSchema.safeParse(JSON.parse(await readFile(file, 'utf8')));
      if (!parsed.success) throw new Error(`not the body of /api/client/features: ${z.prettifyError(parsed.error).replaceAll('\n', '; ')}`);
      this.#bootstrap = new Map(parsed.data.features.map((f) => [f.name, f as FlagDefinitionLike]));
    } catch (err) {
      const error = new SWY_ERR_FLAG_READ(`bootstrap file ${file}: ${(err as Error).message}`, { cause: err });
      this.#deps.logger.error({ err: error, code: error.code }, 'flag bootstrap file unusable; routes keep the policy split until Unleash answers');
      this.#deps.metrics.flagUpdates.labels('error').inc();
      return;
    }
    this.#deps.metrics.flagUpdates.labels('bootstrap').inc();
    this.#deps.logger.info({ file, flags: this.#bootstrap.size }, 'flag bootstrap applied');
    this.#recompute();
  }

  #createClient(): void {
    const s = this.#settings;
    const client = new Unleash({
      url: s.apiUrl,
      appName: s.appName,
      environment: s.environment,
      ...(s.instanceId ? { instanceId: s.instanceId } : {}),
      refreshInterval: s.refreshMs,
      timeout: SDK_TIMEOUT_MS,
      disableMetrics: s.disableMetrics ?? false,
      customHeaders: { Authorization: s.apiToken },
      // In memory: a backup file from an earlier run would make the client start on old flags (docs/flags.md, Unleash behaviours, item 5);
      // the policy split or the bootstrap file is the explicit, reviewed fallback instead.
      storageProvider: new InMemStorageProvider(),
      skipInstanceCountWarning: true,
    });
    client.on(UnleashEvents.Changed, () => this.#onData(client, true));
    client.on(UnleashEvents.Unchanged, () => this.#onData(client, false));
    client.on(UnleashEvents.Error, (err: unknown) => this.#onError(client, err));
    client.on(UnleashEvents.Warn, (msg: unknown) => this.#deps.logger.debug({ msg: String(msg) }, 'unleash client warning'));
    this.#client = client;
  }

  #destroyClient(): void {
    const client = this.#client;
    if (client === null) return;
    this.#client = null;
    client.removeAllListeners();
    // The SDK logs to console.error when 'error' has no listener; keep one on the discarded client.
    client.on(UnleashEvents.Error, () => undefined);
    client.destroy();
    // destroy() strips the repository's listeners while a poll may still be in flight; that poll's failure is then
    // emitted as an 'error' nobody listens to, which throws inside the SDK and surfaces as an unhandled rejection.
    (client as unknown as { repository?: EventEmitter }).repository?.on(UnleashEvents.Error, () => undefined);
  }

  /** A poll succeeded: `changed` carries new data, `unchanged` is a 304. Both confirm the snapshot is current. */
  #onData(client: Unleash, changed: boolean): void {
    if (client !== this.#client) return;
    const wasLive = this.#isLive();
    this.#connection = 'live';
    this.#confirmedAt = Date.now();
    if (!wasLive) this.#deps.logger.info({ url: this.#settings.apiUrl }, 'unleash flags live');
    if (changed || !this.#synced) {
      this.#synced = true;
      this.#bootstrap = null;
      if (this.#recompute() === 0) this.#deps.metrics.flagUpdates.labels('unchanged').inc();
    } else {
      this.#deps.metrics.flagUpdates.labels('unchanged').inc();
    }
  }

  #onError(client: Unleash, err: unknown): void {
    if (client !== this.#client) return;
    if (this.#connection === 'live') this.#deps.logger.warn({ err }, 'unleash unreachable or failing; routes keep their last flag split');
    // The SDK reports 401/403 only as an Error message (no code or status); ask Unleash once to get the status code.
    if (this.#probing) return;
    this.#probing = true;
    void this.#probeStatus()
      .then((status) => {
        if (client !== this.#client) return;
        if (status === 401 || status === 403) {
          this.#connection = 'unauthorized';
          this.#deps.metrics.flagUpdates.labels('unauthorized').inc();
          this.#deps.logger.error(
            { url: this.#settings.apiUrl, status, routes: [...this.#routes.keys()] },
            `UNLEASH API TOKEN REJECTED (${status}): Unleash refuses UNLEASH_API_TOKEN, the client stopped polling and flag-driven routes are frozen on their last split; fix the token and reload (SIGHUP) to recreate the client`,
          );
        } else if (status === null || status >= 300) {
          this.#connection = 'error';
          this.#deps.metrics.flagUpdates.labels('error').inc();
        } else {
          // Unleash serves features to our token, so the error came from elsewhere (e.g. the SDK's usage metrics).
          this.#deps.logger.debug({ err }, 'unleash client error while the features API answers');
        }
      })
      .finally(() => {
        this.#probing = false;
      });
  }

  /** HTTP status of one features request with our token; null when Unleash could not be reached at all. */
  async #probeStatus(): Promise<number | null> {
    try {
      const res = await request(`${this.#settings.apiUrl}client/features`, {
        headers: { authorization: this.#settings.apiToken, 'unleash-appname': this.#settings.appName },
        headersTimeout: PROBE_TIMEOUT_MS,
        bodyTimeout: PROBE_TIMEOUT_MS,
      });
      await res.body.dump();
      return res.statusCode;
    } catch {
      return null;
    }
  }

  /** Recomputes every flag route's overlay from the freshest data at hand; returns how many routes changed. */
  #recompute(): number {
    let lookup: ((name: string) => FlagDefinitionLike | undefined) | null = null;
    let source: 'flag' | 'bootstrap' = 'flag';
    const client = this.#client;
    if (this.#synced && client !== null) lookup = (name) => client.getFeatureToggleDefinition(name) as FlagDefinitionLike | undefined;
    else if (this.#bootstrap !== null) {
      const data = this.#bootstrap;
      lookup = (name) => data.get(name);
      source = 'bootstrap';
    }
    if (lookup === null) return 0;
    let changed = 0;
    const now = Date.now();
    for (const route of this.#routes.values()) {
      const result = overlayFromFlag(route, lookup(route.flagName!), source);
      const previousKind = this.#kinds.get(route.name);
      this.#kinds.set(route.name, result.kind);
      const warningText = result.warnings.join('\n');
      if (warningText !== (this.#warned.get(route.name) ?? '')) {
        this.#warned.set(route.name, warningText);
        if (result.kind === 'missing') this.#deps.metrics.flagUpdates.labels('missing').inc();
        else if (result.warnings.length > 0) this.#deps.metrics.flagUpdates.labels('invalid').inc();
        for (const warning of result.warnings) this.#deps.logger.warn({ route: route.name, flag: route.flagName }, warning);
      }
      if (previousKind !== result.kind && result.kind === 'disabled') this.#deps.logger.info({ route: route.name, flag: route.flagName }, 'flag disabled; serving the champion only');
      const pending = this.#pending.get(route.name);
      if (pending !== undefined) {
        // Still the split we replaced: Unleash has not served our write yet (revision tick). Anything else is newer.
        if (pending.previous !== undefined && sameSplit(pending.previous, result.overlay) && now < pending.until) continue;
        this.#pending.delete(route.name);
      }
      const previous = this.#applied.get(route.name);
      if (previous !== undefined && previous.source === result.overlay.source && sameSplit(previous, result.overlay)) continue;
      this.#applied.set(route.name, result.overlay);
      this.#deps.splits.setFlagOverlay(route.name, result.overlay);
      this.#deps.metrics.flagUpdates.labels('applied').inc();
      this.#deps.logger.info({ route: route.name, flag: route.flagName, source, split: result.overlay.challengers.filter((c) => c.percent > 0) }, 'flag split applied');
      changed++;
    }
    return changed;
  }
}
