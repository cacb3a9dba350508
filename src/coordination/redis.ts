// Redis coordination: replicas pool window statistics, one leader per route acts, control changes reach every replica at once.
//
// Nothing here runs on the request path. Every REDIS_INTERVAL (250 ms) one pipeline per active route (one the
// controller linked within the last two exchanges: it has a challenger and recent traffic, or just changed) writes this
// replica's cumulative totals (idempotent HSET of its own field), reads the pooled hash, renews or contends for the
// route's lease and reads the replicated control record. A route joining the active set is exchanged at once, not an
// interval later. An idle route costs no command: its lease is released when it
// goes idle (a replica with traffic takes it over), and control changes still reach it by pub/sub. Rollbacks are pushed at once and published on a pub/sub channel, so
// every replica swaps its snapshot within milliseconds. When Redis is unreachable or slow the replica reports
// `degraded` and decides from its own statistics; when Redis returns it re-sends its absolute totals and rejoins.
import { randomBytes } from 'node:crypto';
import { Cluster, Redis, type RedisOptions, type Result } from 'ioredis';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { RouteWindow } from '../analysis/window.js';
import type { OperatorOverride } from '../decision/shares.js';
import type { CompiledRoute } from '../decision/snapshot.js';
import { errorCode } from '../errors.js';
import { KeyedSerial } from '../serial.js';
import type { Metrics } from '../metrics/registry.js';
import type { Coordination, CoordinationStatus, ReplicaJournal, RollbackOutcome, RouteLink } from './coordination.js';
import { controlOf, parseSharedControl, planSync, sameControl, sameOverride, type LocalControl, type SyncBase, type Versioned } from './control-sync.js';
import { controlChannel, epochOf, routeKeys, routeVersion, type RouteKeys } from './keys.js';
import { CONTROL_SCRIPT, ControlWrite, LEASE_SCRIPT, LeaseStatus, parseLease, RELEASE_SCRIPT, RENEW_SCRIPT } from './lease.js';
import { encodeWindow, noExperiment, parsePayload, poolPayloads, type ExperimentSnapshot, type ReplicaPayload } from './pooled.js';
import { describeTarget, type RedisTarget } from './redis-url.js';

declare module 'ioredis' {
  interface RedisCommander<Context> {
    swyLease(lease: string, fence: string, leaderState: string, instance: string, mine: string, ttlMs: number, stateJson: string, stateTtlMs: number): Result<[number, string], Context>;
    swyRenew(lease: string, mine: string, ttlMs: number): Result<number, Context>;
    swyRelease(lease: string, mine: string): Result<number, Context>;
    swyControl(control: string, lease: string, expectRev: number, record: string, fence: string, channel: string, route: string): Result<[number, string, string], Context>;
  }
}

/** The StateStore methods coordination reads and drives (the replicated inputs of each route's split). */
export interface ControlStateAccess {
  isRolledBack(route: string): boolean;
  isPaused(route: string): boolean;
  override(route: string): OperatorOverride | undefined;
  setRolledBack(route: string, rolledBack: boolean): void;
  setPaused(route: string, paused: boolean): void;
  setOverride(route: string, override: OperatorOverride | null): void;
}

/** Settings of the Redis coordination (env: docs/replicas.md). */
export interface RedisCoordinationSettings {
  target: RedisTarget;
  instanceId: string;
  /** Key prefix, so several deployments can share one Redis. */
  prefix: string;
  /** Exchange cadence in ms (publish totals, read the pool, renew the lease). */
  intervalMs: number;
  /** Lease time-to-live in ms; a dead leader is replaced after at most this plus one exchange. */
  leaseMs: number;
  /** Per-command timeout in ms; slower answers count as Redis being down. */
  timeoutMs: number;
  /** How long pooled statistics outlive the last replica writing them (ms). */
  statsTtlMs?: number;
}

export interface RedisCoordinationDeps<State> {
  state: ControlStateAccess;
  /** Where a control change applied from the fleet is recorded (the audit log). */
  audit: ReplicaJournal;
  /** The controller's schema of its rollout state: a leader's state that fails it is ignored, never adopted. */
  leaderState: z.ZodType<State>;
  metrics: Metrics;
  logger: Logger;
}

/** Everything this replica knows about one route's coordination. */
interface RouteSync<State> {
  readonly name: string;
  readonly keys: RouteKeys;
  version: string | null;
  challenger: string | null;
  base: SyncBase;
  shared: Versioned | null;
  bound: { epoch: string; window: RouteWindow; field: string; experiment: ExperimentSnapshot } | null;
  serial: number;
  /** Other fields of the current epoch's hash as last read (this replica's live window is added at link time). */
  others: { epoch: string; payloads: ReplicaPayload[]; readAt: number } | null;
  lease: { value: string; deadline: number } | null;
  leader: string | null;
  leaderState: { epoch: string; state: State } | null;
  pendingState: State | null;
  /** The lease value a pending leader decision is fenced with; every push meanwhile carries it. */
  fence: string | null;
  rollbackReason: string;
  lastLinked: number;
}

/** The frame of a published leader state; the state inside is checked with the controller's schema. */
const leaderStateFrame = z.object({ epoch: z.string(), by: z.string(), state: z.unknown() });

/** A failure's code for logs and the degraded reason; some of ioredis' errors carry only a name. */
function failureCode(err: unknown): string {
  return errorCode(err) ?? (err instanceof Error ? err.name : 'unknown');
}

/** Node's codes for a server certificate it would not trust (tls.connect's verification errors). */
const untrustedCertificateCodes: ReadonlySet<string> = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REVOKED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** What an operator must change for a connection error that retrying cannot cure; null for the transient kind. */
export function redisMisconfiguration(code: string): string | null {
  if (untrustedCertificateCodes.has(code)) return "Redis TLS: the server's certificate is not trusted; give Node its CA with NODE_EXTRA_CA_CERTS=/path/ca.pem (Helm: redis.caSecret), or fix the host name in SWITCHYARD_REDIS_URL to one the certificate names";
  if (code.startsWith('ERR_SSL_')) return 'Redis TLS: the handshake failed; is the server speaking TLS on that port? (rediss:// is TLS, redis:// is plain)';
  return null;
}

/** Coordination through one Redis (single node, Sentinel or Cluster). */
export class RedisCoordination<State> implements Coordination<State> {
  readonly enabled = true;
  readonly instanceId: string;
  readonly followerGraceMs: number;
  readonly #settings: Required<RedisCoordinationSettings>;
  readonly #deps: RedisCoordinationDeps<State>;
  readonly #client: Redis | Cluster;
  readonly #subscriber: Redis | Cluster;
  readonly #channel: string;
  /** Distinguishes this process from an earlier one with the same instance id (its fields stay valid evidence). */
  readonly #nonce = randomBytes(4).toString('hex');
  readonly #routes = new Map<string, RouteSync<State>>();
  /** The routes exchanged each interval: linked by the controller recently (see #exchangeAll). */
  readonly #active = new Set<RouteSync<State>>();
  /** Routes that joined #active since the last exchange began: exchanged at once (#scheduleJoined), not an interval later. */
  readonly #joined = new Set<RouteSync<State>>();
  /** Routes whose joining exchange is in flight; the periodic exchange leaves them out, so no route has two pipelines at once. */
  readonly #joining = new Set<RouteSync<State>>();
  #joinScheduled = false;
  /** The joining exchanges in flight, awaited by close(). */
  readonly #joinRuns = new Set<Promise<void>>();
  /** Reconciliations of one route run one at a time (a local edit, a remote change and a resume may race). */
  readonly #serial = new KeyedSerial();
  #status: CoordinationStatus = 'starting';
  /** Misconfiguration codes already logged, so a reconnect loop says each once. */
  readonly #saidMisconfigured = new Set<string>();
  #timer: NodeJS.Timeout | null = null;
  #exchanging: Promise<void> | null = null;
  #startedAt = 0;
  #closed = false;

  constructor(settings: RedisCoordinationSettings, deps: RedisCoordinationDeps<State>) {
    this.#settings = { statsTtlMs: 24 * 3_600_000, ...settings };
    this.#deps = deps;
    this.instanceId = settings.instanceId;
    // The leader sees a follower's failures within one exchange; give it two more before a follower acts itself.
    this.followerGraceMs = 3 * settings.intervalMs;
    this.#channel = controlChannel(settings.prefix);
    const options: RedisOptions = {
      lazyConnect: true,
      // Fail fast instead of queueing: a command while disconnected errors at once, and the exchange reports degraded.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: settings.timeoutMs,
      connectTimeout: Math.max(500, 4 * settings.timeoutMs),
      // Keep reconnecting, at most once a second, so a returning Redis is rejoined quickly.
      retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times - 1, 4), 1_000),
      connectionName: `switchyard:${settings.instanceId}`,
    };
    this.#client = connect(settings.target, options);
    // The subscriber may queue its SUBSCRIBE until connected, and resubscribes after every reconnect.
    this.#subscriber = connect(settings.target, { ...options, enableOfflineQueue: true, maxRetriesPerRequest: null, commandTimeout: undefined, connectionName: `switchyard:${settings.instanceId}:sub` });
    for (const client of [this.#client, this.#subscriber]) {
      client.defineCommand('swyLease', { numberOfKeys: 3, lua: LEASE_SCRIPT });
      client.defineCommand('swyRenew', { numberOfKeys: 1, lua: RENEW_SCRIPT });
      client.defineCommand('swyRelease', { numberOfKeys: 1, lua: RELEASE_SCRIPT });
      client.defineCommand('swyControl', { numberOfKeys: 2, lua: CONTROL_SCRIPT });
      // Connection errors surface as a degraded status (logged once per change); the events themselves are noise,
      // except the ones a retry cannot cure (an untrusted certificate): those are said once per code, with the fix.
      client.on('error', (err: unknown) => this.#onConnectionError(err));
    }
    // A fresh exchange after every (re)connect, even while one from before the reconnect is still failing.
    this.#client.on('ready', () => void this.#exchange(true));
    this.#client.on('close', () => this.#setStatus('degraded', 'connection closed'));
    this.#subscriber.on('message', (channel: string, message: string) => this.#onMessage(channel, message));
    deps.metrics.coordinationDegraded.set(0);
  }

  status(): CoordinationStatus {
    return this.#status;
  }

  #onConnectionError(err: unknown): void {
    const code = failureCode(err);
    const fix = redisMisconfiguration(code);
    if (fix === null || this.#saidMisconfigured.has(code)) {
      this.#deps.logger.debug({ code }, 'redis connection error');
      return;
    }
    this.#saidMisconfigured.add(code);
    this.#deps.logger.warn({ code, redis: describeTarget(this.#settings.target) }, fix);
  }

  start(): void {
    if (this.#timer !== null || this.#closed) return;
    this.#startedAt = performance.now();
    this.#deps.logger.info({ redis: describeTarget(this.#settings.target), instanceId: this.instanceId, prefix: this.#settings.prefix, intervalMs: this.#settings.intervalMs, leaseMs: this.#settings.leaseMs }, 'coordination through Redis');
    this.#client.connect().catch((err: unknown) => this.#deps.logger.debug({ code: failureCode(err) }, 'redis connect failed; retrying'));
    this.#subscriber.connect().catch((err: unknown) => this.#deps.logger.debug({ code: failureCode(err) }, 'redis subscriber connect failed; retrying'));
    this.#subscriber.subscribe(this.#channel).catch((err: unknown) => this.#deps.logger.warn({ code: failureCode(err) }, 'subscribing to control changes failed; changes arrive with the next exchange'));
    this.#timer = setInterval(() => void this.#exchange(), this.#settings.intervalMs);
    this.#timer.unref();
  }

  epoch(route: CompiledRoute, challenger: string | null): string | null {
    const sync = this.#sync(route.name);
    sync.version = routeVersion(route.policy);
    sync.challenger = challenger;
    return this.#currentEpoch(sync);
  }

  link(route: string, epoch: string | null, window: RouteWindow, experiment?: ExperimentSnapshot): RouteLink<State> {
    const sync = this.#sync(route);
    const now = performance.now();
    sync.lastLinked = now;
    if (!this.#active.has(sync)) {
      // A route that starts or wakes up is exchanged now: waiting for the next interval would leave it without the
      // fleet's record, lease and pooled view for up to a whole interval, and a replica with a long interval would
      // not even know the route's epoch when its next exchange comes (a reconnect, for instance).
      this.#active.add(sync);
      this.#joined.add(sync);
      this.#scheduleJoined();
    }
    if (epoch !== null && (sync.bound === null || sync.bound.window !== window || sync.bound.epoch !== epoch)) {
      // A new window (reset, reload, restart) gets a new field: its totals are new evidence, the old field's stay valid.
      sync.serial++;
      sync.bound = { epoch, window, field: `${this.instanceId}/${this.#nonce}.${sync.serial}`, experiment: experiment ?? noExperiment };
    } else if (sync.bound !== null && experiment !== undefined) {
      sync.bound.experiment = experiment;
    }
    return this.#view(sync, epoch, window, experiment, now);
  }

  view(route: string, epoch: string | null, window: RouteWindow, experiment?: ExperimentSnapshot): RouteLink<State> {
    const sync = this.#routes.get(route);
    if (sync === undefined) return { role: 'degraded', pooled: null, leader: null, leaderState: null };
    // An idle route is not exchanged: this replica neither leads it nor holds a pooled view of it.
    if (!this.#active.has(sync) && this.#status === 'ok') return { role: 'follower', pooled: null, leader: sync.leader, leaderState: null };
    return this.#view(sync, epoch, window, experiment, performance.now());
  }

  /** The route's link for `window` from what the last exchange read (changes nothing). */
  #view(sync: RouteSync<State>, epoch: string | null, window: RouteWindow, experiment: ExperimentSnapshot | undefined, now: number): RouteLink<State> {
    const leader = this.#leaderOf(sync, now);
    const others = sync.others;
    const fresh = others !== null && epoch !== null && others.epoch === epoch && epoch === this.#currentEpoch(sync) && now - others.readAt <= this.#staleMs;
    if (this.#status !== 'ok' || !fresh) return { role: 'degraded', pooled: null, leader, leaderState: null };
    const wallNow = Date.now();
    const own = encodeWindow(window, this.instanceId, wallNow, experiment ?? sync.bound?.experiment ?? noExperiment);
    const pooled = poolPayloads(epoch, [...others.payloads, own], wallNow - this.#liveMs);
    const leading = leader === this.instanceId && sync.lease !== null && now < sync.lease.deadline;
    const leaderState = !leading && sync.leaderState?.epoch === epoch ? sync.leaderState.state : null;
    return { role: leading ? 'leader' : 'follower', pooled, leader, leaderState };
  }

  forget(route: string): void {
    const sync = this.#routes.get(route);
    if (sync === undefined) return;
    this.#rest(sync);
    this.#routes.delete(route);
    this.#deps.metrics.leader.remove(route);
  }

  /** Takes a route out of the exchange; a held lease is released so that a replica with traffic leads at once. */
  #rest(sync: RouteSync<State>): void {
    this.#active.delete(sync);
    this.#joined.delete(sync);
    sync.others = null;
    if (sync.lease === null) return;
    if (this.#client.status === 'ready') void this.#client.swyRelease(sync.keys.lease, sync.lease.value).catch(() => 0);
    sync.lease = null;
    sync.leader = null;
    this.#deps.metrics.leader.labels(sync.name).set(0);
  }

  reportState(route: string, state: State): void {
    const sync = this.#routes.get(route);
    if (sync) sync.pendingState = state;
  }

  async announceRollback(route: string, reason: string, fenced: boolean): Promise<RollbackOutcome> {
    const sync = this.#routes.get(route);
    if (!sync || this.#status !== 'ok') return 'unavailable';
    const fence = fenced ? (sync.lease && performance.now() < sync.lease.deadline ? sync.lease.value : null) : null;
    if (fenced && fence === null) {
      // The lease ran out between the judgment and now: the decision is not ours to publish.
      await this.#locked(sync, async () => this.#revert(sync));
      return 'superseded';
    }
    sync.rollbackReason = reason;
    sync.fence = fence;
    try {
      const result = await this.#locked(sync, () => this.#reconcile(sync));
      switch (result) {
        case 'pushed':
          return 'published';
        case 'superseded':
        case 'fenced':
          return 'superseded';
        case 'applied':
          return this.#deps.state.isRolledBack(route) ? 'already' : 'superseded';
        case 'in-sync':
          return sync.shared?.record.by === this.instanceId && sync.shared.record.reason === reason ? 'published' : 'already';
      }
    } catch (err) {
      this.#setStatus('degraded', failureCode(err));
      return 'unavailable';
    } finally {
      sync.fence = null;
      sync.rollbackReason = 'manual';
    }
  }

  async confirmLeadership(route: string): Promise<boolean> {
    const sync = this.#routes.get(route);
    const lease = sync?.lease;
    if (!sync || !lease || this.#status !== 'ok') return false;
    try {
      const renewed = (await this.#client.swyRenew(sync.keys.lease, lease.value, this.#settings.leaseMs)) === 1;
      if (!renewed) sync.lease = null;
      return renewed;
    } catch (err) {
      this.#setStatus('degraded', failureCode(err));
      return false;
    }
  }

  syncNow(route: string): void {
    const sync = this.#routes.get(route);
    if (!sync || this.#status !== 'ok') return;
    void this.#locked(sync, () => this.#reconcile(sync)).catch((err: unknown) => this.#setStatus('degraded', failureCode(err)));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    await this.#exchanging?.catch(() => undefined);
    await Promise.all(this.#joinRuns);
    // Release held leases so a follower takes over at its next exchange instead of after the lease expires.
    const releases = [...this.#routes.values()].filter((s) => s.lease !== null).map((s) => this.#client.swyRelease(s.keys.lease, s.lease!.value).catch(() => 0));
    if (releases.length > 0 && this.#client.status === 'ready') await Promise.all(releases);
    for (const sync of this.#routes.values()) this.#deps.metrics.leader.labels(sync.name).set(0);
    this.#client.disconnect();
    this.#subscriber.disconnect();
  }

  get #staleMs(): number {
    return 4 * this.#settings.intervalMs + this.#settings.timeoutMs;
  }

  get #liveMs(): number {
    return Math.max(2_000, 8 * this.#settings.intervalMs);
  }

  #sync(name: string): RouteSync<State> {
    let sync = this.#routes.get(name);
    if (!sync) {
      sync = {
        name,
        keys: routeKeys(this.#settings.prefix, name),
        version: null,
        challenger: null,
        base: { rev: null, gen: null, control: this.#local(name) },
        shared: null,
        bound: null,
        serial: 0,
        others: null,
        lease: null,
        leader: null,
        leaderState: null,
        pendingState: null,
        fence: null,
        rollbackReason: 'manual',
        lastLinked: performance.now(),
      };
      this.#routes.set(name, sync);
    }
    return sync;
  }

  #currentEpoch(sync: RouteSync<State>): string | null {
    return sync.version === null || sync.base.gen === null ? null : epochOf(sync.version, sync.base.gen, sync.challenger);
  }

  #leaderOf(sync: RouteSync<State>, now: number): string | null {
    if (sync.lease !== null && now < sync.lease.deadline) return this.instanceId;
    return sync.leader === this.instanceId ? null : sync.leader;
  }

  #local(route: string): LocalControl {
    const state = this.#deps.state;
    return { rolledBack: state.isRolledBack(route), paused: state.isPaused(route), override: state.override(route) ?? null };
  }

  /** Runs `work` after every earlier piece of work on the same route (reconciliations must not interleave). */
  #locked<T>(sync: RouteSync<State>, work: () => Promise<T>): Promise<T> {
    return this.#serial.run(sync.name, work);
  }

  #setStatus(next: 'ok' | 'degraded', why?: string): void {
    if (this.#closed || this.#status === next) return;
    const previous = this.#status;
    this.#status = next;
    this.#deps.metrics.coordinationDegraded.set(next === 'degraded' ? 1 : 0);
    if (next === 'degraded') {
      for (const sync of this.#routes.values()) this.#deps.metrics.leader.labels(sync.name).set(0);
      this.#deps.logger.warn({ why, previous }, 'coordination degraded: Redis unreachable or slow; deciding from local statistics (hard breakers on, rollout steps held)');
    } else {
      this.#deps.logger.info({ previous }, previous === 'starting' ? 'coordination ready' : 'coordination restored: rejoined the fleet');
    }
  }

  /** One exchange for every linked route; overlapping calls share the one in flight, unless `after` asks for one after it. */
  #exchange(after = false): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (after && this.#exchanging !== null) return this.#exchanging.then(() => this.#exchange());
    this.#exchanging ??= this.#exchangeAll().finally(() => {
      this.#exchanging = null;
    });
    return this.#exchanging;
  }

  async #exchangeAll(): Promise<void> {
    const now = performance.now();
    if (this.#client.status !== 'ready') {
      // Connecting at start is not an outage yet; after a short grace it is.
      if (this.#status !== 'starting' || now - this.#startedAt > Math.max(1_000, 4 * this.#settings.intervalMs)) this.#setStatus('degraded', `redis ${this.#client.status}`);
      return;
    }
    // A route the controller has not linked for two exchanges is idle: one more exchange after its last link publishes
    // what that link bound (totals, the leader's state), then it rests. Never before its first contact with the fleet's
    // record (base.rev set): a replica must learn a rollback the fleet already holds even for a route it does not serve.
    const due: RouteSync<State>[] = [];
    for (const sync of this.#active) {
      if (this.#joining.has(sync)) continue;
      if (now - sync.lastLinked > 2 * this.#settings.intervalMs + this.#settings.timeoutMs && sync.base.rev !== null) this.#rest(sync);
      else due.push(sync);
    }
    // This exchange includes the routes that have just joined.
    this.#joined.clear();
    try {
      await Promise.all(due.map((sync) => this.#exchangeRoute(sync)));
      this.#setStatus('ok');
    } catch (err) {
      this.#setStatus('degraded', failureCode(err));
    }
  }

  /** One exchange for the routes linked by one controller tick that were not active before (batched per tick). */
  #scheduleJoined(): void {
    if (this.#joinScheduled) return;
    this.#joinScheduled = true;
    queueMicrotask(() => {
      this.#joinScheduled = false;
      // Not connected: the exchange on 'ready' includes them, as every active route.
      if (this.#closed || this.#client.status !== 'ready' || this.#joined.size === 0) return;
      const routes = [...this.#joined];
      this.#joined.clear();
      for (const sync of routes) this.#joining.add(sync);
      // Settled, not all: a route leaves #joining only when its own pipeline is done, even if another one failed first.
      const run = Promise.allSettled(routes.map((sync) => this.#exchangeRoute(sync)))
        .then((results) => {
          const failed = results.find((result) => result.status === 'rejected');
          if (failed === undefined) this.#setStatus('ok');
          else this.#setStatus('degraded', failureCode(failed.reason));
        })
        .finally(() => {
          for (const sync of routes) this.#joining.delete(sync);
          this.#joinRuns.delete(run);
        });
      this.#joinRuns.add(run);
    });
  }

  async #exchangeRoute(sync: RouteSync<State>): Promise<void> {
    const { keys } = sync;
    const started = performance.now();
    const epoch = this.#currentEpoch(sync);
    const bound = sync.bound !== null && sync.bound.epoch === epoch ? sync.bound : null;
    const leading = sync.lease !== null && started < sync.lease.deadline;
    const pipe = this.#client.pipeline();
    if (epoch !== null) {
      if (bound !== null) {
        pipe.hset(keys.stats(epoch), bound.field, JSON.stringify(encodeWindow(bound.window, this.instanceId, Date.now(), bound.experiment)));
        pipe.pexpire(keys.stats(epoch), this.#settings.statsTtlMs);
      }
      pipe.hgetall(keys.stats(epoch));
    }
    const stateJson = leading && epoch !== null && sync.pendingState !== null ? JSON.stringify({ epoch, by: this.instanceId, state: sync.pendingState }) : '';
    pipe.swyLease(keys.lease, keys.fence, keys.leaderState, this.instanceId, sync.lease?.value ?? '', this.#settings.leaseMs, stateJson, this.#settings.statsTtlMs);
    pipe.get(keys.leaderState);
    pipe.hgetall(keys.control);
    const results = (await pipe.exec()) ?? [];
    for (const [err] of results) if (err) throw err;
    const values = results.map(([, value]) => value);
    const control = values.pop() as Record<string, string>;
    const leaderStateText = values.pop() as string | null;
    const [leaseStatus, leaseValue] = values.pop() as [number, string];
    const statsFields = epoch === null ? null : (values.pop() as Record<string, string>);

    this.#adoptLease(sync, leaseStatus, leaseValue, started);
    sync.leaderState = this.#parseLeaderState(leaderStateText);

    const record = control.record === undefined ? null : parseSharedControl(control.record);
    if (control.record !== undefined && record === null) {
      this.#deps.logger.error({ route: sync.name, key: keys.control }, 'replicated control record is invalid; leaving it alone (fix or delete the key)');
    } else {
      const shared: Versioned | null = record === null ? null : { rev: Number(control.rev), record };
      await this.#locked(sync, async () => {
        // The pub/sub message may have brought a newer record while the pipeline was in flight.
        if (shared === null || sync.shared === null || shared.rev >= sync.shared.rev || sync.base.rev === null) sync.shared = shared;
        return this.#reconcile(sync);
      });
    }

    // Totals read under an epoch that has just changed (a resume elsewhere) belong to the old experiment.
    if (epoch !== null && statsFields !== null && epoch === this.#currentEpoch(sync)) {
      const payloads: ReplicaPayload[] = [];
      for (const [field, text] of Object.entries(statsFields)) {
        if (bound !== null && field === bound.field) continue;
        const payload = parsePayload(text);
        if (payload !== null) payloads.push(payload);
      }
      sync.others = { epoch, payloads, readAt: performance.now() };
    } else {
      sync.others = null;
    }
  }

  #adoptLease(sync: RouteSync<State>, status: number, value: string, started: number): void {
    const hadLease = sync.lease !== null;
    if (status === LeaseStatus.Renewed || status === LeaseStatus.Acquired) {
      // Counted from before the request went out, minus one timeout of margin: never later than Redis' own expiry.
      sync.lease = { value, deadline: started + this.#settings.leaseMs - this.#settings.timeoutMs };
      sync.leader = this.instanceId;
      if (status === LeaseStatus.Acquired) this.#deps.logger.info({ route: sync.name, lease: value }, 'acquired the route lease: this replica leads');
    } else {
      if (hadLease) this.#deps.logger.warn({ route: sync.name, holder: value }, 'lost the route lease');
      sync.lease = null;
      sync.leader = parseLease(value)?.instance ?? null;
    }
    this.#deps.metrics.leader.labels(sync.name).set(sync.lease !== null ? 1 : 0);
  }

  #parseLeaderState(text: string | null): { epoch: string; state: State } | null {
    if (text === null) return null;
    try {
      const frame = leaderStateFrame.safeParse(JSON.parse(text));
      if (!frame.success) return null;
      const state = this.#deps.leaderState.safeParse(frame.data.state);
      return state.success ? { epoch: frame.data.epoch, state: state.data } : null;
    } catch {
      return null;
    }
  }

  /** Plans and carries out one reconciliation of the replicated control state (call under the route lock). */
  async #reconcile(sync: RouteSync<State>): Promise<'in-sync' | 'applied' | 'superseded' | 'pushed' | 'fenced'> {
    let shared = sync.shared;
    for (let attempt = 0; attempt < 3; attempt++) {
      const plan = planSync(this.#local(sync.name), sync.base, shared, this.instanceId, sync.rollbackReason);
      switch (plan.kind) {
        case 'in-sync':
          return 'in-sync';
        case 'apply':
          this.#apply(sync, plan.target);
          return plan.superseded ? 'superseded' : 'applied';
        case 'push': {
          const [code, revText, recordText] = await this.#client.swyControl(sync.keys.control, sync.keys.lease, plan.expectRev, JSON.stringify(plan.record), sync.fence ?? '', this.#channel, sync.name);
          const rev = Number(revText);
          if (code === ControlWrite.Written) {
            sync.shared = { rev, record: plan.record };
            sync.base = { rev, gen: plan.record.gen, control: controlOf(plan.record) };
            this.#deps.logger.info({ route: sync.name, rev, gen: plan.record.gen, reason: plan.record.reason, fenced: sync.fence !== null }, 'published a control change to the fleet');
            return 'pushed';
          }
          const current = recordText === '' ? null : parseSharedControl(recordText);
          shared = current === null ? null : { rev, record: current };
          sync.shared = shared;
          if (code === ControlWrite.FenceRejected) {
            // A paused or deposed leader: its decision must not take effect. Back to what the fleet holds.
            this.#deps.logger.warn({ route: sync.name }, 'leader decision rejected by the fencing token (lease lost); reverting to the fleet state');
            this.#revert(sync);
            return 'fenced';
          }
        }
      }
    }
    return 'in-sync';
  }

  /** Undoes this replica's unpublished edits: back to the fleet's record, or to the last synced state without one. */
  #revert(sync: RouteSync<State>): void {
    if (sync.shared !== null) return this.#apply(sync, sync.shared);
    this.#setLocal(sync.name, this.#local(sync.name), sync.base.control);
  }

  /** Sets the local inputs to `next`: a rollback first and a resume last, so traffic never meets a half-applied change. */
  #setLocal(route: string, before: LocalControl, next: LocalControl): void {
    const state = this.#deps.state;
    if (next.rolledBack && !before.rolledBack) state.setRolledBack(route, true);
    if (next.paused !== before.paused) state.setPaused(route, next.paused);
    if (!sameOverride(before.override, next.override)) state.setOverride(route, next.override);
    if (!next.rolledBack && before.rolledBack) state.setRolledBack(route, false);
  }

  /** Makes the local state equal to the fleet's record and records it. */
  #apply(sync: RouteSync<State>, target: Versioned): void {
    const before = this.#local(sync.name);
    const next = controlOf(target.record);
    this.#setLocal(sync.name, before, next);
    const gen = sync.base.gen;
    sync.base = { rev: target.rev, gen: target.record.gen, control: next };
    sync.shared = target;
    if (!sameControl(before, next)) {
      this.#deps.audit.append({ who: `replica:${target.record.by}`, action: 'replica.sync', route: sync.name, before, after: next, detail: { rev: target.rev, gen: target.record.gen, reason: target.record.reason } });
      this.#deps.logger.info({ route: sync.name, by: target.record.by, reason: target.record.reason, rolledBack: next.rolledBack, paused: next.paused }, 'applied a control change from the fleet');
    }
    if (gen !== null && gen !== target.record.gen) this.#deps.logger.info({ route: sync.name, gen: target.record.gen }, 'new experiment generation: statistics start afresh');
  }

  #onMessage(channel: string, message: string): void {
    if (channel !== this.#channel || this.#closed) return;
    let parsed: { route?: unknown; rev?: unknown; record?: unknown };
    try {
      parsed = JSON.parse(message) as typeof parsed;
    } catch {
      return;
    }
    if (typeof parsed.route !== 'string' || typeof parsed.rev !== 'number') return;
    const sync = this.#routes.get(parsed.route);
    if (!sync) return;
    const record = parseSharedControl(JSON.stringify(parsed.record));
    if (record === null) return;
    const rev = parsed.rev;
    void this.#locked(sync, async () => {
      if (sync.shared !== null && rev <= sync.shared.rev) return 'in-sync';
      sync.shared = { rev, record };
      return this.#reconcile(sync);
    }).catch((err: unknown) => this.#setStatus('degraded', failureCode(err)));
  }
}

export function connect(target: RedisTarget, options: RedisOptions): Redis | Cluster {
  switch (target.kind) {
    case 'single':
      return new Redis(target.url, { ...options, ...(target.tls ? { tls: {} } : {}) });
    case 'sentinel':
      return new Redis({
        ...options,
        sentinels: target.sentinels.map((s) => ({ host: s.host, port: s.port })),
        name: target.name,
        db: target.db,
        ...(target.username ? { username: target.username } : {}),
        ...(target.password ? { password: target.password } : {}),
        ...(target.sentinelPassword ? { sentinelPassword: target.sentinelPassword } : {}),
        ...(target.tls ? { tls: {}, enableTLSForSentinelMode: true } : {}),
      });
    case 'cluster':
      return new Cluster(
        target.nodes.map((n) => ({ host: n.host, port: n.port })),
        {
          lazyConnect: true,
          enableOfflineQueue: options.enableOfflineQueue ?? false,
          clusterRetryStrategy: options.retryStrategy,
          redisOptions: {
            ...options,
            ...(target.username ? { username: target.username } : {}),
            ...(target.password ? { password: target.password } : {}),
            ...(target.tls ? { tls: {} } : {}),
          },
        },
      );
  }
}
