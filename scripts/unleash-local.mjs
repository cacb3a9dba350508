// `npm run unleash`: a local Unleash (unleash-server 7.5.1) on this machine's PostgreSQL, with the demo's flag and the tokens printed.
//
// Env (all optional): UNLEASH_DB_URL (postgres://postgres@127.0.0.1:5432/switchyard_unleash; the database is created
// when missing), UNLEASH_PORT (4242), UNLEASH_ADMIN_TOKEN, UNLEASH_CLIENT_TOKEN (fixed local defaults below, so the
// commands in docs/flags.md work as written), UNLEASH_EXIT_ON_STDIN_END=1 (stop when stdin ends: tests). Runs
// scripts/start-unleash.mjs, which shares this process's stdin, and stops it on Ctrl-C.
import { execFileSync, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const env = {
  ...process.env,
  UNLEASH_DB_URL: process.env.UNLEASH_DB_URL ?? 'postgres://postgres@127.0.0.1:5432/switchyard_unleash',
  UNLEASH_ADMIN_TOKEN: process.env.UNLEASH_ADMIN_TOKEN ?? '*:*.switchyard-local-admin-token',
  UNLEASH_CLIENT_TOKEN: process.env.UNLEASH_CLIENT_TOKEN ?? 'default:development.switchyard-local-client-token',
  UNLEASH_PORT: process.env.UNLEASH_PORT ?? '4242',
};
const FLAG = 'iris-rollout';

function fail(message) {
  process.stderr.write(`npm run unleash: ${message}\n`);
  process.exit(1);
}

/** Creates the database named in UNLEASH_DB_URL when it does not exist (psql on the same server's `postgres` database). */
function ensureDatabase() {
  const url = new URL(env.UNLEASH_DB_URL);
  const name = decodeURIComponent(url.pathname.slice(1));
  if (!/^[A-Za-z0-9_]+$/.test(name)) fail(`the database name in UNLEASH_DB_URL must be letters, digits and _, got "${name}"`);
  const maintenance = new URL(url);
  maintenance.pathname = '/postgres';
  const psql = (sql) => execFileSync('psql', [maintenance.href, '-v', 'ON_ERROR_STOP=1', '-tAc', sql], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
  try {
    if (psql(`SELECT 1 FROM pg_database WHERE datname = '${name}'`).trim() !== '1') psql(`CREATE DATABASE "${name}"`);
  } catch (err) {
    const detail = err.code === 'ENOENT' ? 'psql is not installed' : String(err.stderr ?? err.message).trim();
    fail(`cannot reach PostgreSQL at ${url.host} to create database ${name} (${detail}); start PostgreSQL or set UNLEASH_DB_URL`);
  }
  return { name, host: url.host };
}

/** The demo's flag, once: 20 % of users on iris-v2 as a canary (policies/demo-unleash.yaml follows it). */
async function ensureFlag(base) {
  const headers = { authorization: env.UNLEASH_ADMIN_TOKEN, 'content-type': 'application/json' };
  const features = `${base}/api/admin/projects/default/features`;
  const existing = await fetch(`${features}/${FLAG}`, { headers });
  if (existing.status === 200) return 'kept';
  const steps = [
    [features, { name: FLAG, type: 'release', description: 'Switchyard demo: share of users served by iris-v2' }],
    [`${features}/${FLAG}/environments/development/strategies`, {
      name: 'flexibleRollout',
      parameters: { rollout: '20', stickiness: 'default', groupId: FLAG },
      constraints: [],
      variants: [{ name: 'iris-v2', weight: 1000, weightType: 'variable', stickiness: 'default', payload: { type: 'json', value: '{"challenger":"iris-v2","mode":"canary"}' } }],
    }],
    [`${features}/${FLAG}/environments/development/on`, undefined],
  ];
  for (const [url, body] of steps) {
    const res = await fetch(url, { method: 'POST', headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (!res.ok) throw new Error(`POST ${url} answered ${res.status}: ${await res.text()}`);
  }
  return 'created';
}

const db = ensureDatabase();
const child = spawn(process.execPath, [path.join(here, 'start-unleash.mjs')], { env, stdio: ['inherit', 'pipe', 'inherit'] });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code) => process.exit(code ?? 0));
createInterface({ input: child.stdout }).on('line', async (line) => {
  let ready;
  try {
    ready = JSON.parse(line);
  } catch {
    process.stdout.write(`${line}\n`);
    return;
  }
  if (!ready.ready) return;
  let flag;
  try {
    flag = await ensureFlag(ready.url);
  } catch (err) {
    process.stderr.write(`npm run unleash: could not create flag ${FLAG}: ${err.message}\n`);
    flag = 'not created';
  }
  const q = (s) => `'${s}'`;
  process.stdout.write(`Unleash ${ready.version} is running at ${ready.url} (database ${db.name} on ${db.host}).

  UI            ${ready.url}   (user admin, password unleash4all)
  Admin token   ${env.UNLEASH_ADMIN_TOKEN}
  Client token  ${env.UNLEASH_CLIENT_TOKEN}
  Flag          ${FLAG} (${flag}): enabled in development, 20 % of users on iris-v2 as a canary

Run the demo on this flag, in another terminal:
  UNLEASH_URL=${ready.url}/api UNLEASH_API_TOKEN=${q(env.UNLEASH_CLIENT_TOKEN)} UNLEASH_ADMIN_TOKEN=${q(env.UNLEASH_ADMIN_TOKEN)} \\
    npm start -- --config policies/demo-unleash.yaml
Then 'npx switchyard set iris iris-v2 50 --mode canary' (with the token the demo prints) writes 50 % to the flag,
and a change in the Unleash UI reaches the router within a second or two (docs/flags.md).

Press Ctrl-C to stop Unleash (the database is kept).
`);
});
