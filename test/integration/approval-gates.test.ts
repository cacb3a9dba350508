// Approval gates end to end over real sockets: a canary waits at a gated step (awaiting_approval) until a person approves
// or a confirm webhook answers 2xx; a breach while waiting still rolls back; a person can promote now. The CLI is the real one.
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { runCli } from '../helpers/cli.js';
import { metric, metricsText } from '../helpers/metrics.js';
import { behave, startUpstream } from '../helpers/upstream.js';
import { quickRolloutPolicy, startSwitchyard, type RunningSwitchyard } from '../helpers/switchyard.js';

const token = 'gates-token';
const auth = { authorization: `Bearer ${token}` };

interface Analysis {
  phase: string;
  step: { index: number; percent: number } | null;
  servedPercent: number;
  rollbackReason: string | null;
  approval: { step: number | 'promote'; percent: number; waitingFor: string[]; approvedBy: string | null; webhook: { attempts: number; lastStatus: number | null; confirmed: boolean } | null } | null;
}

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** Closed-loop load with random sticky keys until stopped (stopped by the test's cleanup at the latest). */
function startLoad(base: string, concurrency = 12): { stop: () => Promise<void> } {
  let running = true;
  let n = 0;
  const worker = async () => {
    while (running) {
      const res = await request(`${base}/v1/models/iris:predict`, { method: 'POST', body: '{"instances":[[1,2,3,4]]}', headers: { 'content-type': 'application/json', 'x-user-id': `user-${n++}` } });
      await res.body.dump();
    }
  };
  const workers = Array.from({ length: concurrency }, worker);
  const load = { stop: async () => { running = false; await Promise.all(workers); } };
  cleanup.push(load.stop);
  return load;
}

/** A canary route with a rollout of 10, 50, 100 % whose steps are quick on an A/A challenger. */
async function start(rollout: Record<string, unknown>): Promise<{ swy: RunningSwitchyard; challenger: Awaited<ReturnType<typeof startUpstream>> }> {
  const champion = await startUpstream(behave.json('setosa'));
  const challenger = await startUpstream(behave.json('setosa'));
  cleanup.push(() => champion.close(), () => challenger.close());
  const swy = await startSwitchyard(quickRolloutPolicy(champion.url, challenger.url, rollout), { adminTokens: [{ name: 'ci', secret: token }], controlIntervalMs: 100 });
  cleanup.push(() => swy.close());
  return { swy, challenger };
}

const analysis = async (swy: RunningSwitchyard): Promise<Analysis> => (await (await request(`${swy.adminUrl}/v1/routes/iris/analysis`)).body.json()) as Analysis;
const routeView = async (swy: RunningSwitchyard) => (await (await request(`${swy.adminUrl}/v1/routes`)).body.json()) as { routes: { name: string; phase: string; challengers: { servedPercent: number }[] }[] };
const events = async (swy: RunningSwitchyard) => ((await (await request(`${swy.adminUrl}/v1/events?route=iris`)).body.json()) as { events: { action: string; who: string; detail: Record<string, unknown> }[] }).events;
const post = async (swy: RunningSwitchyard, path: string, body?: unknown, headers: Record<string, string> = auth) => {
  const res = await request(`${swy.adminUrl}${path}`, { method: 'POST', headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> & { error?: { code: string; message: string } } };
};

describe('approval gates', { timeout: 90_000 }, () => {
  it('waits at the gated step as awaiting_approval everywhere until a person approves, then goes on to promotion', async () => {
    const { swy } = await start({ approve: [50] });
    startLoad(swy.dataUrl);
    const cli = ['--admin-url', swy.adminUrl, '--token', token];
    // The real CLI waits for the gate (exit 0 when reached).
    const waited = await runCli(['wait', 'iris', '--for', 'awaiting-approval', '--timeout', '30s', '--interval', '100ms', ...cli]);
    expect(waited.code, waited.stderr).toBe(0);
    const waiting = await analysis(swy);
    expect(waiting).toMatchObject({ phase: 'awaiting_approval', step: { index: 0, percent: 10 }, approval: { step: 1, percent: 50, waitingFor: ['person'], approvedBy: null, webhook: null } });
    expect((await routeView(swy)).routes[0]).toMatchObject({ phase: 'awaiting_approval', challengers: [{ servedPercent: 10 }] });
    await expect.poll(() => metric(swy.adminUrl, 'switchyard_route_awaiting_approval{route="iris"}')).toBe(1);
    expect((await events(swy)).find((e) => e.action === 'approval.needed')).toMatchObject({ who: 'controller', detail: { step: 1, percent: 50, waitingFor: ['person'] } });
    const status = await runCli(['status', ...cli]);
    expect(status.stdout).toMatch(/^iris\s.*awaiting_approval$/m);
    const shown = await runCli(['analysis', 'iris', ...cli]);
    expect(shown.stdout).toContain('approval gate before step 1 (50 %)');
    expect(shown.stdout).toContain('switchyard approve iris --step 1');

    // It stays there: several ticks later it still serves 10 %.
    for (let i = 0; i < 5; i++) swy.app.controller.tick();
    expect(await analysis(swy)).toMatchObject({ phase: 'awaiting_approval', servedPercent: 10 });

    // Refusals: no token, a malformed body, another step than the one it waits at.
    expect((await post(swy, '/v1/routes/iris/approve', undefined, {})).status).toBe(401);
    const malformed = await post(swy, '/v1/routes/iris/approve', { step: -1, extra: true });
    expect(malformed).toMatchObject({ status: 400, body: { error: { code: 'SWY_ERR_BAD_REQUEST' } } });
    expect(malformed.body.error!.message).toMatch(/extra: unknown field \(allowed: step, note\)/);
    expect(malformed.body.error!.message).toMatch(/step: must be the step index/);
    const wrong = await post(swy, '/v1/routes/iris/approve', { step: 2 });
    expect(wrong).toMatchObject({ status: 409, body: { error: { code: 'SWY_ERR_CONFLICT' } } });
    expect(wrong.body.error!.message).toContain('waits for approval before step 1 (50 %), not step 2');

    const promoted = runCli(['wait', 'iris', '--for', 'promoted', '--timeout', '30s', '--interval', '100ms', ...cli]);
    const approved = await runCli(['approve', 'iris', '--step', '1', '--note', 'dashboards look fine', ...cli]);
    expect(approved.code, approved.stderr).toBe(0);
    expect(approved.stdout).toMatch(/^iris: approved step 1 \(50 %\) as ci \(audit event \d+\); it goes on at the next tick$/m);
    const again = await runCli(['approve', 'iris', ...cli]);
    expect(again.code).toBe(1);

    const done = await promoted;
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toContain('iris: reached promoted');
    expect(await analysis(swy)).toMatchObject({ phase: 'promoted', approval: null });
    expect((await routeView(swy)).routes[0]!.challengers[0]!.servedPercent).toBe(100);
    expect(await metric(swy.adminUrl, 'switchyard_route_awaiting_approval{route="iris"}')).toBe(0);
    const trail = await events(swy);
    expect(trail.find((e) => e.action === 'approve')).toMatchObject({ who: 'ci', detail: { step: 1, percent: 50, note: 'dashboards look fine' } });
    // The approved step was entered by the controller after the approval.
    const actions = trail.map((e) => e.action).reverse();
    expect(actions.indexOf('approve')).toBeLessThan(actions.lastIndexOf('rollout.step'));
    expect(actions).toContain('promote');
  });

  it('keeps judging while it waits: a breach at the gate rolls back, and `wait --for promoted` exits 1', async () => {
    const { swy, challenger } = await start({ approve: [50] });
    startLoad(swy.dataUrl, 16);
    await expect.poll(async () => (await analysis(swy)).phase, { timeout: 30_000, interval: 100 }).toBe('awaiting_approval');
    const promoted = runCli(['wait', 'iris', '--for', 'promoted', '--timeout', '60s', '--interval', '100ms', '--admin-url', swy.adminUrl]);
    challenger.setBehaviour(behave.status(500));
    await expect.poll(async () => (await analysis(swy)).phase, { timeout: 30_000, interval: 100 }).toBe('rolled_back');
    const after = await analysis(swy);
    expect(after.approval).toBeNull();
    expect(['error_ceiling', 'error_rate']).toContain(after.rollbackReason);
    expect((await routeView(swy)).routes[0]!.challengers[0]!.servedPercent).toBe(0);
    await expect.poll(() => metric(swy.adminUrl, 'switchyard_route_awaiting_approval{route="iris"}')).toBe(0);
    const done = await promoted;
    expect(done.code).toBe(1);
    expect(done.stderr).toContain('rolled_back');
    // An approval now finds no gate.
    const late = await post(swy, '/v1/routes/iris/approve');
    expect(late).toMatchObject({ status: 409, body: { error: { code: 'SWY_ERR_CONFLICT' } } });
    expect(late.body.error!.message).toContain('is not waiting for approval (phase rolled_back)');
  });

  it('closes the gate with a manual rollback at once: an approval right after it is refused', async () => {
    const { swy } = await start({ approve: [50] });
    startLoad(swy.dataUrl);
    await expect.poll(async () => (await analysis(swy)).phase, { timeout: 30_000, interval: 100 }).toBe('awaiting_approval');
    swy.app.controller.stop();
    expect((await post(swy, '/v1/routes/iris/rollback')).status).toBe(200);
    const approve = await post(swy, '/v1/routes/iris/approve', { step: 1 });
    expect(approve).toMatchObject({ status: 409, body: { error: { code: 'SWY_ERR_CONFLICT' } } });
    expect(approve.body.error!.message).toContain('is not waiting for approval (phase rolled_back)');
    expect(await analysis(swy)).toMatchObject({ phase: 'rolled_back', approval: null });
  });

  it('waits for the confirm webhook: 503 keeps the route at the gate, 200 lets it through, audited', async () => {
    let answer = 503;
    const asks: { route: string; step: number; percent: number }[] = [];
    const hook: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d));
      req.on('end', () => {
        asks.push(JSON.parse(body) as never);
        res.writeHead(answer, { 'content-type': 'application/json' }).end('{}');
      });
    });
    hook.listen(0, '127.0.0.1');
    await once(hook, 'listening');
    cleanup.push(() => new Promise((resolve) => hook.close(() => resolve())));
    const url = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/confirm`;
    const { swy } = await start({ confirm: { url, before: [50], interval: '100ms', timeout: '1s' } });
    startLoad(swy.dataUrl);
    await expect.poll(async () => (await analysis(swy)).approval?.webhook?.attempts ?? 0, { timeout: 30_000, interval: 100 }).toBeGreaterThanOrEqual(3);
    const waiting = await analysis(swy);
    expect(waiting).toMatchObject({ phase: 'awaiting_approval', servedPercent: 10, approval: { step: 1, waitingFor: ['webhook'], webhook: { lastStatus: 503, confirmed: false } } });
    expect(asks[0]).toMatchObject({ route: 'iris', step: 1, percent: 50 });
    expect(await metric(swy.adminUrl, 'switchyard_confirm_requests_total{route="iris",result="refused"}')).toBeGreaterThanOrEqual(2);
    // Pre-created at 0, so an alert's increase() sees the first confirmation.
    expect(await metricsText(swy.adminUrl)).toContain('switchyard_confirm_requests_total{route="iris",result="confirmed"} 0');
    // Only the webhook can pass this gate.
    const refused = await post(swy, '/v1/routes/iris/approve');
    expect(refused).toMatchObject({ status: 409 });
    expect(refused.body.error!.message).toContain('waits for its confirm webhook');

    answer = 200;
    await expect.poll(async () => (await analysis(swy)).step?.index, { timeout: 10_000, interval: 50 }).toBe(1);
    expect((await analysis(swy)).approval).toBeNull();
    expect(await metric(swy.adminUrl, 'switchyard_confirm_requests_total{route="iris",result="confirmed"}')).toBe(1);
    const trail = await events(swy);
    expect(trail.find((e) => e.action === 'approval.needed')).toMatchObject({ detail: { step: 1, waitingFor: ['webhook'], url } });
    expect(trail.find((e) => e.action === 'approve')).toMatchObject({ who: 'confirm-webhook', detail: { step: 1, url, status: 200 } });
  });

  it('lets a person promote a waiting canary now; a shadow is refused with the command that starts a canary', async () => {
    const { swy } = await start({ approve: [50] });
    startLoad(swy.dataUrl);
    await expect.poll(async () => (await analysis(swy)).phase, { timeout: 30_000, interval: 100 }).toBe('awaiting_approval');
    expect((await post(swy, '/v1/routes/iris/promote', undefined, {})).status).toBe(401);
    // A step given with the promotion is the one the person saw: a route that is elsewhere is not promoted.
    const stale = await post(swy, '/v1/routes/iris/promote', { step: 2 });
    expect(stale).toMatchObject({ status: 409, body: { error: { code: 'SWY_ERR_CONFLICT' } } });
    expect(stale.body.error!.message).toContain('is at step 0, not step 2');
    const promoted = await runCli(['promote', 'iris', '--note', 'ship it', '--admin-url', swy.adminUrl, '--token', token]);
    expect(promoted.code, promoted.stderr).toBe(0);
    expect(promoted.stdout).toMatch(/^iris: promoted iris-v2: it serves 100 %/m);
    expect(await analysis(swy)).toMatchObject({ phase: 'promoted', approval: null });
    expect((await routeView(swy)).routes[0]!.challengers[0]!.servedPercent).toBe(100);
    expect((await events(swy)).find((e) => e.action === 'promote')).toMatchObject({ who: 'ci', detail: { percent: 100, manual: true, note: 'ship it' } });
    expect(await metric(swy.adminUrl, 'switchyard_promotions_total{route="iris"}')).toBe(1);
    // Promoting again changes nothing.
    expect(await post(swy, '/v1/routes/iris/promote')).toMatchObject({ status: 200, body: { changed: false } });

    const champion = await startUpstream(behave.json('a'));
    const shadow = await startUpstream(behave.json('a'));
    cleanup.push(() => champion.close(), () => shadow.close());
    const mirrored = await startSwitchyard({ routes: [{ name: 'iris', match: { pathPrefix: '/v1/models/iris' }, champion: { name: 'iris-v1', url: champion.url }, challengers: [{ name: 'iris-v3', url: shadow.url, mode: 'shadow', percent: 100 }] }] }, { adminTokens: [{ name: 'ci', secret: token }] });
    cleanup.push(() => mirrored.close());
    const refused = await post(mirrored, '/v1/routes/iris/promote');
    expect(refused).toMatchObject({ status: 409, body: { error: { code: 'SWY_ERR_CONFLICT' } } });
    expect(refused.body.error!.message).toContain('switchyard set iris iris-v3 5 --mode canary');
  });
});
