// The release engineer's CLI against a real `switchyard serve` child: wait's exit codes, status --watch, report and its old name.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { runCli, startServe, type ServeProcess } from '../helpers/cli.js';
import { behave, startUpstream, type Upstream } from '../helpers/upstream.js';

const token = 'cli-token';
let dir: string;
let serve: ServeProcess;
let upstreams: Upstream[];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'swy-cli-wait-'));
  upstreams = [await startUpstream(behave.json('a')), await startUpstream(behave.json('a'))];
  const policyFile = path.join(dir, 'policy.yaml');
  await writeFile(policyFile, stringify({
    routes: [{ name: 'iris', match: { pathPrefix: '/v1/models/iris' }, champion: { name: 'iris-v1', url: upstreams[0]!.url }, challengers: [{ name: 'iris-v2', url: upstreams[1]!.url, mode: 'canary', percent: 20 }] }],
  }));
  serve = await startServe(policyFile, { PATH: process.env.PATH, SWITCHYARD_LOG_LEVEL: 'info', SWITCHYARD_ADMIN_TOKEN: token, SWITCHYARD_DATA_DIR: dir, SWITCHYARD_PAIRS_SINK: 'none', SWITCHYARD_CONTROL_INTERVAL_MS: '100' });
});

afterAll(async () => {
  serve?.child.kill('SIGTERM');
  if (serve && serve.child.exitCode === null) await once(serve.child, 'exit');
  for (const u of upstreams ?? []) await u.close();
  await rm(dir, { recursive: true, force: true });
});

describe('switchyard wait', () => {
  const admin = () => ['--admin-url', serve.adminUrl];

  it('exits 2 on a timeout, saying where the route is', async () => {
    const result = await runCli(['wait', 'iris', '--for', 'promoted', '--timeout', '600ms', '--interval', '100ms', ...admin()]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/iris: timed out after 600ms waiting for promoted; it is (collecting|healthy|promotable)/);
  });

  it('exits 3 on an error: bad arguments, an unknown route, an unreachable admin API', async () => {
    const bad = await runCli(['wait', 'iris', '--for', 'sideways', ...admin()]);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toContain('--for must be promoted, rolled-back, awaiting-approval or step=N, got "sideways"');
    const unknown = await runCli(['wait', 'nope', '--for', 'promoted', '--timeout', '5s', ...admin()]);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toContain('No route named nope');
    const unreachable = await runCli(['wait', 'iris', '--for', 'promoted', '--timeout', '5s', '--admin-url', 'http://127.0.0.1:9']);
    expect(unreachable.code).toBe(3);
  });

  it('exits 0 once the outcome is reached and 1 when another final outcome came first', async () => {
    const rolledBack = runCli(['wait', 'iris', '--for', 'rolled-back', '--timeout', '30s', '--interval', '100ms', '--json', ...admin()]);
    // Whether the waiter's first poll comes before or after the rollback, it must report the outcome reached.
    const rollback = await runCli(['rollback', 'iris', '--token', token, ...admin()]);
    expect(rollback.code, rollback.stderr).toBe(0);
    const reached = await rolledBack;
    expect(reached.code, reached.stderr).toBe(0);
    expect(JSON.parse(reached.stdout)).toMatchObject({ route: 'iris', for: 'rolled-back', result: 'reached', analysis: { phase: 'rolled_back' } });
    const promoted = await runCli(['wait', 'iris', '--for', 'promoted', '--timeout', '30s', ...admin()]);
    expect(promoted.code).toBe(1);
    expect(promoted.stderr).toContain('iris: rolled_back after');
    expect(promoted.stderr).toContain('so promoted cannot be reached (rolled back: manual)');
    const step = await runCli(['wait', 'iris', '--for', 'step=0', '--timeout', '30s', ...admin()]);
    expect(step.code).toBe(1);
    const resumed = await runCli(['resume', 'iris', '--token', token, ...admin()]);
    expect(resumed.code, resumed.stderr).toBe(0);
  });
});

describe('switchyard status --watch', () => {
  /** Starts `status --watch`, resolves after `frames` frames with the output, then stops it with SIGINT and returns its exit code too. */
  async function watch(args: string[], frames: number, isFrame: (stdout: string) => number): Promise<{ code: number | null; stdout: string }> {
    const child = spawn(process.execPath, [path.resolve('dist/src/cli.js'), 'status', '--watch', '--interval', '0.2', '--admin-url', serve.adminUrl, ...args]);
    let stdout = '';
    let enough: () => void = () => undefined;
    const seen = new Promise<void>((resolve) => (enough = resolve));
    child.stdout.on('data', (d: Buffer) => {
      stdout += d;
      if (isFrame(stdout) >= frames) enough();
    });
    const exited = once(child, 'exit');
    await Promise.race([seen, exited.then(() => { throw new Error(`status --watch exited early: ${stdout}`); })]);
    child.kill('SIGINT');
    const [code] = await exited;
    return { code: code as number | null, stdout };
  }

  it('redraws the routes table every interval and exits 0 on Ctrl-C', async () => {
    const count = (s: string) => (s.match(/^switchyard status, http:\/\/127\.0\.0\.1:\d+, \S+ \(every 0\.2 s; Ctrl-C to stop\)$/gm) ?? []).length;
    const { code, stdout } = await watch([], 3, count);
    expect(code).toBe(0);
    expect(count(stdout)).toBeGreaterThanOrEqual(3);
    expect(stdout).toMatch(/^ROUTE\s+SOURCE/m);
    expect(stdout).toMatch(/^iris\s/m);
  });

  it('prints one JSON document per line per redraw with --json', async () => {
    const count = (s: string) => s.split('\n').filter((l) => l.startsWith('{')).length;
    const { code, stdout } = await watch(['iris', '--json'], 2, count);
    expect(code).toBe(0);
    const docs = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { name: string; phase: string });
    expect(docs.length).toBeGreaterThanOrEqual(2);
    expect(docs[0]).toMatchObject({ name: 'iris' });
    expect(typeof docs[0]!.phase).toBe('string');
  });
});

describe('switchyard report (formerly analyze)', () => {
  it('reads the prediction logs; the old name still works and says once that it is deprecated', async () => {
    const logs = await mkdtemp(path.join(tmpdir(), 'swy-report-'));
    try {
      const report = await runCli(['report', logs]);
      expect(report.code, report.stderr).toBe(0);
      expect(report.stdout).toContain('no records found');
      expect(report.stderr).toBe('');
      const old = await runCli(['analyze', logs]);
      expect(old.code).toBe(0);
      expect(old.stdout).toBe(report.stdout);
      expect(old.stderr.trim().split('\n')).toEqual(['switchyard analyze is deprecated: use `switchyard report` (same arguments); `switchyard analysis <route>` is the live guardrail view']);
    } finally {
      await rm(logs, { recursive: true, force: true });
    }
  });
});
