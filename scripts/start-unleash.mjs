// Starts a real Unleash OSS server (unleash-server 7.5.1) from env and prints one JSON ready line on stdout.
//
// Env: UNLEASH_DB_URL (postgres://user:pass@host:port/db), UNLEASH_PORT (default 4242; 0 = let the OS pick),
// UNLEASH_HOST (127.0.0.1), UNLEASH_ADMIN_TOKEN, UNLEASH_CLIENT_TOKEN, UNLEASH_DB_SCHEMA (public),
// UNLEASH_LOG_LEVEL (warn),
// UNLEASH_EXIT_ON_STDIN_END=1: stop when stdin reaches EOF, i.e. when the parent that holds the pipe dies, so a killed
//   test runner never leaves an orphan server behind; with UNLEASH_DROP_DB_ON_STDIN_END=1 the database named in
//   UNLEASH_DB_URL is dropped too (through `psql` on the same host's `postgres` database).
// Ready line: {"ready":true,"url":...,"port":...,"version":...,"pid":...,"importMs":...,"startMs":...,"totalMs":...}
// A failed start prints the error on stderr and exits with code 1. SIGTERM/SIGINT stop it gracefully
// (unleash-server registers those handlers itself).
import { execFileSync } from 'node:child_process';

const t0 = performance.now();
// Must be set before unleash-server reads its config: options.telemetry=false alone does NOT disable telemetry
// (create-config does `options.telemetry || parseEnvVarBoolean(SEND_TELEMETRY, true)`).
process.env.SEND_TELEMETRY ??= 'false';
process.env.CHECK_VERSION ??= 'false';

const host = process.env.UNLEASH_HOST ?? '127.0.0.1';
const requestedPort = Number(process.env.UNLEASH_PORT ?? 4242);
const adminToken = process.env.UNLEASH_ADMIN_TOKEN ?? '*:*.unleash-test-admin-token';
const clientToken = process.env.UNLEASH_CLIENT_TOKEN ?? 'default:development.unleash-test-client-token';
const dbUrl = new URL(process.env.UNLEASH_DB_URL ?? 'postgres://unleash:unleash@127.0.0.1:5432/unleash');

if (!Number.isInteger(requestedPort) || requestedPort < 0 || requestedPort > 65535) {
  process.stderr.write(`start-unleash: UNLEASH_PORT must be an integer 0..65535, got ${process.env.UNLEASH_PORT}\n`);
  process.exit(1);
}

/** Set once start() resolved; the stdin-EOF path stops it before dropping the database. */
let unleash;
if (process.env.UNLEASH_EXIT_ON_STDIN_END === '1') {
  let stopping = false;
  const stopBecauseParentIsGone = async () => {
    if (stopping) return;
    stopping = true;
    try {
      await unleash?.stop();
    } catch (err) {
      process.stderr.write(`start-unleash: stop after stdin EOF failed: ${err instanceof Error ? err.message : String(err)}\n`);
    }
    if (process.env.UNLEASH_DROP_DB_ON_STDIN_END === '1') dropOwnDatabase();
    process.exit(0);
  };
  process.stdin.once('end', stopBecauseParentIsGone);
  process.stdin.once('error', stopBecauseParentIsGone);
  process.stdin.resume();
}

/** WITH (FORCE) also ends connections a still-running migration holds (only when stopping mid-start). */
function dropOwnDatabase() {
  const maintenanceUrl = new URL(dbUrl);
  maintenanceUrl.pathname = '/postgres';
  const name = decodeURIComponent(dbUrl.pathname.slice(1)).replaceAll('"', '""');
  try {
    execFileSync('psql', [maintenanceUrl.href, '-v', 'ON_ERROR_STOP=1', '-qc', `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`], {
      stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000,
    });
  } catch (err) {
    process.stderr.write(`start-unleash: dropping database ${name} failed: ${err instanceof Error ? err.message : String(err)}\n`);
  }
}

try {
  const { start } = await import('unleash-server');
  const tImported = performance.now();
  unleash = await start({
    db: {
      host: dbUrl.hostname,
      port: Number(dbUrl.port || 5432),
      user: decodeURIComponent(dbUrl.username),
      password: decodeURIComponent(dbUrl.password),
      database: dbUrl.pathname.slice(1),
      ssl: false,
      schema: process.env.UNLEASH_DB_SCHEMA ?? 'public', // a non-public schema must exist already (CREATE SCHEMA)
      pool: { min: 0, max: 4 },
    },
    server: {
      host,
      port: requestedPort,
      // Only used to build links (UI, e-mails, addons); corrected below once the real port is known.
      unleashUrl: `http://${host}:${requestedPort}`,
      gracefulShutdownTimeout: 1000,
    },
    authentication: {
      type: 'open-source', // real token auth; 'none' is deprecated
      enableApiToken: true,
      createAdminUser: true,
      initialAdminUser: { username: 'admin', password: 'unleash4all' },
      // Inserted ONLY when the api_tokens table is empty, i.e. on a fresh database.
      initApiTokens: [
        { type: 'admin', secret: adminToken, projects: ['*'], environment: '*', tokenName: 'ci-admin' },
        { type: 'backend', secret: clientToken, projects: ['default'], environment: 'development', tokenName: 'ci-client' },
      ],
    },
    versionCheck: { enable: false },
    logLevel: process.env.UNLEASH_LOG_LEVEL ?? 'warn',
    // Do NOT set disableScheduler: its 1 s 'updateMaxRevisionId' job is what makes changes reach /api/client/features.
  });
  const tReady = performance.now();
  const address = unleash.server?.address();
  const port = address && typeof address === 'object' ? address.port : requestedPort;
  const url = `http://${host}:${port}`;
  unleash.config.server.unleashUrl = url;
  console.log(JSON.stringify({
    ready: true, url, port, version: unleash.version, pid: process.pid,
    importMs: Math.round(tImported - t0), startMs: Math.round(tReady - tImported), totalMs: Math.round(tReady - t0),
    rssMB: Math.round(process.memoryUsage().rss / 2 ** 20),
  }));
} catch (err) {
  process.stderr.write(`start-unleash: failed to start: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
}
