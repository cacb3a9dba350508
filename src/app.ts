// Composition root: loads policies, wires the data plane, control state and admin API; no listening until listen().
import { EventEmitter } from 'node:events';
import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import { AdminAuth, type AdminToken } from './admin/auth.js';
import { buildAdmin } from './admin/server.js';
import { splitsApi } from './admin/splits-api.js';
import { controlApi } from './admin/control-api.js';
import { feedbackApi } from './admin/feedback-api.js';
import { GuardrailHistory } from './admin/guardrail-history.js';
import { uiApi } from './admin/ui.js';
import { LiveWindows } from './analysis/window.js';
import { Controller } from './control/controller.js';
import type { Coordination } from './coordination/coordination.js';
import { controlStateSchema, type ControlState } from './control/phases.js';
import { createCoordination, type CoordinationOptions } from './coordination/factory.js';
import { SplitChanger } from './control/split-changer.js';
import { Notifier } from './control/notifier.js';
import { notifyConfigFromEnv, type NotifyConfig } from './control/notify-config.js';
import { FlagStaleness } from './control/flag-staleness.js';
import { eventsApi } from './admin/events-api.js';
import { LocalEventTrail, RedisEventTrail, type EventTrail } from './control/event-trail.js';
import { redisSettings } from './coordination/factory.js';
import { precreateGlobalSeries, precreateRouteSeries } from './control/metric-series.js';
import { AuditLog } from './control/audit.js';
import { StateStore } from './control/state-store.js';
import { createFlagSource, type FlagSettingsInput } from './flags/factory.js';
import type { FlagSource } from './flags/source.js';
import { UnleashAdminClient } from './flags/unleash-admin.js';
import { unleashFlagWriter } from './flags/write-through.js';
import { compilePolicy } from './decision/compile.js';
import { loadPolicy, type PolicyProblem } from './config/load.js';
import type { SinkKind } from './config/env.js';
import { LiveSplits } from './control/live-splits.js';
import { emptySnapshot, SnapshotRef, type DecisionSnapshot } from './decision/snapshot.js';
import { servedShares } from './decision/split.js';
import { Metrics } from './metrics/registry.js';
import { DataPathMetrics } from './proxy/data-path-metrics.js';
import { clientErrorListener } from './proxy/client-error.js';
import { DataPlane, type Lifecycle } from './proxy/data-plane.js';
import { RequestLog, type RequestLogSettings } from './proxy/request-log.js';
import { maxRequestHeaderFields } from './proxy/headers.js';
import { UpstreamPools } from './proxy/upstreams.js';
import { recorderBudgets, resolveMemoryMb } from './record/budgets.js';
import { RecorderClient } from './record/recorder-client.js';
import { fanOut, type ObservationPort } from './record/port.js';
import type { CloudEventsSinkSettings, NatsSinkSettings } from './record/sinks/sink.js';
import { SWY_ERR_ENV_INVALID } from './errors.js';
import { ShadowMirror } from './shadow/mirror.js';
import type { Tracing, TracingOptions } from './tracing/otel.js';

/** Options for one Switchyard instance. */
export interface SwitchyardOptions {
  /** Policy file or directory. */
  configPath: string;
  host?: string;
  port?: number;
  adminHost?: string;
  adminPort?: number;
  /** Upper bound on the SIGTERM drain: in-flight requests get this long to finish. */
  drainMs?: number;
  /** Reload when the policy file or directory changes. */
  watch?: boolean;
  logger?: Logger;
  defaultMetrics?: boolean;
  /** Request bodies up to this many bytes are kept for fallback replay, mirrors and records. */
  keepBodyBytes?: number;
  /** Extra observation ports (analysis windows, pair recorders) fed by the request path. */
  observationPorts?: ObservationPort[];
  /** Where paired predictions go (default: NDJSON files under `<dataDir>/pairs`). */
  pairs?: PairsOptions;
  /**
   * Memory the process may use, in MiB (SWITCHYARD_MEMORY_MB): every buffer of the prediction log gets a byte budget
   * from it (record/budgets.ts). Default: the container's memory limit, else 1,024.
   */
  memoryMb?: number;
  /** Writable directory for pair logs and persisted state. */
  dataDir?: string;
  /** Unleash settings (flags/factory.ts unleashSettingsFromEnv); absent or null: every route keeps its policy split. */
  flags?: FlagSettingsInput | null;
  /** Bearer tokens for mutating admin calls (admin/auth.ts parseAdminTokens); none: mutations are refused. */
  adminTokens?: readonly AdminToken[];
  /** How often the controller judges guardrails (ms). */
  controlIntervalMs?: number;
  /** URLs that receive notified events as JSON POSTs (SWITCHYARD_WEBHOOK_URLS; unsigned unless `webhookSecret`). */
  webhookUrls?: readonly string[];
  /** HMAC key of the `webhookUrls` sinks (SWITCHYARD_WEBHOOK_SECRET). */
  webhookSecret?: string;
  /** Notification sinks (control/notify-config.ts; serve builds them from the environment); when given, `webhookUrls` and `webhookSecret` are not read. */
  notify?: NotifyConfig | null;
  /** A flag-driven route whose flag Unleash has not confirmed for this long is audited (and notified) as flag.stale (default 60 s). */
  flagStaleAfterMs?: number;
  /** Redis coordination between replicas (docs/replicas.md); without a Redis URL each replica decides alone. */
  coordination?: CoordinationOptions | null;
  /** How long an admin change waits for state.json to be saved before it answers `persisted: false` (default 2000 ms). */
  stateSaveWaitMs?: number;
  /** First retry delay of a failed state.json save when no change comes (default 1000 ms, doubling up to a minute). */
  stateRetryMs?: number;
  /** The request log: a line per failed request, and this share of successful ones (README, "Request logs and traces"). */
  requestLog?: RequestLogSettings;
  /** OpenTelemetry traces of upstream calls (src/tracing/otel.ts); absent or null: none, and tracing costs nothing. */
  tracing?: TracingOptions | null;
}

/** Settings of the prediction log. */
export interface PairsOptions {
  sink?: SinkKind;
  /** Where the jetstream sink publishes (required with it). */
  nats?: NatsSinkSettings;
  /** Where the cloudevents sink sends (required with it). */
  cloudevents?: CloudEventsSinkSettings;
  dir?: string;
  maxFileBytes?: number;
  rotateMs?: number;
  keySalt?: string;
  /** After a disk error, how long the NDJSON sink drops records (counted) before it tries the disk again (default 1 s). */
  retryMs?: number;
}

/** Result of a policy reload. */
export type ReloadResult = { ok: true; version: string; changed: boolean } | { ok: false; code: string; message: string; problems?: PolicyProblem[] };

/** How long the policy file must be quiet after a change event before it is reloaded (one save is several events). */
const watchQuietMs = 100;

/** A Switchyard instance: data server, admin server, live splits. */
export class Switchyard {
  readonly options: Required<Pick<SwitchyardOptions, 'configPath' | 'host' | 'port' | 'adminHost' | 'adminPort' | 'drainMs'>>;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly snapshots: SnapshotRef;
  readonly splits: LiveSplits;
  readonly pools: UpstreamPools;
  readonly plane: DataPlane;
  /** Pairs, extracts and writes prediction records on its own worker thread (record/recorder-client.ts). */
  readonly recorder: RecorderClient;
  /** Live per-arm statistics for the guardrails (fed by the request path, read by the controller). */
  readonly windows = new LiveWindows();
  /** Each guardrail's interval over time, sampled at controller ticks, for the status page (admin/guardrail-history.ts). */
  readonly history = new GuardrailHistory();
  /** Judges guardrails and rolls back or advances; set by create(). */
  controller!: Controller;
  changer!: SplitChanger;
  /** Posts notified audit events to the configured sinks; set by create(). */
  notifier!: Notifier;
  /** What GET /v1/events reads: this replica's audit log, or the fleet-wide Redis stream; set by create(). */
  trail!: EventTrail;
  #staleness: FlagStaleness | null = null;
  readonly mirror: ShadowMirror;
  readonly dataDir: string;
  /** Follows Unleash flags (or nothing); set by create(). */
  flags!: FlagSource;
  /** Operator overrides, pauses and rollbacks, persisted to <dataDir>/state.json when dataDir is given. */
  state!: StateStore;
  /** Who changed which split, when (GET /v1/events; <dataDir>/audit.ndjson when dataDir is given). */
  audit!: AuditLog;
  /** Pools statistics and elects one acting leader per route through Redis (or nothing, alone); set by create(). */
  coordination!: Coordination<ControlState>;
  #unleashAdmin: UnleashAdminClient | null = null;
  readonly lifecycle: Lifecycle = { draining: false };
  /** Spans for upstream calls when tracing is on (loaded only then); set by create(). */
  tracing: Tracing | null = null;
  /** Emits 'reload' (ReloadResult) after every reload attempt. */
  readonly events = new EventEmitter();
  readonly dataServer: http.Server;
  admin!: FastifyInstance;
  policyVersion = '';
  policyFiles: string[] = [];
  #watcher: FSWatcher | null = null;
  #reloading: Promise<ReloadResult> | null = null;
  #closed = false;
  /** Open connections of the data server. */
  readonly #dataSockets = new Set<Socket>();
  /** The route policy objects last sent to the recorder worker. */
  #recordingPolicies: readonly unknown[] = [];

  private constructor(options: SwitchyardOptions) {
    this.options = {
      configPath: options.configPath,
      host: options.host ?? '0.0.0.0',
      port: options.port ?? 8080,
      adminHost: options.adminHost ?? options.host ?? '0.0.0.0',
      adminPort: options.adminPort ?? 9090,
      drainMs: options.drainMs ?? 10_000,
    };
    this.logger = options.logger ?? pino({ level: 'silent' });
    this.metrics = new Metrics({ defaultMetrics: options.defaultMetrics });
    this.snapshots = new SnapshotRef(emptySnapshot());
    this.splits = new LiveSplits(this.snapshots);
    this.pools = new UpstreamPools();
    this.dataDir = options.dataDir ?? './data';
    const pairs = options.pairs ?? {};
    if (pairs.sink === 'jetstream' && pairs.nats === undefined) throw new SWY_ERR_ENV_INVALID('pairs.sink jetstream needs pairs.nats (servers, stream, subject): set SWITCHYARD_NATS_URL');
    if (pairs.sink === 'cloudevents' && pairs.cloudevents === undefined) throw new SWY_ERR_ENV_INVALID('pairs.sink cloudevents needs pairs.cloudevents (url, source): set SWITCHYARD_CLOUDEVENTS_URL');
    this.recorder = new RecorderClient({
      policies: { policyOf: (route) => this.snapshots.current.byName.get(route)?.route.policy },
      metrics: this.metrics,
      settings: { sink: pairs.sink ?? 'ndjson', dir: pairs.dir ?? path.join(this.dataDir, 'pairs'), maxFileBytes: pairs.maxFileBytes, rotateMs: pairs.rotateMs, retryMs: pairs.retryMs, keySalt: pairs.keySalt, budgets: recorderBudgets(resolveMemoryMb(options.memoryMb)), ...(pairs.nats ? { nats: pairs.nats } : {}), ...(pairs.cloudevents ? { cloudevents: pairs.cloudevents } : {}) },
      onError: (err) => this.logger.error({ err }, 'the recorder worker failed: it restarts shortly; prediction records are dropped (counted) meanwhile; serving goes on'),
      onSinkError: (err) => this.logger.warn({ err, sink: pairs.sink }, 'the prediction log sink cannot deliver: records wait within the sink budget, then are dropped and counted (switchyard_pairs_dropped_total); serving goes on'),
    });
    const observations = fanOut([this.recorder, this.windows, ...(options.observationPorts ?? [])]);
    this.mirror = new ShadowMirror(this.metrics, observations);
    this.plane = new DataPlane(
      {
        snapshots: this.snapshots,
        pools: this.pools,
        metrics: new DataPathMetrics(this.metrics),
        observations,
        mirror: this.mirror,
        keepBodyBytes: options.keepBodyBytes ?? 64 * 1024,
        requestLog: new RequestLog(this.logger, options.requestLog ?? {}, this.metrics.requestLogDropped),
      },
      this.lifecycle,
    );
    this.dataServer = http.createServer({ keepAliveTimeout: 65_000, headersTimeout: 66_000, requestTimeout: 0 }, this.plane.handle);
    // Above common load-balancer idle timeouts (60 s), so the LB never reuses a socket we just closed (docs/performance.md, "Keep-alive timeouts").
    this.dataServer.keepAliveTimeout = 65_000;
    // The drain closes quiet keep-alive connections itself (see drain()), so it tracks them; no per-request cost.
    const sockets = this.#dataSockets;
    const forget = function forget(this: Socket) {
      sockets.delete(this);
    };
    this.dataServer.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.once('close', forget);
    });
    // One field more than the limit, so a request node:http truncated is recognisable and refused (proxy/headers.ts).
    this.dataServer.maxHeadersCount = maxRequestHeaderFields + 1;
    this.dataServer.on('clientError', clientErrorListener(this.dataServer, this.plane.metrics));
    precreateGlobalSeries(this.metrics, { pairSink: pairs.sink ?? 'ndjson' });
    this.snapshots.onSwap((next) => {
      this.#publishSplitMetrics(next);
      precreateRouteSeries(this.metrics, next);
      this.#publishRecordingPolicies(next);
    });
  }

  /** Sends the routes' recording policies to the recorder worker when any route's policy object changed. */
  #publishRecordingPolicies(next: DecisionSnapshot): void {
    const policies = next.decisions.map((d) => d.route.policy);
    if (policies.length === this.#recordingPolicies.length && policies.every((policy, i) => policy === this.#recordingPolicies[i])) return;
    this.#recordingPolicies = policies;
    this.recorder.setPolicies(next.decisions.map((d) => [d.route.name, { predictions: d.route.policy.predictions, pairs: d.route.policy.pairs, divergence: d.route.policy.divergence, drift: d.route.policy.drift }]));
  }

  /** Loads and validates the policy (throwing SWY_ERR_POLICY_INVALID with every problem) and builds the instance. */
  static async create(options: SwitchyardOptions): Promise<Switchyard> {
    // The policy and the notification settings are checked before anything is built: a bad one must not leave a worker
    // or pools behind.
    const loaded = await loadPolicy(options.configPath);
    const notify = options.notify ?? (await notifyConfigFromEnv({ SWITCHYARD_WEBHOOK_URLS: options.webhookUrls?.join(','), SWITCHYARD_WEBHOOK_SECRET: options.webhookSecret }));
    const app = new Switchyard(options);
    try {
      // Imported only when asked for: without it the OpenTelemetry SDK is never loaded and no channel has a subscriber.
      if (options.tracing) app.tracing = (await import('./tracing/otel.js')).startTracing(options.tracing, app.logger);
      app.#install(loaded.policy, loaded.version, loaded.files);
      await app.#startControl(options);
    } catch (err) {
      // An unreadable state.json must not leave pools, sinks and timers of a half-built instance behind.
      await app.close();
      throw err;
    }
    const auth = new AdminAuth(options.adminTokens ?? []);
    app.changer = new SplitChanger({ splits: app.splits, flags: app.flags, state: app.state, audit: app.audit, flagWriter: app.#unleashAdmin === null ? null : unleashFlagWriter(app.#unleashAdmin, app.#flagEnvironment(options)), logger: app.logger });
    app.notifier = new Notifier(notify, { metrics: app.metrics, logger: app.logger, instanceId: app.coordination.instanceId });
    app.notifier.follow(app.audit);
    const redis = redisSettings(options.coordination);
    app.trail = redis === null ? new LocalEventTrail(app.audit) : new RedisEventTrail({ target: redis.target, prefix: redis.prefix, instanceId: redis.instanceId, timeoutMs: redis.timeoutMs }, { audit: app.audit, metrics: app.metrics, logger: app.logger });
    app.trail.start();
    app.#staleness = new FlagStaleness({ flags: app.flags, splits: app.splits, audit: app.audit, staleAfterMs: options.flagStaleAfterMs ?? 60_000 });
    app.#staleness.start();
    app.controller = new Controller({ splits: app.splits, windows: app.windows, state: app.state, changer: app.changer, audit: app.audit, metrics: app.metrics, logger: app.logger, intervalMs: options.controlIntervalMs, coordination: app.coordination, experiments: app.recorder });
    app.controller.onTick(app.history.record);
    app.controller.start();
    app.coordination.start();
    app.admin = await buildAdmin({
      metrics: app.metrics,
      extraMetrics: () => app.recorder.metricsJSON(),
      splits: app.splits,
      readiness: () => app.readiness(),
      flagStatus: (route) => app.flags.status(route),
      phaseOf: (route) => app.controller.phase(route),
      plugins: [
        splitsApi({ splits: app.splits, flags: app.flags, state: app.state, audit: app.audit, auth, changer: app.changer, resume: (route, who) => app.controller.resume(route, who), phaseOf: (route) => app.controller.phase(route), logger: app.logger }),
        controlApi(app.controller, auth, app.state),
        eventsApi(app.trail),
        feedbackApi(app.recorder, auth.preHandler),
        uiApi({ splits: app.splits, history: app.history, auth, flagStatus: (route) => app.flags.status(route), instance: () => ({ instanceId: app.coordination.instanceId, coordination: app.coordination.status() }) }),
      ],
    });
    if (options.watch) app.#watch();
    return app;
  }

  /** Persisted control state first (a restored rollback must hold before flags apply), then flags. */
  async #startControl(options: SwitchyardOptions): Promise<void> {
    // Only an explicit dataDir persists: embedded and test instances must not share ./data/state.json.
    const persistDir = options.dataDir ?? null;
    this.audit = await AuditLog.open({ file: persistDir === null ? null : path.join(persistDir, 'audit.ndjson'), logger: this.logger });
    this.state = await StateStore.open({
      file: persistDir === null ? null : path.join(persistDir, 'state.json'), target: this.splits, logger: this.logger, audit: this.audit, metrics: this.metrics,
      saveWaitMs: options.stateSaveWaitMs, retryMs: options.stateRetryMs,
    });
    // Validated here (SWY_ERR_ENV_INVALID on a bad URL) so a half-built instance is closed; it connects on start().
    this.coordination = createCoordination(options.coordination, { state: this.state, audit: this.audit, leaderState: controlStateSchema, metrics: this.metrics, logger: this.logger });
    this.flags = createFlagSource(options.flags, { splits: this.splits, metrics: this.metrics, logger: this.logger });
    const settings = typeof options.flags === 'function' ? options.flags() : options.flags;
    if (settings?.adminToken) this.#unleashAdmin = new UnleashAdminClient({ baseUrl: settings.rootUrl, adminToken: settings.adminToken, userAgent: 'switchyard-admin-api' });
    await this.flags.start(this.splits.routes);
  }

  #flagEnvironment(options: SwitchyardOptions): string {
    const settings = typeof options.flags === 'function' ? options.flags() : options.flags;
    return settings?.environment ?? 'development';
  }

  #install(policy: Parameters<typeof compilePolicy>[0], version: string, files: string[]): void {
    const routes = compilePolicy(policy);
    // One lane per route and upstream, so no route can take the connections another route needs. Lanes open with a
    // route's first request (the data plane's laneFor), not here: an undici pool holds about 16 KiB before its first
    // connection, 32 MiB for 1,000 routes that may never see traffic (docs/performance.md, "Idle routes cost nothing"),
    // and the first request opens a connection anyway, which costs far more than creating the pool.
    const keep = new Set<string>();
    for (const route of routes) {
      for (const arm of route.arms) {
        keep.add(UpstreamPools.laneKey(route.name, arm.origin, route.connectTimeoutMs));
      }
    }
    // On a reload, persisted state the new policy does not admit is dropped (audited) before the new routes go live.
    this.state?.reconcile(routes);
    this.splits.setPolicy(routes, version);
    this.flags?.setRoutes(routes);
    this.policyVersion = version;
    this.policyFiles = files;
    void this.pools.retain(keep).catch((err: unknown) => this.logger.warn({ err }, 'closing unused upstream pools failed'));
  }

  /** Readiness: a policy is installed and the instance is not draining. */
  readiness(): { ready: boolean; reasons: string[]; policyVersion: string } {
    const reasons: string[] = [];
    if (this.policyVersion === '') reasons.push('no policy loaded');
    if (this.lifecycle.draining) reasons.push('draining');
    return { ready: reasons.length === 0, reasons, policyVersion: this.policyVersion };
  }

  /** Re-reads the policy; a bad policy is rejected, logged and counted, and the last good one stays live. */
  reload(trigger: string): Promise<ReloadResult> {
    // Coalesce overlapping triggers (SIGHUP plus a file event) into one load.
    this.#reloading ??= this.#reload(trigger).then((result) => {
      this.#reloading = null;
      this.events.emit('reload', result);
      return result;
    });
    return this.#reloading;
  }

  async #reload(trigger: string): Promise<ReloadResult> {
    try {
      const loaded = await loadPolicy(this.options.configPath);
      const changed = loaded.version !== this.policyVersion;
      if (changed) this.#install(loaded.policy, loaded.version, loaded.files);
      this.metrics.policyReloads.labels('success').inc();
      // Recreate the flag client: after a 401 the SDK stops polling for good, and a reload is how a fix gets applied.
      await this.flags.restart();
      this.logger.info({ trigger, version: loaded.version, changed }, 'policy reloaded');
      return { ok: true, version: loaded.version, changed };
    } catch (err) {
      const e = err as Error & { code?: string; problems?: PolicyProblem[] };
      const result = e.code === 'SWY_ERR_POLICY_INVALID' ? 'invalid' : 'error';
      this.metrics.policyReloads.labels(result).inc();
      this.logger.error({ trigger, code: e.code, problems: e.problems, keptVersion: this.policyVersion }, `policy reload rejected; keeping version ${this.policyVersion}: ${e.message}`);
      return { ok: false, code: e.code ?? 'SWY_ERR_POLICY_READ', message: e.message, ...(e.problems ? { problems: e.problems } : {}) };
    }
  }

  #reloadTimer: NodeJS.Timeout | null = null;

  #watch(): void {
    const target = this.options.configPath;
    void stat(target).then((info) => {
      if (this.#closed) return;
      // Watch the directory, not the file: editors and ConfigMap updates replace files by rename.
      const dir = info.isDirectory() ? target : path.dirname(target);
      const base = info.isDirectory() ? null : path.basename(target);
      this.#watcher = watch(dir, (_event, filename) => {
        if (base !== null && filename !== null && filename !== base) return;
        // One save is often several events (truncate, write, rename): reload once the file has been quiet for a
        // moment, so a half-written file is never judged (a rejected reload would alert) and one edit is one reload.
        if (this.#reloadTimer !== null) clearTimeout(this.#reloadTimer);
        this.#reloadTimer = setTimeout(() => {
          this.#reloadTimer = null;
          if (!this.#closed) void this.reload('file-change');
        }, watchQuietMs);
        this.#reloadTimer.unref();
      });
      this.#watcher.on('error', (err) => this.logger.warn({ err }, 'policy watcher failed; SIGHUP still reloads'));
    });
  }

  #publishSplitMetrics(snapshot: DecisionSnapshot): void {
    const gauge = this.metrics.splitPercent;
    gauge.reset();
    for (const decision of snapshot.decisions) {
      const routeName = decision.route.name;
      gauge.labels(routeName, decision.route.arms[0]!.name).set(100 - decision.servedTotal);
      const served = servedShares(decision);
      for (const shadow of decision.shadows ?? []) served.set(shadow.arm.name, shadow.upTo);
      for (const arm of decision.route.arms) if (arm.role === 'challenger') gauge.labels(routeName, arm.name).set(served.get(arm.name) ?? 0);
    }
  }

  /** Starts both listeners; port 0 picks free ports. Returns their URLs. */
  async listen(): Promise<{ dataUrl: string; adminUrl: string }> {
    await new Promise<void>((resolve, reject) => {
      this.dataServer.once('error', reject);
      this.dataServer.listen(this.options.port, this.options.host, () => {
        this.dataServer.off('error', reject);
        resolve();
      });
    });
    await this.admin.listen({ port: this.options.adminPort, host: this.options.adminHost });
    return { dataUrl: urlOf(this.dataServer.address() as AddressInfo), adminUrl: urlOf(this.admin.server.address() as AddressInfo) };
  }

  /**
   * Drains: stop accepting, let in-flight requests finish (bounded by drainMs), then close everything.
   * Readiness turns false first so a load balancer stops sending new traffic.
   *
   * No connection is closed under a request. A request arriving on an open connection is answered (503
   * SWY_ERR_DRAINING) and every answer given during the drain says `Connection: close`, so clients close those
   * connections knowingly. A keep-alive connection that stays quiet is closed only between requests: once it has read
   * nothing and owed no answer over a whole sweep interval. node:http's closeIdleConnections(), which
   * http.Server#close() also calls, is not used: it destroys every connection whose parser is between messages, among
   * them one whose next request already sits unread in the kernel or is on the wire, and one whose ended answer is
   * still being flushed; its clients saw ECONNRESET (docs/design.md, "Draining without resets").
   */
  async drain(): Promise<{ forced: boolean }> {
    this.lifecycle.draining = true;
    const server = this.dataServer;
    // Stops accepting without http.Server#close (see above); its callback runs once the last connection has closed.
    const closed = new Promise<void>((resolve) => net.Server.prototype.close.call(server, () => resolve()));
    const quiet = new Map<Socket, number>();
    this.#sweepIdle(quiet);
    const sweepMs = Math.max(10, Math.min(1_000, this.options.drainMs / 4));
    // From a timer the sweep runs in the next check phase, after the poll phase has read whatever bytes had arrived.
    const sweeper = setInterval(() => setImmediate(() => this.#sweepIdle(quiet)), sweepMs);
    let timer: NodeJS.Timeout | undefined;
    const forced = await Promise.race([
      closed.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), this.options.drainMs);
      }),
    ]);
    clearInterval(sweeper);
    clearTimeout(timer);
    if (forced) server.closeAllConnections();
    await closed;
    // Every connection is gone: this only stops node:http's connection-checking timer.
    server.close();
    await this.close();
    return { forced };
  }

  /**
   * Closes the data connections that were idle at the previous sweep and still are, having read no byte since: no
   * answer owed (node:http detaches the response from its socket once it is flushed), nothing buffered to write. A
   * connection with an answer under way is noted as busy, so it must then stay quiet for a whole interval too.
   */
  #sweepIdle(quiet: Map<Socket, number>): void {
    for (const socket of this.#dataSockets) {
      const busy = (socket as Socket & { _httpMessage?: unknown })._httpMessage != null || socket.writableLength > 0;
      const read = socket.bytesRead;
      if (!busy && quiet.get(socket) === read) socket.destroy();
      else quiet.set(socket, busy ? -1 : read);
    }
  }

  /** Closes listeners, watchers and pools at once. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#watcher?.close();
    if (this.#reloadTimer !== null) clearTimeout(this.#reloadTimer);
    this.controller?.stop();
    this.#staleness?.stop();
    // Releases held leases, so another replica leads at its next exchange rather than after the lease expires.
    await this.coordination?.close();
    if (this.dataServer.listening) {
      const closed = new Promise<void>((resolve) => this.dataServer.close(() => resolve()));
      this.dataServer.closeAllConnections();
      await closed;
    }
    await this.admin?.close();
    await this.flags?.close();
    await this.#unleashAdmin?.close();
    await this.state?.close();
    await this.notifier?.close();
    await this.trail?.close();
    await this.audit?.flush();
    // After a drain nothing is in flight; on a direct close, abort rather than wait on a hanging upstream.
    await this.pools.destroy();
    await this.mirror.close();
    // Unpaired leftovers are written and the log is fsynced before exit.
    await this.recorder.close();
    // Spans of the last calls are exported before exit.
    await this.tracing?.close();
  }
}

function urlOf(address: AddressInfo): string {
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host === '0.0.0.0' ? '127.0.0.1' : host === '[::]' ? '127.0.0.1' : host}:${address.port}`;
}

/** Builds a Switchyard instance (see Switchyard.create). */
export function buildApp(options: SwitchyardOptions): Promise<Switchyard> {
  return Switchyard.create(options);
}
