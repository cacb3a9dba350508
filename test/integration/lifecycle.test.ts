// Policy reloads, the admin listener, the CLI, and SIGTERM draining, through real sockets and real processes.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { stringify } from 'yaml';
import type { ReloadResult } from '../../src/app.js';
import { behave, startUpstream, type Upstream } from '../helpers/upstream.js';
import { runCli, startServe } from '../helpers/cli.js';
import { routePolicy, startSwitchyard, type RunningSwitchyard } from '../helpers/switchyard.js';



async function variant(base: string): Promise<string> {
  const res = await request(`${base}/v1/models/iris:predict`, { method: 'POST', body: '{}' });
  await res.body.dump();
  return String(res.headers['x-switchyard-variant']);
}

describe('policy reload', () => {
  let champion: Upstream;
  let challenger: Upstream;
  let swy: RunningSwitchyard;
  beforeAll(async () => {
    champion = await startUpstream(behave.json('v1'));
    challenger = await startUpstream(behave.json('v2'));
    swy = await startSwitchyard(routePolicy(champion.url, [{ url: challenger.url, percent: 0 }]), { watch: true });
  });
  afterAll(async () => {
    await swy.close();
    await champion.close();
    await challenger.close();
  });

  it('applies a valid policy written to the watched file', async () => {
    expect(await variant(swy.dataUrl)).toBe('iris-v1');
    const reloaded = once(swy.app.events, 'reload') as Promise<[ReloadResult]>;
    await swy.writePolicy(routePolicy(champion.url, [{ url: challenger.url, percent: 100 }]));
    const [result] = await reloaded;
    expect(result).toMatchObject({ ok: true, changed: true });
    expect(await variant(swy.dataUrl)).toBe('iris-v2');
  });

  it('rejects a bad policy, counts it, and keeps the last good one live', async () => {
    const before = swy.app.policyVersion;
    await swy.writePolicy({ routes: [{ name: 'iris', match: { pathPrefix: '/v1/models/iris' }, champion: { name: 'x', url: 'not a url' } }] });
    const result = await swy.app.reload('SIGHUP');
    expect(result).toMatchObject({ ok: false, code: 'SWY_ERR_POLICY_INVALID' });
    expect(result.ok === false && result.problems?.[0]?.path).toBe('routes[0].champion.url');
    expect(swy.app.policyVersion).toBe(before);
    expect(await variant(swy.dataUrl)).toBe('iris-v2');
    const metrics = await (await request(`${swy.adminUrl}/metrics`)).body.text();
    expect(metrics).toMatch(/switchyard_policy_reloads_total\{result="invalid"\} [1-9]/);
  });
});

describe('admin listener', () => {
  let champion: Upstream;
  let swy: RunningSwitchyard;
  beforeAll(async () => {
    champion = await startUpstream(behave.json('v1'));
    swy = await startSwitchyard(routePolicy(champion.url, [{ url: champion.url, percent: 25, mode: 'ab' }]), { defaultMetrics: true });
  });
  afterAll(async () => {
    await swy.close();
    await champion.close();
  });

  it('reports liveness and readiness', async () => {
    const health = await request(`${swy.adminUrl}/healthz`);
    expect(health.statusCode).toBe(200);
    expect(await health.body.json()).toEqual({ status: 'ok' });
    const ready = await request(`${swy.adminUrl}/readyz`);
    expect(ready.statusCode).toBe(200);
    expect(await ready.body.json()).toMatchObject({ status: 'ready', policyVersion: swy.app.policyVersion });
  });

  it('exposes the data-path metrics with route, variant, role and status class, plus process metrics', async () => {
    await variant(swy.dataUrl);
    await request(`${swy.dataUrl}/nowhere`).then((r) => r.body.dump());
    const res = await request(`${swy.adminUrl}/metrics`);
    expect(res.headers['content-type']).toContain('text/plain');
    const text = await res.body.text();
    expect(text).toMatch(/switchyard_requests_total\{route="iris",variant="iris-v[12]",role="(champion|challenger)",code_class="2xx"\} 1/);
    expect(text).toMatch(/switchyard_request_duration_seconds_bucket\{le="[^"]+",route="iris",variant="iris-v[12]",role="(champion|challenger)"\}/);
    expect(text).toContain('switchyard_split_percent{route="iris",variant="iris-v1"} 75');
    expect(text).toContain('switchyard_split_percent{route="iris",variant="iris-v2"} 25');
    expect(text).toContain('switchyard_rejected_requests_total{reason="no_route"} 1');
    expect(text).toContain('process_cpu_user_seconds_total');
  });

  it('returns each route\'s live split as JSON', async () => {
    const res = await request(`${swy.adminUrl}/v1/routes`);
    const body = (await res.body.json()) as { routes: { name: string; champion: { servedPercent: number }; challengers: { mode: string; servedPercent: number }[] }[] };
    expect(body.routes).toHaveLength(1);
    expect(body.routes[0]).toMatchObject({ name: 'iris', champion: { servedPercent: 75 }, challengers: [{ mode: 'ab', servedPercent: 25 }], source: 'policy' });
    const one = await request(`${swy.adminUrl}/v1/routes/nope`);
    expect(one.statusCode).toBe(404);
    expect(await one.body.json()).toMatchObject({ error: { code: 'SWY_ERR_ROUTE_UNKNOWN' } });
  });
});

describe('CLI', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'swy-cli-'));
  });

  it('validate: exits 0 for a good policy and 1 listing every problem with file, line, field and what is allowed', async () => {
    const ok = await runCli(['validate', 'policies/demo.yaml']);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('ok (1 route: iris');
    const bad = path.join(dir, 'bad.yaml');
    await writeFile(bad, 'routes:\n  - name: Iris\n    match: { pathPrefix: /v1, methodz: [POST] }\n    champion: { name: a, url: http://x }\n    challengers:\n      - { name: b, url: http://y, mode: canery, percent: 120 }\n');
    const res = await runCli(['validate', bad]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`${bad}:2: routes[0].name: must be 1-63 characters`);
    expect(res.stderr).toContain(`${bad}:3: routes[0].match: Unrecognized key: "methodz" (allowed: known fields: pathPrefix, methods)`);
    expect(res.stderr).toContain('routes[0].challengers[0].mode: Invalid option');
    expect(res.stderr).toContain('routes[0].challengers[0].percent: Too big');
    expect(res.stderr).toContain('4 problems');
  });

  it('validate: reports YAML syntax errors and duplicate route names across files of a directory', async () => {
    const policies = path.join(dir, 'dir');
    await mkdtemp(policies).catch(() => undefined);
    const { mkdir } = await import('node:fs/promises');
    await mkdir(policies, { recursive: true });
    const route = { name: 'same', match: { pathPrefix: '/a' }, champion: { name: 'a', url: 'http://127.0.0.1:1' } };
    await writeFile(path.join(policies, 'a.yaml'), stringify({ routes: [route] }));
    await writeFile(path.join(policies, 'b.yaml'), stringify({ routes: [{ ...route, match: { pathPrefix: '/b' } }] }));
    await writeFile(path.join(dir, 'syntax.yaml'), 'routes: [\n');
    const res = await runCli(['validate', policies, path.join(dir, 'syntax.yaml')]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('route name "same" is already used');
    expect(res.stderr).toContain('syntax.yaml:');
  });

  it('serve: refuses to start on an invalid policy, listing the problems, exit 1', async () => {
    const bad = path.join(dir, 'serve-bad.yaml');
    await writeFile(bad, 'routes: []\n');
    const res = await runCli(['serve', '--config', bad, '--port', '0', '--admin-port', '0']);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('routes: a policy needs at least one route');
  });

  it('serve: rejects a bad port variable naming it', async () => {
    const res = await runCli(['serve', '--config', 'policies/demo.yaml'], { SWITCHYARD_PORT: 'eighty' });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('SWITCHYARD_PORT: must be a whole number from 0 to 65535');
  });

  it('rejects an unknown command or flag', async () => {
    expect((await runCli(['deploy'])).code).toBe(2);
    const flag = await runCli(['serve', '--confg', 'x']);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain('--confg');
  });
});

describe('SIGTERM drain', () => {
  let slow: Upstream;
  let child: ChildProcess;
  afterAll(async () => {
    child?.kill('SIGKILL');
    await slow?.close();
  });

  it('finishes the in-flight request, refuses new connections, and exits 0', async () => {
    slow = await startUpstream(behave.delay(400, 'slow'));
    const dir = await mkdtemp(path.join(tmpdir(), 'swy-drain-'));
    const policy = path.join(dir, 'p.yaml');
    await writeFile(policy, stringify(routePolicy(slow.url)));
    const served = await startServe(policy, { ...process.env, SWITCHYARD_LOG_LEVEL: 'info' });
    child = served.child;
    const { dataUrl } = served;
    const inFlight = request(`${dataUrl}/v1/models/iris:predict`, { method: 'POST', body: '{}' });
    await slow.waitForRequests(1);
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const res = await inFlight;
    expect(res.statusCode).toBe(200);
    expect(await res.body.json()).toMatchObject({ prediction: 'slow' });
    const [code] = await exited;
    expect(code).toBe(0);
    await expect(request(`${dataUrl}/v1/models/iris:predict`, { method: 'POST', body: '{}' })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});
