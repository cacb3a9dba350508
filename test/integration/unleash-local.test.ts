// `npm run unleash` (scripts/unleash-local.mjs): a real local Unleash with the demo's flag and the tokens printed, which the demo's flag policy follows as docs/flags.md says.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { afterAll, expect, it } from 'vitest';
import { parse } from 'yaml';
import { request } from 'undici';
import { readEnv } from '../../src/config/env.js';
import { unleashSettingsFromEnv } from '../../src/flags/factory.js';
import { startSwitchyard, type RunningSwitchyard } from '../helpers/switchyard.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';

const database = `swy_unleash_local_${process.pid}`;
let child: ChildProcess | undefined;
let sy: RunningSwitchyard | undefined;
let upstream: Upstream | undefined;

afterAll(async () => {
  await sy?.close();
  await upstream?.close();
  if (child && child.exitCode === null) {
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await exited;
  }
  execFileSync('psql', ['postgres://postgres@127.0.0.1:5432/postgres', '-qc', `DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`]);
}, 30_000);

it('starts Unleash on PostgreSQL, creates iris-rollout, prints tokens and a command whose settings make the demo route follow the flag', async () => {
  child = spawn(process.execPath, ['scripts/unleash-local.mjs'], { env: { ...process.env, UNLEASH_EXIT_ON_STDIN_END: '1', UNLEASH_PORT: '0', UNLEASH_DB_URL: `postgres://postgres@127.0.0.1:5432/${database}` } });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d));
  let errors = '';
  child.stderr!.on('data', (d: Buffer) => (errors += d));
  await new Promise<void>((resolve, reject) => {
    child!.stdout!.on('data', () => output.includes('Press Ctrl-C') && resolve());
    child!.once('exit', (code) => reject(new Error(`npm run unleash exited with ${code}: ${output}${errors}`)));
  });
  expect(output).toContain('Flag          iris-rollout (created)');
  const command = /UNLEASH_URL=(\S+) UNLEASH_API_TOKEN='([^']+)' UNLEASH_ADMIN_TOKEN='([^']+)' \\\n\s+npm start -- --config (\S+)/.exec(output)!;
  expect(command).not.toBeNull();
  const [, url, apiToken, adminToken, policyPath] = command;
  expect(/Admin token +(\S+)/.exec(output)![1]).toBe(adminToken);
  expect(/Client token +(\S+)/.exec(output)![1]).toBe(apiToken);

  // The printed settings and policy, with the model URLs pointed at a test upstream: the route follows the flag at 20 %.
  upstream = await startUpstream();
  const policy = parse(await readFile(policyPath!, 'utf8')) as { routes: { champion: { url: string }; challengers: { url: string }[] }[] };
  policy.routes[0]!.champion.url = upstream.url;
  policy.routes[0]!.challengers[0]!.url = upstream.url;
  const flags = unleashSettingsFromEnv(readEnv({ UNLEASH_URL: url, UNLEASH_API_TOKEN: apiToken, UNLEASH_ADMIN_TOKEN: adminToken, UNLEASH_REFRESH_MS: '200' }));
  sy = await startSwitchyard(policy, { flags });
  const route = async () => (await (await request(`${sy!.adminUrl}/v1/routes/iris`)).body.json()) as { source: string; flags: string; challengers: { mode: string; percent: number }[] };
  await expect.poll(route, { timeout: 15_000 }).toMatchObject({ source: 'flag', flags: 'live', challengers: [{ mode: 'canary', percent: 20 }] });

  // The kill switch of docs/flags.md: the champion serves everyone.
  const base = url!.replace(/\/api$/, '');
  const off = await request(`${base}/api/admin/projects/default/features/iris-rollout/environments/development/off`, { method: 'POST', headers: { authorization: adminToken! } });
  expect(off.statusCode).toBeLessThan(300);
  await off.body.dump();
  await expect.poll(async () => (await route()).challengers[0]!.percent, { timeout: 15_000 }).toBe(0);

  // A second start keeps the flag it finds.
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await exited;
  child = spawn(process.execPath, ['scripts/unleash-local.mjs'], { env: { ...process.env, UNLEASH_EXIT_ON_STDIN_END: '1', UNLEASH_PORT: '0', UNLEASH_DB_URL: `postgres://postgres@127.0.0.1:5432/${database}` } });
  output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d));
  await new Promise<void>((resolve, reject) => {
    child!.stdout!.on('data', () => output.includes('Press Ctrl-C') && resolve());
    child!.once('exit', (code) => reject(new Error(`second start exited with ${code}: ${output}`)));
  });
  expect(output).toContain('Flag          iris-rollout (kept)');
}, 180_000);
