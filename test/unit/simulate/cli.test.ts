// `switchyard simulate` and `switchyard backtest` through the built binary: worker threads, JSON and text output, exit codes.
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../helpers/cli.js';

let dir: string;
const policyYaml = `routes:
  - name: iris
    match: { pathPrefix: /v1/models/iris }
    champion: { name: iris-v1, url: http://127.0.0.1:9001 }
    challengers:
      - { name: iris-v2, url: http://127.0.0.1:9002, mode: canary, percent: 20 }
    stickiness: { header: x-user-id }
`;
const latency = { dist: 'lognormal', median: 80, sigma: 0.5 };

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'swy-sim-cli-'));
  await writeFile(path.join(dir, 'policy.yaml'), policyYaml);
  const scenario = { policy: 'policy.yaml', route: 'iris', seed: 5, replicates: 6, durationSeconds: 120, ratePerSecond: 40, users: { count: 1_000, activitySigma: 1 }, arms: { 'iris-v1': { errorRate: 0.01, latencyMs: latency }, 'iris-v2': { errorRate: 0.4, latencyMs: latency } } };
  await writeFile(path.join(dir, 'scenario.json'), JSON.stringify(scenario));
  await writeFile(path.join(dir, 'broken.json'), JSON.stringify({ ...scenario, arms: { 'iris-v1': scenario.arms['iris-v1'] } }));
});

interface SimulationJson {
  replicates: { index: number; seed: number; outcome: string; reason: string | null; atSeconds: number; highestPercent: number; requests: Record<string, number> }[];
  summary: { replicates: number; counts: Record<string, number>; intervals95: Record<string, [number, number] | null>; rollbacksByReason: Record<string, { count: number }> };
  workers: number;
}

describe('switchyard simulate and backtest (built CLI)', () => {
  it('gives the same replicates on two workers as on one, as JSON', async () => {
    const two = await runCli(['simulate', path.join(dir, 'scenario.json'), '--json', '--workers', '2']);
    expect(two.code, two.stderr).toBe(0);
    const one = await runCli(['simulate', path.join(dir, 'scenario.json'), '--json', '--workers', '1']);
    const a = JSON.parse(two.stdout) as SimulationJson;
    const b = JSON.parse(one.stdout) as SimulationJson;
    expect(a.workers).toBe(2);
    expect(a.replicates).toEqual(b.replicates);
    expect(a.replicates.map((r) => r.index)).toEqual([0, 1, 2, 3, 4, 5]);
    for (const r of a.replicates) {
      expect(r.outcome).toBe('rolled_back');
      expect(Object.keys(r.requests)).toEqual(['iris-v1', 'iris-v2']);
    }
    expect(a.summary.counts).toEqual({ promoted: 0, rolled_back: 6, running: 0 });
    expect(Object.values(a.summary.rollbacksByReason).reduce((sum, p) => sum + p.count, 0)).toBe(6);
  });

  it('prints a table by default, and overrides the replicate count', async () => {
    const run = await runCli(['simulate', path.join(dir, 'scenario.json'), '--replicates', '3']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^route iris: 3 replicates of 2\.0 min at 40 req\/s, 1000 sticky users \(activity sigma 1\), seed 5/);
    expect(run.stdout).toMatch(/rolled_back\s+3\s+100\.0%\s+43\.9% \.\. 100\.0%/);
    expect(run.stdout).toMatch(/ROLLBACK REASON\s+REPLICATES/);
  });

  it('exits 1 naming the field of an invalid scenario, and 2 on a bad option', async () => {
    const broken = await runCli(['simulate', path.join(dir, 'broken.json')]);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toContain('arms.iris-v2: missing: describe arm "iris-v2" with errorRate and latencyMs');
    const bad = await runCli(['simulate', path.join(dir, 'scenario.json'), '--workers', 'zero']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--workers must be a whole number of at least 1, got "zero"');
  });

  it('backtests a log: rollback with the evidence in text, and the events as JSON', async () => {
    const logs = path.join(dir, 'pairs');
    await mkdir(logs, { recursive: true });
    const start = Date.parse('2026-03-02T10:00:00.000Z');
    const lines: string[] = [];
    for (let i = 0; i < 600; i++) {
      const challenger = i % 5 === 0;
      const failed = challenger ? i % 2 === 0 : false;
      lines.push(JSON.stringify({ type: 'served', route: 'iris', requestId: `r${i}`, at: new Date(start + i * 50).toISOString(), key: `k${i % 97}`, mode: challenger ? 'canary' : 'champion', role: challenger ? 'challenger' : 'champion', fallbackFor: null, variant: challenger ? 'iris-v2' : 'iris-v1', status: failed ? 503 : 200, error: failed ? 'status_5xx' : null, latencyMs: 40 + (i % 7), prediction: 'setosa', parseError: null }));
    }
    await writeFile(path.join(logs, 'pairs-1.ndjson'), `${lines.join('\n')}\n{"type":"pair","route":"iri`);
    const text = await runCli(['backtest', '--config', path.join(dir, 'policy.yaml'), logs]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^replayed \d+ of 600 records from 1 file, 2026-03-02T10:00:00\.000Z \.\. 2026-03-02T10:00:29\.950Z \(left out: \d+ after the rollback or promotion, 1 unreadable lines\)/);
    expect(text.stdout).toMatch(/route iris \(challenger iris-v2\):\n {2}2026-03-02T10:00:\d\d\.\d{3}Z {2}\(\+\d+\.\d s\) {2}ROLLBACK by error_(ceiling|rate)/);
    expect(text.stdout).toMatch(/GUARDRAIL\s+STATE\s+ESTIMATE/);
    const json = await runCli(['backtest', '--config', path.join(dir, 'policy.yaml'), logs, '--json', '--route', 'iris']);
    const result = JSON.parse(json.stdout) as { routes: { route: string; events: { type: string; reason: string; evidence: unknown[] }[] }[] };
    expect(result.routes[0]!.events[0]).toMatchObject({ type: 'rollback' });
    expect(result.routes[0]!.events[0]!.evidence.length).toBeGreaterThan(0);
    const unknown = await runCli(['backtest', '--config', path.join(dir, 'policy.yaml'), logs, '--route', 'nope']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('--route: the policy has no route "nope" (its routes: iris)');
  });
});
