// Starts the origin and every bench target (Switchyard twice, the fastify peer, nginx, HAProxy) as separate processes.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { predictionBody, predictPath } from './payload.js';
import { freePort, waitForHttp, type Managed, type ProcessGroup } from './processes.js';

/** Identifiers of the bench targets, in their default order. */
export const targetIds = ['direct', 'switchyard-p0', 'switchyard-canary', 'fastify-proxy', 'bare-dispatch', 'nginx', 'haproxy'] as const;
export type TargetId = (typeof targetIds)[number];

/** One thing the load generators can hit. */
export interface Target {
  id: TargetId;
  label: string;
  /** Full URL of the predict call through this target. */
  url: string;
  /** Root pid of the proxy whose CPU is measured; null for direct. */
  pid: number | null;
  /** Switchyard's admin URL (readyz, metrics), when the target is Switchyard. */
  adminUrl: string | null;
}

/** Everything running for one bench run. */
export interface Fleet {
  origin: { kind: 'nginx' | 'stub'; pid: number; champion: string; challenger: string; version: string };
  targets: Target[];
  skipped: { id: TargetId; reason: string }[];
  versions: Record<string, string>;
}

/** Options for {@link startFleet}. */
export interface FleetOptions {
  repoRoot: string;
  /** Scratch directory for rendered configs, pid files and logs. */
  dir: string;
  /** `nginx` (static, the default when installed) or `stub` (node:http fixed-latency model). */
  origin: 'nginx' | 'stub';
  /** The stub's default delay; the latency generator may override it per request. */
  stubDelayMs: number;
  /** V8 flags for both Node proxies (Switchyard's documented start command uses --max-semi-space-size=64). */
  nodeFlags: string[];
}

const installHint = 'apt-get install -y nginx-light haproxy';

/** Finds an executable on PATH or in the sbin directories Debian installs nginx and haproxy to. */
export function findBinary(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/local/sbin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    const candidate = path.join(dir, name);
    if (existsSync(candidate)) return candidate;
  }
  return null;
}

/** First line a binary prints for its version flag (nginx writes it to stderr, haproxy to stdout). */
function versionOf(binary: string, args: string[]): string {
  const out = spawnSync(binary, args, { encoding: 'utf8' });
  return `${out.stdout ?? ''}${out.stderr ?? ''}`.trim().split('\n')[0] ?? '';
}

/** Fills `{{name}}` placeholders; every placeholder must have a value. */
export function renderTemplate(template: string, values: Record<string, string | number>): string {
  return template.replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    const value = values[key];
    if (value === undefined) throw new Error(`template placeholder {{${key}}} has no value`);
    return String(value);
  });
}

/** A policy with one route, the champion and one canary challenger at `percent`. */
export function benchPolicy(champion: string, challenger: string, percent: number): string {
  return [
    'routes:',
    '  - name: bench',
    '    match: { pathPrefix: /v1/models/m, methods: [POST, GET] }',
    `    champion: { name: m-v1, url: ${champion} }`,
    '    challengers:',
    `      - { name: m-v2, url: ${challenger}, mode: canary, percent: ${percent} }`,
    '    stickiness: { header: x-user-id }',
    '',
  ].join('\n');
}

/** The environment for a child Node proxy: ours, minus any Switchyard or Unleash settings of the caller's shell. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('SWITCHYARD_') && !key.startsWith('UNLEASH_') && key !== 'NODE_OPTIONS') env[key] = value;
  return { ...env, ...extra };
}

/** Starts the static nginx origin (or the node:http stub when nginx is absent or `options.origin` is `stub`). */
export async function startOrigin(group: ProcessGroup, options: Pick<FleetOptions, 'repoRoot' | 'dir' | 'origin' | 'stubDelayMs'>, nginx: string | null = findBinary('nginx')): Promise<Fleet['origin'] & { member: Managed }> {
  const championPort = await freePort();
  const challengerPort = await freePort();
  const champion = `http://127.0.0.1:${championPort}`;
  const challenger = `http://127.0.0.1:${challengerPort}`;
  let member: Managed;
  let version: string;
  if (options.origin === 'nginx' && nginx !== null) {
    const conf = path.join(options.dir, 'nginx-origin.conf');
    const template = readFileSync(path.join(options.repoRoot, 'bench/origin/nginx-origin.conf'), 'utf8');
    writeFileSync(conf, renderTemplate(template, { dir: options.dir, champion_port: championPort, challenger_port: challengerPort, champion_body: predictionBody('m-v1'), challenger_body: predictionBody('m-v2') }));
    member = group.start('nginx origin', nginx, ['-p', options.dir, '-e', path.join(options.dir, 'nginx-origin.error.log'), '-c', conf]);
    version = `${versionOf(nginx, ['-v'])} (return 200, 1 worker)`;
  } else {
    const stub = path.join(options.repoRoot, 'dist/bench/upstream-stub.js');
    member = group.start('stub origin', process.execPath, [stub, '--port', String(championPort), '--port', String(challengerPort), '--delay-ms', String(options.stubDelayMs)]);
    version = `node:http stub ${process.version}, ${options.stubDelayMs} ms default delay`;
  }
  await waitForHttp(champion + predictPath, { status: 200, member });
  await waitForHttp(challenger + predictPath, { status: 200, member });
  group.noteTree(member);
  return { kind: options.origin === 'nginx' && nginx !== null ? 'nginx' : 'stub', pid: member.pid, champion, challenger, version, member };
}

/**
 * Starts `switchyard serve` (the built CLI) as a child process on free ports and waits for /readyz. `env` adds
 * SWITCHYARD_* settings (e.g. SWITCHYARD_MEMORY_MB) to the clean environment; its data dir is `<dir>/<name>-data`.
 */
export async function startSwitchyardProcess(group: ProcessGroup, options: Pick<FleetOptions, 'repoRoot' | 'dir' | 'nodeFlags'>, name: string, policy: string, env: Record<string, string> = {}): Promise<{ member: Managed; url: string; adminUrl: string; dataDir: string }> {
  const port = await freePort();
  const adminPort = await freePort();
  const policyFile = path.join(options.dir, `${name}.yaml`);
  writeFileSync(policyFile, policy);
  const dataDir = path.join(options.dir, `${name}-data`);
  mkdirSync(dataDir, { recursive: true });
  const childEnv = cleanEnv({
    SWITCHYARD_PORT: String(port),
    SWITCHYARD_ADMIN_PORT: String(adminPort),
    SWITCHYARD_HOST: '127.0.0.1',
    SWITCHYARD_LOG_LEVEL: 'warn',
    SWITCHYARD_DATA_DIR: dataDir,
    ...env,
  });
  const cli = path.join(options.repoRoot, 'dist/src/cli.js');
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
  const member = group.start(name, process.execPath, [...options.nodeFlags, cli, 'serve', '--config', policyFile], childEnv);
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  await waitForHttp(`${adminUrl}/readyz`, { status: 200, member });
  return { member, url: `http://127.0.0.1:${port}`, adminUrl, dataDir };
}

/**
 * Starts the origin and all targets. Peers whose binary is missing are skipped with a reason (the caller prints it).
 * Every target is checked with one real predict call before it is returned.
 */
export async function startFleet(group: ProcessGroup, options: FleetOptions): Promise<Fleet> {
  const nginx = findBinary('nginx');
  const haproxy = findBinary('haproxy');
  const skipped: Fleet['skipped'] = [];
  if (options.origin === 'nginx' && nginx === null) skipped.push({ id: 'direct', reason: `nginx not installed: using the node:http stub as origin, so capacity ratios are not comparable (they would depend on the origin's own cost). Install: ${installHint}` });
  const origin = await startOrigin(group, options, nginx);
  const versions: Record<string, string> = { node: process.version, origin: origin.version };
  const targets: Target[] = [{ id: 'direct', label: 'direct (origin)', url: origin.champion + predictPath, pid: null, adminUrl: null }];

  const p0 = await startSwitchyardProcess(group, options, 'switchyard-p0', benchPolicy(origin.champion, origin.challenger, 0));
  targets.push({ id: 'switchyard-p0', label: 'Switchyard, percent 0', url: p0.url + predictPath, pid: p0.member.pid, adminUrl: p0.adminUrl });
  const canary = await startSwitchyardProcess(group, options, 'switchyard-canary', benchPolicy(origin.champion, origin.challenger, 10));
  targets.push({ id: 'switchyard-canary', label: 'Switchyard, canary 10%', url: canary.url + predictPath, pid: canary.member.pid, adminUrl: canary.adminUrl });

  const fastifyPort = await freePort();
  const fastify = group.start('fastify peer', process.execPath, [...options.nodeFlags, path.join(options.repoRoot, 'dist/bench/peers/fastify-http-proxy.js'), '--port', String(fastifyPort), '--upstream', origin.champion], cleanEnv({}));
  targets.push({ id: 'fastify-proxy', label: '@fastify/http-proxy peer', url: `http://127.0.0.1:${fastifyPort}${predictPath}`, pid: fastify.pid, adminUrl: null });
  versions.fastifyProxy = packageVersion(options.repoRoot, '@fastify/http-proxy');

  // The floor of the chosen stack: what node:http + undici cost with no proxy logic at all.
  const barePort = await freePort();
  const bare = group.start('bare dispatch floor', process.execPath, [...options.nodeFlags, path.join(options.repoRoot, 'dist/bench/peers/bare-dispatch.js'), '--port', String(barePort), '--upstream', origin.champion], cleanEnv({}));
  targets.push({ id: 'bare-dispatch', label: 'node:http + undici floor', url: `http://127.0.0.1:${barePort}${predictPath}`, pid: bare.pid, adminUrl: null });

  if (nginx === null) skipped.push({ id: 'nginx', reason: `nginx not installed; skipped. Install: ${installHint}` });
  else {
    const port = await freePort();
    const conf = path.join(options.dir, 'nginx-proxy.conf');
    writeFileSync(conf, renderTemplate(readFileSync(path.join(options.repoRoot, 'bench/peers/nginx-proxy.conf'), 'utf8'), { dir: options.dir, port, champion_port: new URL(origin.champion).port }));
    const member = group.start('nginx proxy', nginx, ['-p', options.dir, '-e', path.join(options.dir, 'nginx-proxy.error.log'), '-c', conf]);
    targets.push({ id: 'nginx', label: 'nginx (1 worker)', url: `http://127.0.0.1:${port}${predictPath}`, pid: member.pid, adminUrl: null });
    versions.nginx = versionOf(nginx, ['-v']);
  }

  if (haproxy === null) skipped.push({ id: 'haproxy', reason: `haproxy not installed; skipped. Install: ${installHint}` });
  else {
    const port = await freePort();
    const conf = path.join(options.dir, 'haproxy.cfg');
    writeFileSync(conf, renderTemplate(readFileSync(path.join(options.repoRoot, 'bench/peers/haproxy.cfg'), 'utf8'), { port, champion_port: new URL(origin.champion).port }));
    const member = group.start('haproxy', haproxy, ['-db', '-f', conf]);
    targets.push({ id: 'haproxy', label: 'HAProxy (1 thread)', url: `http://127.0.0.1:${port}${predictPath}`, pid: member.pid, adminUrl: null });
    versions.haproxy = versionOf(haproxy, ['-v']);
  }

  for (const target of targets) {
    const member = group.members.find((m) => m.pid === target.pid);
    await waitForHttp(target.url, { status: 200, member });
    if (member !== undefined) group.noteTree(member);
  }
  return { origin: { kind: origin.kind, pid: origin.pid, champion: origin.champion, challenger: origin.challenger, version: origin.version }, targets, skipped, versions };
}

function packageVersion(repoRoot: string, name: string): string {
  try {
    return (JSON.parse(readFileSync(path.join(repoRoot, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
