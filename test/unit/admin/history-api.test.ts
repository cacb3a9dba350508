// GET /v1/routes/:route/history and /v1/overview on a real Switchyard: samples at controller ticks, a resume starts a new history, unknown routes are 404.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { request } from 'undici';
import type { HistoryView } from '../../../src/admin/guardrail-history.js';
import { routePolicy, startSwitchyard, type RunningSwitchyard } from '../../helpers/switchyard.js';
import { startUpstream, type Upstream } from '../../helpers/upstream.js';

let upstream: Upstream;
let sy: RunningSwitchyard;
const auth = { authorization: 'Bearer t' };

beforeAll(async () => {
  upstream = await startUpstream();
  sy = await startSwitchyard(routePolicy(upstream.url, [{ url: upstream.url, percent: 50 }]), { adminTokens: [{ name: 'admin', secret: 't' }], controlIntervalMs: 20 });
});

afterAll(async () => {
  await sy?.close();
  await upstream?.close();
});

async function get<T>(path: string): Promise<{ status: number; body: T }> {
  const res = await request(`${sy.adminUrl}${path}`);
  return { status: res.statusCode, body: (await res.body.json()) as T };
}

async function traffic(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await (await request(`${sy.dataUrl}/v1/models/iris`, { method: 'POST', body: '{}', headers: { 'x-user-id': `u${i}` } })).body.dump();
}

it('samples each guardrail at ticks, reports the latest verdicts in the overview, and starts a new history on resume', async () => {
  expect((await get<HistoryView>('/v1/routes/iris/history')).body.t).toEqual([]);
  await traffic(40);
  await expect.poll(async () => (await get<HistoryView>('/v1/routes/iris/history')).body.t.length).toBeGreaterThan(3);
  const first = (await get<HistoryView>('/v1/routes/iris/history')).body;
  expect(first.guardrails.map((g) => g.name)).toEqual(['error_ceiling', 'p99_ceiling', 'error_rate', 'latency_log_mean', 'latency_exceedance']);
  for (const g of first.guardrails) for (const column of [g.state, g.estimate, g.lower, g.upper, g.threshold]) expect(column).toHaveLength(first.t.length);
  const overview = (await get<{ routes: { name: string; phase: string; guardrails: { name: string; state: string }[]; judgedAt: number }[] }>('/v1/overview')).body;
  expect(overview.routes[0]).toMatchObject({ name: 'iris', phase: expect.stringMatching(/collecting|healthy/) });
  expect(overview.routes[0]!.guardrails).toHaveLength(5);

  await (await request(`${sy.adminUrl}/v1/routes/iris/rollback`, { method: 'POST', headers: auth })).body.dump();
  await expect.poll(async () => (await get<HistoryView>('/v1/routes/iris/history')).body.phase.at(-1)).toBe('rolled_back');
  expect((await get<{ routes: { phase: string }[] }>('/v1/overview')).body.routes[0]!.phase).toBe('rolled_back');
  await (await request(`${sy.adminUrl}/v1/routes/iris/resume`, { method: 'POST', headers: auth })).body.dump();
  await traffic(10);
  await expect.poll(async () => (await get<HistoryView>('/v1/routes/iris/history')).body.since).toBeGreaterThan(first.t.at(-1)!);
  expect((await get<HistoryView>('/v1/routes/iris/history')).body.phase).not.toContain('rolled_back');

  const unknown = await get<{ error: { code: string } }>('/v1/routes/nope/history');
  expect(unknown.status).toBe(404);
  expect(unknown.body.error.code).toBe('SWY_ERR_ROUTE_UNKNOWN');
});

it('serves the page with a strict Content-Security-Policy, its built scripts with ETags, and nothing outside them', async () => {
  const page = await request(`${sy.adminUrl}/ui`);
  expect(page.statusCode).toBe(200);
  expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
  expect(page.headers['content-security-policy']).toContain("script-src 'self'");
  expect(await page.body.text()).toContain('<script type="module" src="ui/assets/main.js">');
  const slash = await request(`${sy.adminUrl}/ui/`);
  await slash.body.dump();
  expect([slash.statusCode, slash.headers.location]).toEqual([308, '../ui']);
  const script = await request(`${sy.adminUrl}/ui/assets/main.js`);
  expect(script.headers['content-type']).toBe('text/javascript; charset=utf-8');
  expect(await script.body.text()).toContain("from './api.js'");
  const again = await request(`${sy.adminUrl}/ui/assets/main.js`, { headers: { 'if-none-match': String(script.headers.etag) } });
  await again.body.dump();
  expect(again.statusCode).toBe(304);
  for (const bad of ['/ui/assets/..%2Fcli.js', '/ui/assets/missing.js', '/ui/assets/main.ts']) {
    const res = await request(`${sy.adminUrl}${bad}`);
    expect(res.statusCode, bad).toBe(404);
    expect(((await res.body.json()) as { error: { code: string } }).error.code).toBe('SWY_ERR_NOT_FOUND');
  }
});
