// Redis coordination at 1,000 routes: idle routes cost no command, a route with traffic is exchanged and led alone, and a
// control change still reaches an idle route by pub/sub. Two in-process replicas (the app's control wiring) share a
// private redis-server, so its command counter counts their commands only.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Redis } from 'ioredis';
import { validatePolicyText } from '../../src/config/load.js';
import { compilePolicy } from '../../src/decision/compile.js';
import { emptySnapshot, SnapshotRef } from '../../src/decision/snapshot.js';
import { LiveSplits } from '../../src/control/live-splits.js';
import { StateStore } from '../../src/control/state-store.js';
import { AuditLog } from '../../src/control/audit.js';
import { Metrics } from '../../src/metrics/registry.js';
import { SplitChanger } from '../../src/control/split-changer.js';
import { NopFlagSource } from '../../src/flags/nop.js';
import { LiveWindows } from '../../src/analysis/window.js';
import { Controller } from '../../src/control/controller.js';
import { controlStateSchema, type ControlState } from '../../src/control/phases.js';
import { createCoordination } from '../../src/coordination/factory.js';
import type { Coordination } from '../../src/coordination/coordination.js';

const ROUTES = 1000;
const INTERVAL_MS = 50;
const QUIET_MS = 1_000;
const PREFIX = 'swy-scale';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const policyText = JSON.stringify({
  routes: Array.from({ length: ROUTES }, (_, i) => ({
    name: `r${i}`,
    match: { pathPrefix: `/v1/models/r${i}` },
    champion: { name: `r${i}-v1`, url: 'http://127.0.0.1:9001' },
    challengers: [{ name: `r${i}-v2`, url: 'http://127.0.0.1:9002', mode: 'canary', percent: 10 }],
  })),
});

/** One replica's control side, wired as src/app.ts wires it, with short cadences. */
class Replica {
  readonly logger = pino({ level: 'silent' });
  readonly splits = new LiveSplits(new SnapshotRef(emptySnapshot()));
  readonly metrics = new Metrics({ defaultMetrics: false });
  readonly audit = new AuditLog({ file: null });
  readonly windows = new LiveWindows();
  state!: StateStore;
  coordination!: Coordination<ControlState>;
  controller!: Controller;
  #feeding: NodeJS.Timeout | null = null;

  static async start(id: string, redisUrl: string): Promise<Replica> {
    const replica = new Replica();
    replica.state = await StateStore.open({ file: null, target: replica.splits, logger: replica.logger });
    const { policy } = validatePolicyText('scale.yaml', policyText);
    replica.splits.setPolicy(compilePolicy(policy!), 'v1');
    replica.coordination = createCoordination({ redisUrl, instanceId: id, prefix: PREFIX, intervalMs: INTERVAL_MS, leaseMs: 1_000, timeoutMs: 200 }, { state: replica.state, audit: replica.audit, leaderState: controlStateSchema, metrics: replica.metrics, logger: replica.logger });
    const changer = new SplitChanger({ splits: replica.splits, flags: new NopFlagSource(replica.logger), state: replica.state, audit: replica.audit, flagWriter: null, logger: replica.logger });
    replica.controller = new Controller({ splits: replica.splits, windows: replica.windows, state: replica.state, changer, audit: replica.audit, metrics: replica.metrics, logger: replica.logger, intervalMs: INTERVAL_MS, quietMs: QUIET_MS, coordination: replica.coordination });
    replica.controller.start();
    replica.coordination.start();
    return replica;
  }

  /** A champion request on `route` every 10 ms, observed as the data plane observes it, until `stopFeeding`. */
  feed(route: string): void {
    let n = 0;
    this.#feeding = setInterval(() => {
      this.windows.served({ route, requestId: `q${n++}`, joinId: 0, stickyKey: null, variant: `${route}-v1`, role: 'champion', mode: 'champion', status: 200, errorKind: null, latencyMs: 5, fellBack: false, fallbackFor: null, startedAt: Date.now(), mirrored: 0, requestBody: null, responseBody: null, responseTruncated: false, contentType: null });
    }, 10);
  }

  stopFeeding(): void {
    if (this.#feeding !== null) clearInterval(this.#feeding);
    this.#feeding = null;
  }

  async close(): Promise<void> {
    this.stopFeeding();
    this.controller.stop();
    await this.coordination.close();
  }
}

describe('Redis coordination with 1,000 routes', () => {
  let redis: ChildProcessWithoutNullStreams;
  let client: Redis;
  const replicas: Replica[] = [];

  beforeAll(async () => {
    const port = await freePort();
    redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
    redis.stdout.resume();
    redis.stderr.resume();
    // Connects (retrying every 50 ms) once the server listens; refused attempts before that are expected.
    client = new Redis(`redis://127.0.0.1:${port}`, { retryStrategy: () => 50 });
    client.on('error', () => undefined);
    await new Promise((resolve) => client.once('ready', resolve));
    replicas.push(await Replica.start('a', `redis://127.0.0.1:${port}`), await Replica.start('b', `redis://127.0.0.1:${port}`));
  });

  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.close()));
    client?.disconnect();
    redis?.kill('SIGKILL');
  });

  /** Commands the server processed per second over `ms` (the INFO call itself is one). */
  async function commandsPerSecond(ms = 1_000): Promise<number> {
    const count = async () => Number(/total_commands_processed:(\d+)/.exec(await client.info('stats'))![1]);
    const before = await count();
    const started = performance.now();
    await new Promise((resolve) => setTimeout(resolve, ms));
    return ((await count()) - before - 1) / ((performance.now() - started) / 1000);
  }

  const leaseKeys = async () => (await client.keys(`${PREFIX}:*:lease`)).sort();

  it('seeds every route\'s control record at the start, then idles at no command per exchange', async () => {
    const [a, b] = replicas as [Replica, Replica];
    // The first looks after the start meet the fleet: every route gets its control record.
    await expect.poll(async () => (await client.keys(`${PREFIX}:*:control`)).length, { timeout: 20_000, interval: 100 }).toBe(ROUTES);
    await expect.poll(() => a.controller.activeRoutes + b.controller.activeRoutes, { timeout: 10_000, interval: 50 }).toBe(0);
    await expect.poll(leaseKeys, { timeout: 5_000, interval: 50 }).toEqual([]);
    // 2 replicas × 1,000 routes × 20 exchanges a second would be 40,000 pipelines a second; idle, there are none.
    // Idle once every route has had its first contact with the fleet's record (a loaded machine may need a few tries).
    await expect.poll(() => commandsPerSecond(), { timeout: 20_000, interval: 0 }).toBeLessThan(5);
  });

  it('exchanges a route with traffic, led by one replica; idle again after the quiet period', async () => {
    const [a, b] = replicas as [Replica, Replica];
    a.feed('r5');
    b.feed('r5');
    await expect.poll(leaseKeys, { timeout: 5_000, interval: 50 }).toEqual([`${PREFIX}:{r5}:lease`]);
    const views = [a.controller.analysis('r5')!, b.controller.analysis('r5')!];
    await expect.poll(() => [a, b].map((r) => r.controller.analysis('r5')!.role).sort(), { timeout: 5_000, interval: 50 }).toEqual(['follower', 'leader']);
    expect(views.every((v) => v.coordination === 'ok')).toBe(true);
    // One route: about 6 commands per exchange per replica, 20 exchanges a second.
    const busy = await commandsPerSecond();
    expect(busy).toBeGreaterThan(50);
    expect(busy).toBeLessThan(600);
    expect([a.controller.activeRoutes, b.controller.activeRoutes]).toEqual([1, 1]);

    a.stopFeeding();
    b.stopFeeding();
    // The leader releases the lease when the route goes idle, so a replica that still has traffic leads at once.
    await expect.poll(leaseKeys, { timeout: 5_000, interval: 50 }).toEqual([]);
    // Idle once every route has had its first contact with the fleet's record (a loaded machine may need a few tries).
    await expect.poll(() => commandsPerSecond(), { timeout: 20_000, interval: 0 }).toBeLessThan(5);
  });

  it('an idle route still gets the fleet\'s rollback by pub/sub, within milliseconds', async () => {
    const [a, b] = replicas as [Replica, Replica];
    expect(a.controller.activeRoutes).toBe(0);
    const rolledBackAt = performance.now();
    expect(b.controller.rollback('r7', 'manual', [], 'alice')).toEqual({ changed: true });
    await expect.poll(() => a.splits.snapshot.byName.get('r7')!.state.rolledBack, { timeout: 2_000, interval: 5 }).toBe(true);
    expect(performance.now() - rolledBackAt).toBeLessThan(1_000);
  });
});
