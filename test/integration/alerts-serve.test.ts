// A real `switchyard serve` rolls back a failing challenger: its /metrics, scraped before and after, feed promtool, the chart's alerts react as they should, and the breach and rollback are notified.
import { createHmac } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { stringify } from 'yaml';
import { rollbackReasons, policyReloadResults } from '../../src/control/metric-series.js';
import { startServe, type ServeProcess } from '../helpers/cli.js';
import { metricsText } from '../helpers/metrics.js';
import { chartRuleGroups, testRules } from '../helpers/promtool.js';
import { behave, startUpstream, type Upstream } from '../helpers/upstream.js';

/** Series of the exposition text whose name is in `names`, keyed by name and sorted labels (as printed). */
function scrape(text: string, names: readonly string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (match && names.includes(match[1]!)) out.set(`${match[1]}${match[2] ?? '{}'}`, Number(match[3]));
  }
  return out;
}

const watched = ['switchyard_rollbacks_total', 'switchyard_route_rolled_back', 'switchyard_guardrail_state', 'switchyard_policy_reloads_total'];

/** promtool input series: the first scrape at 0m, the second from 1m on, with the labels a Kubernetes scrape adds. */
function inputSeries(before: Map<string, number>, after: Map<string, number>): { series: string; values: string }[] {
  return [...new Set([...before.keys(), ...after.keys()])].map((key) => {
    const brace = key.indexOf('{');
    const labels = key.slice(brace + 1, -1);
    const series = `${key.slice(0, brace)}{namespace="switchyard-ci",pod="sy-real"${labels === '' ? '' : `,${labels}`}}`;
    const first = before.get(key);
    return { series, values: `${first === undefined ? '_' : first} ${after.get(key) ?? '_'}x15` };
  });
}

describe('alerts after a real rollback', () => {
  let dir: string;
  let champion: Upstream;
  let challenger: Upstream;
  let served: ServeProcess;
  let policyFile: string;
  let hook: Server;
  const posts: { headers: IncomingHttpHeaders; body: string }[] = [];
  const secret = 'alerts-serve-secret-0123456789';

  beforeAll(async () => {
    // The serve process notifies through SWITCHYARD_WEBHOOK_URLS, signed with SWITCHYARD_WEBHOOK_SECRET.
    hook = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c));
      req.on('end', () => {
        posts.push({ headers: req.headers, body });
        res.writeHead(204).end();
      });
    });
    hook.listen(0, '127.0.0.1');
    await once(hook, 'listening');
    dir = await mkdtemp(path.join(tmpdir(), 'swy-alerts-'));
    champion = await startUpstream(behave.json('setosa'));
    challenger = await startUpstream(behave.status(500));
    policyFile = path.join(dir, 'policy.yaml');
    await writeFile(policyFile, stringify({
      routes: [{
        name: 'iris',
        match: { pathPrefix: '/v1/models/iris', methods: ['POST'] },
        champion: { name: 'iris-v1', url: champion.url },
        challengers: [{ name: 'iris-v2', url: challenger.url, mode: 'canary', percent: 50 }],
        stickiness: { header: 'x-user-id' },
      }],
    }));
    served = await startServe(policyFile, { PATH: process.env.PATH, SWITCHYARD_LOG_LEVEL: 'info', SWITCHYARD_DATA_DIR: path.join(dir, 'data'), SWITCHYARD_CONTROL_INTERVAL_MS: '50', SWITCHYARD_WEBHOOK_URLS: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`, SWITCHYARD_WEBHOOK_SECRET: secret });
  });

  afterAll(async () => {
    served?.child.kill('SIGKILL');
    hook?.closeAllConnections();
    hook?.close();
    await champion?.close();
    await challenger?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('moves the counters and the gauge from a pre-created 0, so SwitchyardRollback fires and SwitchyardGuardrailBreach does not', async () => {
    const before = scrape(await metricsText(served.adminUrl), watched);
    // Pre-created before anything happened: every rollback reason and reload result at 0, the route not rolled back.
    for (const reason of rollbackReasons) expect(before.get(`switchyard_rollbacks_total{route="iris",reason="${reason}"}`), reason).toBe(0);
    for (const result of policyReloadResults) expect(before.get(`switchyard_policy_reloads_total{result="${result}"}`), result).toBe(0);
    expect(before.get('switchyard_route_rolled_back{route="iris"}')).toBe(0);

    // Real traffic until the error breaker rolls the route back (bounded: the test fails rather than loops).
    let rolledBack = false;
    for (let i = 0; i < 400 && !rolledBack; i++) {
      const res = await request(`${served.dataUrl}/v1/models/iris:predict`, { method: 'POST', body: '{"instances":[[1,2,3,4]]}', headers: { 'content-type': 'application/json', 'x-user-id': `user-${i}` } });
      await res.body.dump();
      if (i % 10 === 9) {
        const analysis = await request(`${served.adminUrl}/v1/routes/iris/analysis`);
        rolledBack = ((await analysis.body.json()) as { phase: string }).phase === 'rolled_back';
      }
    }
    expect(rolledBack).toBe(true);
    await expect.poll(async () => scrape(await metricsText(served.adminUrl), watched).get('switchyard_route_rolled_back{route="iris"}')).toBe(1);

    // A rejected reload, too: the watched policy file turns invalid (one save is one reload: the watcher waits for the
    // file to be quiet).
    await writeFile(policyFile, 'routes: [{ name: BAD }]\n');
    await expect.poll(async () => scrape(await metricsText(served.adminUrl), watched).get('switchyard_policy_reloads_total{result="invalid"}'), { timeout: 10_000 }).toBe(1);

    const after = scrape(await metricsText(served.adminUrl), watched);
    const fired = rollbackReasons.filter((r) => after.get(`switchyard_rollbacks_total{route="iris",reason="${r}"}`) === 1);
    expect(fired).toHaveLength(1);
    const reason = fired[0]!;
    expect(after.get(`switchyard_guardrail_state{route="iris",guardrail="${reason}"}`)).toBe(2);

    const groups = chartRuleGroups();
    const labels = (extra: Record<string, string>) => ({ namespace: 'switchyard-ci', severity: 'warning', team: 'ml-platform', ...extra });
    const run = testRules(groups, {
      rule_files: ['rules.yaml'],
      evaluation_interval: '1m',
      tests: [{
        interval: '1m',
        input_series: inputSeries(before, after),
        alert_rule_test: [
          { eval_time: '0m', alertname: 'SwitchyardRollback', exp_alerts: [] },
          {
            eval_time: '5m',
            alertname: 'SwitchyardRollback',
            exp_alerts: [{
              exp_labels: { ...labels({ route: 'iris', reason }), severity: 'critical' },
              exp_annotations: {
                summary: 'Switchyard rolled back route iris',
                description: `Route iris in switchyard-ci was rolled back to its champion (${reason}). Traffic is safe; the challenger needs a look before another rollout.`,
              },
            }],
          },
          // The breach is still on show (state 2), but the rollback announced it: no second page.
          { eval_time: '5m', alertname: 'SwitchyardGuardrailBreach', exp_alerts: [] },
          {
            eval_time: '5m',
            alertname: 'SwitchyardPolicyReloadRejected',
            exp_alerts: [{
              exp_labels: labels({ pod: 'sy-real', result: 'invalid' }),
              exp_annotations: {
                summary: 'Switchyard on sy-real rejected a policy reload (invalid)',
                description: 'A changed policy failed to load, so sy-real keeps serving the last good one. Run `switchyard validate` on the policy files.',
              },
            }],
          },
        ],
      }],
    });
    expect(run.status, run.output).toBe(0);

    // The breach and the rollback it caused were posted, signed, in that order.
    await expect.poll(() => posts.map((p) => (JSON.parse(p.body) as { type: string }).type).filter((t) => t === 'breach' || t === 'rollback').slice(-2)).toEqual(['breach', 'rollback']);
    for (const post of posts) {
      const timestamp = String(post.headers['x-switchyard-timestamp']);
      expect(post.headers['x-switchyard-signature']).toBe(`sha256=${createHmac('sha256', secret).update(`${timestamp}.${post.body}`).digest('hex')}`);
    }
    expect(posts.map((p) => JSON.parse(p.body) as { type: string }).find((p) => p.type === 'rollback')).toMatchObject({ type: 'rollback', route: 'iris', who: 'controller', detail: { reason } });
  });
});
