// Test helper: starts real Redis Sentinel and Cluster topologies, and a TLS-only Redis (redis-server children on free ports).
//
// Nothing here is mocked: the processes are the machine's redis-server 7 binary, started without persistence
// (`--save '' --appendonly no`) so every run begins empty. The bench's ProcessGroup tracks every child from the moment
// it is spawned (and kills what is left on process exit); a start that fails part-way stops what it started before
// rethrowing, and `stop()` ends the rest.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Cluster, Redis } from 'ioredis';
import { freePort, ProcessGroup, type Managed } from '../../bench/lib/processes.js';
import { waitFor } from './wait-for.js';

const run = promisify(execFile);
const HOST = '127.0.0.1';
/** Redis Cluster's bus listens on the client port + 10000; a node cannot start unless that port is free too. */
const BUS_OFFSET = 10_000;

export interface RedisNode {
  readonly host: string;
  readonly port: number;
}

interface Topology {
  /** SWITCHYARD_REDIS_URL for this topology. */
  readonly url: string;
  /** The temp dir holding configs, node files and logs (removed by `stop`). */
  readonly dir: string;
  /** Stops every process (SIGTERM, SIGKILL after 2 s), disconnects `client()` and removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

export interface SentinelTopology extends Topology {
  readonly kind: 'sentinel';
  readonly masterName: string;
  /** The database the URL selects (and `client()` reads). */
  readonly db: number;
  /** The current master: the replica after `killMaster()`. */
  readonly master: RedisNode;
  readonly sentinel: RedisNode;
  /** A plain client on the current master, for inspecting keys; disconnected by `stop` and by `killMaster`. */
  client(): Redis;
  /**
   * SIGKILLs the master (a crash, not a handover) and resolves with the new master once the sentinel has promoted the
   * replica and names it. Needs `replica: true`.
   */
  killMaster(): Promise<RedisNode>;
}

export interface SentinelOptions {
  masterName?: string;
  /** Database in the URL (default 0). */
  db?: number;
  /** Also start one replica of the master, so the sentinel can fail over to it. */
  replica?: boolean;
  /** requirepass of the master (and replica); goes in the URL's userinfo, percent-encoded. */
  password?: string;
  /** requirepass of the sentinel; goes in the URL's `sentinelPassword` query parameter. */
  sentinelPassword?: string;
}

export interface ClusterTopology extends Topology {
  readonly kind: 'cluster';
  /** Every node started (masters and replicas), including any killed by `kill`. */
  readonly nodes: readonly RedisNode[];
  /** A Cluster client on the live nodes, for inspecting keys; disconnected by `stop` and by `kill`. */
  client(): Cluster;
  /** The master serving `key`'s hash slot. */
  masterOf(key: string): Promise<RedisNode>;
  /**
   * The live node on which a connection named `name` (ioredis connectionName; its Cluster subscriber adds a prefix)
   * is subscribed to a channel, if any.
   */
  nodeWithSubscriber(name: string): Promise<RedisNode | null>;
  /** Subscribers of `channel` over every live node, replicas included (PUBSUB NUMSUB counts one node's clients). */
  subscribers(channel: string): Promise<number>;
  /**
   * SIGKILLs a node (a crash, not a handover). For a master, resolves once one of its replicas has been promoted and
   * every live node reports cluster_state:ok with the master's slots on the promoted node (it needs a replica left);
   * for a replica, once every live node reports cluster_state:ok.
   */
  kill(node: RedisNode): Promise<{ promoted: RedisNode | null }>;
}

export interface ClusterOptions {
  /** Masters (default 3). */
  masters?: number;
  /**
   * Replicas per master (default 0). With replicas the node timeout is 1 s, so the cluster fails a dead master over
   * within a few seconds; without, it stays 5 s: a dead node there is an outage, and a short timeout only makes a
   * loaded CI machine flap.
   */
  replicas?: number;
}

export type RedisTopology = SentinelTopology | ClusterTopology;

/** One redis-server that accepts TLS only, with a certificate for 127.0.0.1 signed by a throwaway CA. */
export interface TlsRedis extends Topology {
  readonly kind: 'tls';
  readonly node: RedisNode;
  /** PEM of the CA that signed the server's certificate (what NODE_EXTRA_CA_CERTS would point at). */
  readonly caFile: string;
  /** A TLS client trusting `caFile`, for inspecting keys; disconnected by `stop`. */
  client(): Redis;
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, HOST, () => server.close(() => resolve(true)));
  });
}

/**
 * A port the OS reports free (redis-server has no port 0), distinct from `taken`. With `bus`, port + 10000 must be free
 * as well. Another process may still grab it before redis binds; the start then fails with the server's log.
 */
async function freeRedisPort(taken: Set<number>, bus = false): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await freePort();
    if (taken.has(port) || (bus && (port + BUS_OFFSET > 65_535 || taken.has(port + BUS_OFFSET) || !(await portIsFree(port + BUS_OFFSET))))) continue;
    taken.add(port);
    if (bus) taken.add(port + BUS_OFFSET);
    return port;
  }
  throw new Error('no free port found in 50 attempts');
}

/** A server to ask: its port, its password when it requires one, and the CA to trust when it speaks TLS only. */
interface Address {
  readonly port: number;
  readonly password?: string;
  readonly tlsCa?: string;
}

/** One command on a throwaway connection that never retries; null when the server does not answer. */
async function ask(at: Address, command: string, ...args: string[]): Promise<unknown> {
  const client = new Redis({ host: HOST, port: at.port, ...(at.password ? { password: at.password } : {}), ...(at.tlsCa ? { tls: { ca: at.tlsCa } } : {}), lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 500, enableReadyCheck: false });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await client.call(command, ...args);
  } catch {
    return null;
  } finally {
    client.disconnect();
  }
}

/** The processes and temp dir of one topology (the bench's ProcessGroup owns the children); `stop` is safe at any point. */
class Processes {
  readonly group = new ProcessGroup();
  readonly ports = new Set<number>();
  readonly #byName = new Map<string, Managed>();
  #stopped = false;

  constructor(readonly dir: string) {}

  /** Starts `redis-server <args>` logging to `<dir>/<name>.log`; resolves once it answers PING (as `password`, over TLS with `tlsCa`). */
  async start(name: string, port: number, args: readonly string[], password?: string, tlsCa?: string): Promise<RedisNode> {
    const log = path.join(this.dir, `${name}.log`);
    const member = this.group.start(name, 'redis-server', [...args, '--logfile', log]);
    this.#byName.set(name, member);
    const exited = member.exited.then(async (code) => {
      throw new Error(`${name} (redis-server on ${port}) exited with ${String(code)} before answering: ${await this.#tail(log)}`);
    });
    const answering = waitFor(`${name} answering PING on ${port}`, async () => (await ask({ port, password, tlsCa }, 'PING')) === 'PONG', 10_000);
    await Promise.race([answering, exited]);
    exited.catch(() => undefined);
    return { host: HOST, port };
  }

  /** SIGKILLs the child started as `name` and waits for it to exit. */
  async kill(name: string): Promise<void> {
    const member = this.#byName.get(name);
    if (!member) throw new Error(`no process named ${name}`);
    member.child.kill('SIGKILL');
    await member.exited;
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.group.stopAll();
    await rm(this.dir, { recursive: true, force: true });
  }

  async #tail(log: string): Promise<string> {
    const text = await readFile(log, 'utf8').catch(() => '(no log)');
    return text.split('\n').slice(-8).join('\n');
  }
}

/** Arguments every server gets: loopback only, no persistence, files in the topology's dir. */
function serverArgs(port: number, dir: string): string[] {
  return ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--dir', dir];
}

/** Runs `start` with a fresh Processes; on failure stops everything started so far, then rethrows. */
async function withProcesses<T>(label: string, start: (p: Processes) => Promise<T>): Promise<T> {
  const processes = new Processes(await mkdtemp(path.join(tmpdir(), `swy-${label}-`)));
  try {
    return await start(processes);
  } catch (err) {
    await processes.stop();
    throw err;
  }
}

/** A double-quoted redis.conf string (sentinel.conf takes passwords this way). */
function confString(value: string): string {
  return JSON.stringify(value);
}

/** SENTINEL replies list fields as [name, value, name, value, …]; this reads one. */
function field(reply: unknown, name: string): unknown {
  if (!Array.isArray(reply)) return undefined;
  const at = reply.indexOf(name);
  return at >= 0 && at % 2 === 0 ? reply[at + 1] : undefined;
}

/**
 * One master and one sentinel monitoring it (quorum 1, down after 500 ms), on free ports; with `replica`, also a
 * replica of the master. Resolves once the sentinel names the master and is connected to it (and to the replica), so a
 * client asking the sentinel finds a master that answers, and a failover has somewhere to go.
 */
export function startSentinel(options: SentinelOptions = {}): Promise<SentinelTopology> {
  const masterName = options.masterName ?? 'swymaster';
  const db = options.db ?? 0;
  const { password, sentinelPassword } = options;
  const auth = password ? ['--requirepass', password, '--masterauth', password] : [];
  return withProcesses('sentinel', async (processes) => {
    const { dir } = processes;
    const masterPort = await freeRedisPort(processes.ports);
    const replicaPort = options.replica ? await freeRedisPort(processes.ports) : null;
    const sentinelPort = await freeRedisPort(processes.ports);
    // Redis 7 delays a diskless full sync by 5 s to batch replicas; with one replica that is only a wait.
    let master = await processes.start('master', masterPort, [...serverArgs(masterPort, dir), ...auth, '--repl-diskless-sync-delay', '0'], password);
    const replica = replicaPort === null ? null : await processes.start('replica', replicaPort, [...serverArgs(replicaPort, dir), ...auth, '--replicaof', HOST, String(masterPort)], password);
    if (replica !== null) {
      // Started before the sentinel, so its first INFO of the master already lists the replica.
      await waitFor(`replica on ${replica.port} in sync`, async () => /slave0:.*state=online/.test(String(await ask({ port: masterPort, password }, 'INFO', 'replication'))), 10_000);
    }
    // A sentinel rewrites its config file, so it needs one of its own in a writable place.
    const config = path.join(dir, 'sentinel.conf');
    await writeFile(config, [
      `port ${sentinelPort}`,
      `bind ${HOST}`,
      `dir ${dir}`,
      `sentinel monitor ${masterName} ${HOST} ${masterPort} 1`,
      `sentinel down-after-milliseconds ${masterName} 500`,
      `sentinel failover-timeout ${masterName} 5000`,
      ...(password ? [`sentinel auth-pass ${masterName} ${confString(password)}`] : []),
      ...(sentinelPassword ? [`requirepass ${confString(sentinelPassword)}`] : []),
      '',
    ].join('\n'));
    const sentinel = await processes.start('sentinel', sentinelPort, [config, '--sentinel'], sentinelPassword);
    const atSentinel: Address = { port: sentinelPort, ...(sentinelPassword ? { password: sentinelPassword } : {}) };
    const names = async (port: number) => {
      const addr = await ask(atSentinel, 'SENTINEL', 'get-master-addr-by-name', masterName);
      return Array.isArray(addr) && addr[0] === HOST && addr[1] === String(port);
    };
    await waitFor(`sentinel on ${sentinelPort} connected to master ${masterName} at ${masterPort}${replica ? ' and its replica' : ''}`, async () => {
      // Flags read "master,disconnected" (or "slave,disconnected") until the sentinel's link to the instance is up.
      if (!(await names(masterPort)) || field(await ask(atSentinel, 'SENTINEL', 'master', masterName), 'flags') !== 'master') return false;
      if (replica === null) return true;
      const replicas = await ask(atSentinel, 'SENTINEL', 'replicas', masterName);
      return Array.isArray(replicas) && replicas.some((r) => field(r, 'port') === String(replica.port) && field(r, 'flags') === 'slave' && field(r, 'master-link-status') === 'ok');
    }, 10_000);
    let client: Redis | null = null;
    return {
      kind: 'sentinel',
      url: `redis+sentinel://${password ? `:${encodeURIComponent(password)}@` : ''}${HOST}:${sentinelPort}/${masterName}${db === 0 ? '' : `/${db}`}${sentinelPassword ? `?sentinelPassword=${encodeURIComponent(sentinelPassword)}` : ''}`,
      dir,
      masterName,
      db,
      get master() {
        return master;
      },
      sentinel,
      client() {
        client ??= new Redis({ host: master.host, port: master.port, db, ...(password ? { password } : {}), maxRetriesPerRequest: 1 });
        return client;
      },
      async killMaster() {
        if (replica === null) throw new Error('killMaster needs a topology started with { replica: true }');
        client?.disconnect();
        client = null;
        await processes.kill('master');
        await waitFor(`sentinel promoting the replica on ${replica.port}`, () => names(replica.port), 15_000);
        master = replica;
        return replica;
      },
      async stop() {
        client?.disconnect();
        await processes.stop();
      },
    };
  });
}

/** One row of CLUSTER SLOTS: [start, end, [host, port, id], ...replicas]. */
type SlotRange = [number, number, [string, number, string], ...[string, number, string][]];

/** The port of the master serving `slot`, as the node on `askPort` sees it; null when it does not answer. */
async function slotOwner(askPort: number, slot: number): Promise<number | null> {
  const ranges = (await ask({ port: askPort }, 'CLUSTER', 'SLOTS')) as SlotRange[] | null;
  if (!Array.isArray(ranges)) return null;
  const range = ranges.find(([from, to]) => slot >= from && slot <= to);
  return range ? Number(range[2][1]) : null;
}

/**
 * A Cluster on free ports (three masters by default, each with `replicas` replicas), created with
 * `redis-cli --cluster create`. Resolves once every node reports cluster_state:ok, i.e. each one sees all 16384 slots
 * served, and every replica's link to its master is up.
 */
export function startCluster(options: ClusterOptions = {}): Promise<ClusterTopology> {
  const masters = options.masters ?? 3;
  const replicas = options.replicas ?? 0;
  return withProcesses('cluster', async (processes) => {
    const { dir } = processes;
    const ports: number[] = [];
    for (let i = 0; i < masters * (1 + replicas); i++) ports.push(await freeRedisPort(processes.ports, true));
    const nodes = await Promise.all(ports.map((port) => processes.start(`node-${port}`, port, [
      ...serverArgs(port, dir),
      '--cluster-enabled', 'yes',
      '--cluster-config-file', path.join(dir, `nodes-${port}.conf`),
      '--cluster-node-timeout', replicas > 0 ? '1000' : '5000',
      // A replica started with the cluster has nothing old to hold against it: it may always take over.
      '--cluster-replica-validity-factor', '0',
      '--repl-diskless-sync-delay', '0',
    ])));
    try {
      await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `${n.host}:${n.port}`), '--cluster-replicas', String(replicas), '--cluster-yes'], { timeout: 30_000 });
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      throw new Error(`redis-cli --cluster create failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
    }
    const live = new Set(ports);
    const allOk = async () => {
      const infos = await Promise.all([...live].map((port) => ask({ port }, 'CLUSTER', 'INFO')));
      return infos.every((info) => typeof info === 'string' && info.includes('cluster_state:ok'));
    };
    await waitFor('cluster_state:ok on every node', allOk, 15_000);
    if (replicas > 0) {
      await waitFor('every replica linked to its master', async () => {
        const infos = await Promise.all(ports.map((port) => ask({ port }, 'INFO', 'replication')));
        return infos.filter((info) => /role:slave/.test(String(info)) && /master_link_status:up/.test(String(info))).length === masters * replicas;
      }, 15_000);
    }
    const anyLive = () => [...live][0]!;
    let client: Cluster | null = null;
    return {
      kind: 'cluster',
      url: `redis+cluster://${nodes.map((n) => `${n.host}:${n.port}`).join(',')}`,
      dir,
      nodes,
      client() {
        client ??= new Cluster(nodes.filter((n) => live.has(n.port)).map((n) => ({ host: n.host, port: n.port })), { redisOptions: { maxRetriesPerRequest: 1 } });
        return client;
      },
      async masterOf(key) {
        const slot = Number(await ask({ port: anyLive() }, 'CLUSTER', 'KEYSLOT', key));
        const owner = await slotOwner(anyLive(), slot);
        if (owner === null) throw new Error(`no node serves slot ${slot} of ${key}`);
        return { host: HOST, port: owner };
      },
      async nodeWithSubscriber(name) {
        const subscribed = (line: string) => /\bname=\S*/.exec(line)?.[0].endsWith(name) === true && /\bsub=[1-9]/.test(line);
        for (const port of live) {
          const list = await ask({ port }, 'CLIENT', 'LIST');
          if (typeof list === 'string' && list.split('\n').some(subscribed)) return { host: HOST, port };
        }
        return null;
      },
      async subscribers(channel) {
        const counts = await Promise.all([...live].map((port) => ask({ port }, 'PUBSUB', 'NUMSUB', channel)));
        return counts.reduce<number>((sum, reply) => sum + Number((reply as [string, number] | null)?.[1] ?? 0), 0);
      },
      async kill(node) {
        if (!live.has(node.port)) throw new Error(`node ${node.port} is not a live node of this cluster`);
        const ranges = ((await ask({ port: node.port }, 'CLUSTER', 'SLOTS')) ?? []) as SlotRange[];
        const served = ranges.filter((range) => Number(range[2][1]) === node.port);
        const firstSlot = served[0]?.[0] ?? null;
        // Any of the master's replicas may win the election. (CLUSTER SLOTS leaves out replicas that have not yet
        // replicated a byte, so they are read from CLUSTER NODES: `<id> <ip:port@bus> <flags> <master id> …`.)
        const replicasOf = async (): Promise<number[]> => {
          const table = String(await ask({ port: node.port }, 'CLUSTER', 'NODES')).split('\n').map((line) => line.split(' '));
          const ownId = table.find((row) => row[2]?.includes('myself'))?.[0];
          return table.filter((row) => row[3] === ownId && !row[2]!.includes('fail')).map((row) => Number(/:(\d+)@/.exec(row[1]!)![1]));
        };
        let candidates: number[] = [];
        if (firstSlot !== null) {
          // A master promoted by an earlier failover gets the old master's other replicas only once they have noticed
          // and re-attached, which can take a moment after the cluster reports ok again.
          await waitFor(`a replica attached to master ${node.port} (none: start the cluster with more replicas)`, async () => (candidates = await replicasOf()).length > 0, 10_000);
        }
        client?.disconnect();
        client = null;
        await processes.kill(`node-${node.port}`);
        live.delete(node.port);
        let promoted: number | null = null;
        const what = firstSlot === null ? `cluster_state:ok without ${node.port}` : `a replica of ${node.port} (${candidates.join(', ')}) promoted in its place`;
        await waitFor(what, async () => {
          if (firstSlot !== null) {
            const seen = await Promise.all([...live].map((port) => slotOwner(port, firstSlot)));
            const owner = seen[0] ?? null;
            if (owner === null || !candidates.includes(owner) || !seen.every((port) => port === owner)) return false;
            promoted = owner;
          }
          return allOk();
        }, 15_000);
        return { promoted: promoted === null ? null : { host: HOST, port: promoted } };
      },
      async stop() {
        client?.disconnect();
        await processes.stop();
      },
    };
  });
}

/**
 * A redis-server listening for TLS only (`--port 0 --tls-port N`), clients not asked for certificates. openssl makes a
 * CA and a P-256 server certificate for IP 127.0.0.1 (valid one day) in the temp dir, so a client must be given the CA.
 */
export function startTlsRedis(): Promise<TlsRedis> {
  return withProcesses('tls', async (processes) => {
    const { dir } = processes;
    const file = (name: string) => path.join(dir, name);
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    await writeFile(file('san.ext'), `subjectAltName=IP:${HOST}\n`);
    await run('openssl', ['req', '-x509', ...ec, '-keyout', file('ca.key'), '-out', file('ca.pem'), '-days', '1', '-subj', '/CN=switchyard-test-ca']);
    await run('openssl', ['req', ...ec, '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', `/CN=${HOST}`]);
    await run('openssl', ['x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial', '-out', file('server.pem'), '-days', '1', '-extfile', file('san.ext')]);
    const ca = await readFile(file('ca.pem'), 'utf8');
    const port = await freeRedisPort(processes.ports);
    const node = await processes.start('tls', port, [
      ...serverArgs(0, dir),
      '--tls-port', String(port),
      '--tls-cert-file', file('server.pem'),
      '--tls-key-file', file('server.key'),
      '--tls-ca-cert-file', file('ca.pem'),
      '--tls-auth-clients', 'no',
    ], undefined, ca);
    let client: Redis | null = null;
    return {
      kind: 'tls',
      url: `rediss://${HOST}:${port}`,
      dir,
      node,
      caFile: file('ca.pem'),
      client() {
        client ??= new Redis({ host: HOST, port, tls: { ca }, maxRetriesPerRequest: 1 });
        return client;
      },
      async stop() {
        client?.disconnect();
        await processes.stop();
      },
    };
  });
}

