// Test helper: a real Unleash server in a child process on a fresh PostgreSQL database, one per call or shared per run.
import { execFile, spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

// PostgreSQL is driven through the `psql` CLI rather than the `pg` module: `pg` is only a transitive dependency of
// unleash-server (not in package.json, no @types/pg installed), while psql ships with the cluster this helper may
// have to start anyway (pg_isready, pg_ctlcluster). One psql run costs about 60 ms, a few per server start.
const execFileAsync = promisify(execFile);

/** Coordinates of a running Unleash: serializable, so a vitest globalSetup can `provide` them to every worker. */
export interface UnleashServerInfo {
  /** Server root, e.g. http://127.0.0.1:41234 (UnleashAdminClient's baseUrl). */
  url: string;
  /** `url + '/api/'`: what unleash-client expects as `url`. */
  apiUrl: string;
  /** Admin token (`*:*.<random>`), valid for the Admin API. */
  adminToken: string;
  /** Backend token for project default, environment development (what the SDK sends). */
  clientToken: string;
}

/** A server this process started and owns. */
export interface UnleashServer extends UnleashServerInfo {
  /** Name of the PostgreSQL database created for this server (dropped by stop()). */
  database: string;
  /** PID of the child process running scripts/start-unleash.mjs. */
  pid: number;
  /** Milliseconds from spawning the child to its ready line. */
  startMs: number;
  /** Stops the server (SIGTERM, SIGKILL after 5 s), then drops its database. Idempotent. */
  stop(): Promise<void>;
}

/** Options of {@link startUnleashServer}. */
export interface StartUnleashServerOptions {
  /** Listen port; 0 (the default) lets the OS pick a free one inside the child, so two servers never race for it. */
  port?: number;
  /** Give up (kill the child, drop the database) when no ready line came within this time. Default 60 s. */
  startTimeoutMs?: number;
  /** Extra environment for the child, applied last (e.g. `{ UNLEASH_LOG_LEVEL: 'info' }`). */
  env?: Readonly<Record<string, string>>;
}

/** Error thrown when the server does not come up; `output` holds the child's last stderr and stdout lines. */
export interface UnleashStartError extends Error {
  code: 'SWY_TEST_UNLEASH_START';
  output: string;
}

/** Key under which the globalSetup provides the shared server's coordinates. */
export const UNLEASH_PROVIDE_KEY = 'swyUnleash';

declare module 'vitest' {
  export interface ProvidedContext {
    swyUnleash: UnleashServerInfo | undefined;
  }
}

const START_SCRIPT = fileURLToPath(new URL('../../scripts/start-unleash.mjs', import.meta.url));
const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PG_HOST = process.env.PGHOST ?? '127.0.0.1';
const PG_PORT = process.env.PGPORT ?? '5432';
const PG_USER = process.env.PGUSER ?? 'postgres';
const DATABASE_PREFIX = 'swy_unleash_';
const DATABASE_NAME = /^swy_unleash_(\d+)_(\d+)$/;
const STOP_GRACE_MS = 5_000;
const OUTPUT_TAIL_LINES = 40;
/** Environment the child inherits; everything else (NODE_OPTIONS, NODE_ENV=test, VITEST_*, DATABASE_URL…) stays out. */
const INHERITED_ENV = ['PATH', 'HOME', 'TMPDIR', 'TZ', 'LANG', 'LC_ALL'] as const;

let databaseCounter = 0;
let lazySharedServer: Promise<UnleashServer> | undefined;

/**
 * Starts a real Unleash (scripts/start-unleash.mjs) on a fresh database `swy_unleash_<pid>_<n>`.
 * Makes sure PostgreSQL runs first and drops databases left behind by dead processes.
 * @example const unleash = await startUnleashServer(); try { ... } finally { await unleash.stop(); }
 */
export async function startUnleashServer(options: StartUnleashServerOptions = {}): Promise<UnleashServer> {
  const port = options.port ?? 0;
  const startTimeoutMs = options.startTimeoutMs ?? 60_000;
  await ensurePostgres();
  await dropDatabasesOfDeadProcesses();
  const database = `${DATABASE_PREFIX}${process.pid}_${++databaseCounter}`;
  await psql(`CREATE DATABASE "${database}"`);

  const adminToken = `*:*.swy-admin-${randomBytes(12).toString('hex')}`;
  const clientToken = `default:development.swy-client-${randomBytes(12).toString('hex')}`;
  const env: NodeJS.ProcessEnv = {};
  for (const key of INHERITED_ENV) if (process.env[key] !== undefined) env[key] = process.env[key];
  Object.assign(env, {
    UNLEASH_DB_URL: `postgres://${encodeURIComponent(PG_USER)}@${PG_HOST}:${PG_PORT}/${database}`,
    UNLEASH_PORT: String(port),
    UNLEASH_ADMIN_TOKEN: adminToken,
    UNLEASH_CLIENT_TOKEN: clientToken,
    UNLEASH_EXIT_ON_STDIN_END: '1',
    UNLEASH_DROP_DB_ON_STDIN_END: '1',
  }, options.env);

  const startedAt = performance.now();
  // stdin stays an open pipe for the child's whole life: if this process dies, the child sees EOF, stops and drops
  // its database (vitest kills workers without running 'exit' handlers, so this process cannot clean up then).
  const child = spawn(process.execPath, [START_SCRIPT], { cwd: PROJECT_ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
  const output = new OutputTail(OUTPUT_TAIL_LINES);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await terminate(child, exited);
      await dropDatabase(database);
    })();
    return stopping;
  };

  let ready: ReadyLine;
  try {
    ready = await waitForReadyLine(child, output, startTimeoutMs);
  } catch (err) {
    await stop();
    throw startError(`${describeFailure(err)} (database ${database}, script ${START_SCRIPT})`, output.text(), err);
  }
  return {
    url: ready.url,
    apiUrl: `${ready.url}/api/`,
    adminToken,
    clientToken,
    database,
    pid: child.pid ?? ready.pid,
    startMs: Math.round(performance.now() - startedAt),
    stop,
  };
}

/**
 * The Unleash shared by all test files: the one the globalSetup (test/helpers/unleash-global-setup.ts) provided,
 * else an external one named by SWY_UNLEASH_URL / SWY_UNLEASH_ADMIN_TOKEN / SWY_UNLEASH_CLIENT_TOKEN, else one
 * started lazily for this worker process (it stops and drops its database when the worker exits).
 * Never stop it from a suite; isolate state with unique flag names instead.
 */
export async function getSharedUnleashServer(): Promise<UnleashServerInfo> {
  // Imported lazily so that the globalSetup, which runs outside the test runner, can import this module.
  const { inject } = await import('vitest');
  const provided = inject(UNLEASH_PROVIDE_KEY);
  if (provided !== undefined) return provided;
  const external = externalUnleashFromEnv();
  if (external !== undefined) return external;
  lazySharedServer ??= startUnleashServer().catch((err: unknown) => {
    lazySharedServer = undefined;
    throw err;
  });
  return toInfo(await lazySharedServer);
}

/** Coordinates of an Unleash started outside the test run (e.g. by a CI script), when all three env vars are set. */
export function externalUnleashFromEnv(): UnleashServerInfo | undefined {
  const url = process.env.SWY_UNLEASH_URL;
  const adminToken = process.env.SWY_UNLEASH_ADMIN_TOKEN;
  const clientToken = process.env.SWY_UNLEASH_CLIENT_TOKEN;
  if (!url || !adminToken || !clientToken) return undefined;
  const root = url.replace(/\/+$/, '');
  return { url: root, apiUrl: `${root}/api/`, adminToken, clientToken };
}

/** Only the serializable coordinates (what `provide` can carry). */
export function toInfo(server: UnleashServerInfo): UnleashServerInfo {
  return { url: server.url, apiUrl: server.apiUrl, adminToken: server.adminToken, clientToken: server.clientToken };
}

/** True when a database of that name exists (lets tests check that stop() dropped it). */
export async function databaseExists(name: string): Promise<boolean> {
  const out = await psql(`SELECT 1 FROM pg_database WHERE datname = '${name.replaceAll("'", "''")}'`);
  return out.trim() === '1';
}

/** Starts the local cluster with pg_ctlcluster when pg_isready fails (Debian layout: /etc/postgresql/<version>/main). */
async function ensurePostgres(): Promise<void> {
  if (await pgIsReady()) return;
  const versions = (await readdir('/etc/postgresql').catch(() => [] as string[]))
    .filter((entry) => /^\d+$/.test(entry))
    .sort((a, b) => Number(b) - Number(a));
  const version = versions[0];
  if (version === undefined) throw new Error(`PostgreSQL is not accepting connections on ${PG_HOST}:${PG_PORT} and no cluster exists in /etc/postgresql`);
  let startFailure = '';
  try {
    // pg_ctlcluster waits until the server accepts connections. It fails when another worker started it first,
    // so the verdict is the pg_isready below, not its exit code.
    await execFileAsync('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'start'], { timeout: 60_000 });
  } catch (err) {
    startFailure = describeFailure(err);
  }
  if (!(await pgIsReady())) {
    throw new Error(`PostgreSQL ${version}/main did not come up on ${PG_HOST}:${PG_PORT}${startFailure ? `: ${startFailure}` : ''}`);
  }
}

async function pgIsReady(): Promise<boolean> {
  try {
    await execFileAsync('pg_isready', ['-q', '-h', PG_HOST, '-p', PG_PORT], { timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

async function psql(sql: string): Promise<string> {
  const { stdout } = await execFileAsync(
    'psql',
    ['-h', PG_HOST, '-p', PG_PORT, '-U', PG_USER, '-d', 'postgres', '-v', 'ON_ERROR_STOP=1', '-Atqc', sql],
    { timeout: 30_000 },
  );
  return stdout;
}

async function dropDatabase(name: string): Promise<void> {
  // FORCE ends connections a killed (SIGKILL) server may have left open.
  await psql(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
}

/** Databases of processes that died before stop() (crash, kill -9) would otherwise pile up run after run. */
async function dropDatabasesOfDeadProcesses(): Promise<void> {
  const names = (await psql(`SELECT datname FROM pg_database WHERE datname LIKE '${DATABASE_PREFIX.replaceAll('_', '\\_')}%'`))
    .split('\n')
    .filter((name) => name !== '');
  for (const name of names) {
    const owner = Number(DATABASE_NAME.exec(name)?.[1]);
    if (Number.isInteger(owner) && owner !== process.pid && !processIsAlive(owner)) await dropDatabase(name);
  }
}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return typeof err === 'object' && err !== null && 'code' in err && err.code === 'EPERM';
  }
}

interface ReadyLine {
  url: string;
  pid: number;
}

type UnleashChild = ChildProcessByStdio<Writable, Readable, Readable>;

/** Resolves on the child's `{"ready":true,...}` stdout line; rejects when it exits, fails to spawn or times out. */
function waitForReadyLine(child: UnleashChild, output: OutputTail, timeoutMs: number): Promise<ReadyLine> {
  // Both streams are read for the child's whole life: an unread pipe fills up and blocks the server's logging.
  const stdoutLines = createInterface({ input: child.stdout, crlfDelay: Infinity });
  createInterface({ input: child.stderr, crlfDelay: Infinity }).on('line', (line) => output.push(`[stderr] ${line}`));
  return new Promise<ReadyLine>((resolve, reject) => {
    const timer = setTimeout(() => settle(new Error(`no ready line within ${timeoutMs} ms`)), timeoutMs);
    const onLine = (line: string): void => {
      output.push(`[stdout] ${line}`);
      const ready = parseReadyLine(line);
      if (ready !== undefined) settle(ready);
    };
    // 'close' rather than 'exit': it comes after the stdio pipes are drained, so the tail holds the last stderr lines.
    const onClose = (code: number | null, signal: NodeJS.Signals | null): void => {
      settle(new Error(`start script exited (${signal ?? `code ${code}`}) before its ready line`));
    };
    const onError = (err: Error): void => settle(err);
    const settle = (result: ReadyLine | Error): void => {
      clearTimeout(timer);
      stdoutLines.off('line', onLine);
      child.off('close', onClose);
      child.off('error', onError);
      // Keep draining stdout after ready (into the diagnostics tail only).
      stdoutLines.on('line', (line) => output.push(`[stdout] ${line}`));
      if ('url' in result) resolve(result);
      else reject(result);
    };
    stdoutLines.on('line', onLine);
    child.once('close', onClose);
    child.once('error', onError);
  });
}

function parseReadyLine(line: string): ReadyLine | undefined {
  if (!line.startsWith('{')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { ready, url, pid } = parsed as Record<string, unknown>;
  if (ready !== true || typeof url !== 'string' || typeof pid !== 'number') return undefined;
  return { url, pid };
}

async function terminate(child: UnleashChild, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  // unleash-server's own SIGTERM handler closes the HTTP server and its PG pool, then exits.
  child.kill('SIGTERM');
  const escalate = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  await exited;
  clearTimeout(escalate);
}

/** The last N lines of the child's output, for error messages. */
class OutputTail {
  readonly #lines: string[] = [];
  readonly #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  push(line: string): void {
    this.#lines.push(line);
    if (this.#lines.length > this.#max) this.#lines.shift();
  }

  text(): string {
    return this.#lines.join('\n');
  }
}

function startError(reason: string, output: string, cause: unknown): UnleashStartError {
  const err = new Error(`Unleash did not start: ${reason}\n--- child output (last ${OUTPUT_TAIL_LINES} lines) ---\n${output}`, { cause });
  return Object.assign(err, { code: 'SWY_TEST_UNLEASH_START' as const, output });
}

function describeFailure(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
