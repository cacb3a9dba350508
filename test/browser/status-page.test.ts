// The status page (/ui) in a real headless Chromium against a real Switchyard: the demo's routes, a live rollback, changes with and without a token, 200 routes.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { chromium, type Browser, type Page } from 'playwright-core';
import { parse } from 'yaml';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { trainIrisModels } from '../../src/demo/iris.js';
import { startModelServer, type ModelServer } from '../../src/demo/model-server.js';
import { startSwitchyard, type RunningSwitchyard } from '../helpers/switchyard.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';

const CHROMIUM = process.env.SWITCHYARD_CHROMIUM ?? '/usr/bin/chromium';
const TOKEN = 'status-page-secret';

let browser: Browser;
const running: { close(): Promise<void> }[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does this when it is absent)`);
  if (!existsSync('dist/src/ui/main.js')) throw new Error('dist/src/ui/main.js is missing: run `npm run build` first (the page is served from the build)');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

afterEach(async () => {
  for (const r of running.splice(0).reverse()) await r.close();
});

afterAll(async () => {
  await browser?.close();
});

/** A fresh browser context (its own sessionStorage) on the page; fails the test on any script error. */
async function openPage(adminUrl: string, hash = ''): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
  running.push({ close: () => context.close() });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  running.push({ close: async () => expect(errors).toEqual([]) });
  await page.goto(`${adminUrl}/ui${hash}`);
  await page.waitForSelector('body[data-ready=true]');
  return page;
}

/** policies/demo.yaml with its model URLs pointed at the given servers (the demo's fixed ports may be taken by another suite). */
async function demoPolicy(champion: string, challenger: string): Promise<unknown> {
  const policy = parse(await readFile('policies/demo.yaml', 'utf8')) as { routes: { champion: { url: string }; challengers: { url: string }[] }[] };
  policy.routes[0]!.champion.url = champion;
  policy.routes[0]!.challengers[0]!.url = challenger;
  return policy;
}

async function startDemo(options: { tokens?: string } = {}): Promise<{ sy: RunningSwitchyard; champion: ModelServer; challenger: ModelServer }> {
  const models = trainIrisModels();
  const champion = await startModelServer({ name: 'iris', version: 'iris-v1', model: models.logisticRegression });
  running.push(champion);
  const challenger = await startModelServer({ name: 'iris', version: 'iris-v2', model: models.decisionTree });
  running.push(challenger);
  const adminTokens = options.tokens === undefined ? [] : options.tokens.split(',').map((entry) => ({ name: entry.split(':')[0]!, secret: entry.split(':')[1]! }));
  const sy = await startSwitchyard(await demoPolicy(champion.url, challenger.url), { adminTokens, controlIntervalMs: 50 });
  running.push(sy);
  return { sy, champion, challenger };
}

async function predict(dataUrl: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const res = await request(`${dataUrl}/v1/models/iris:predict`, { method: 'POST', body: '{"instances":[[6.0,2.2,5.0,1.5]]}', headers: { 'content-type': 'application/json', 'x-user-id': `user-${i}` } });
    await res.body.dump();
  }
}

async function admin(sy: RunningSwitchyard, method: 'GET' | 'POST' | 'PUT', route: string, body?: unknown, token: string | null = TOKEN): Promise<{ status: number; json: Record<string, unknown> }> {
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await request(`${sy.adminUrl}${route}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
}

const row = (page: Page, route: string) => page.locator(`tr.route[data-route="${route}"]`);

describe('status page', () => {
  it("renders the demo's route: champion, shadow challenger, live split, guardrails and the shadow gate", async () => {
    const { sy } = await startDemo();
    await predict(sy.dataUrl, 60);
    const page = await openPage(sy.adminUrl);
    const iris = row(page, 'iris');
    await expect.poll(() => iris.textContent()).toContain('iris-v1');
    const text = (await iris.textContent())!;
    expect(text).toContain('/v1/models/iris');
    expect(text).toContain('iris-v2');
    expect(await iris.locator('.badge.shadow').textContent()).toBe('shadow');
    expect(text).toContain('mirrors 100');
    // The first route is selected: its detail shows the shadow gate's agreement and a chart per guardrail.
    await expect.poll(() => page.locator('#detail .shadow-gate').textContent()).toMatch(/agreement \d+\/\d+/);
    expect(await page.locator('#detail .chart.guardrail').count()).toBe(5);
    expect(await page.locator('#detail h3').textContent()).toBe('iris');
    expect(await page.locator('#meta').textContent()).toContain('coordination off');
  });

  it('shows a rollback live, without a reload: the phase, the audit event and the breach on the chart', async () => {
    const { sy, challenger } = await startDemo({ tokens: `admin:${TOKEN}` });
    expect((await admin(sy, 'PUT', '/v1/routes/iris/split', { challenger: 'iris-v2', percent: 50, mode: 'canary' })).status).toBe(200);
    const page = await openPage(sy.adminUrl, '#route=iris');
    const iris = row(page, 'iris');
    await expect.poll(() => iris.textContent()).toContain('canary');
    expect(await iris.locator('.phase').first().textContent()).not.toBe('rolled back');
    await page.evaluate(() => {
      (globalThis as unknown as { marker: number }).marker = 42;
    });
    // The challenger now fails every request: its error breaker trips and the controller rolls back.
    challenger.setFaults({ errorRate: 1 });
    await expect
      .poll(async () => {
        await predict(sy.dataUrl, 20);
        return (await admin(sy, 'GET', '/v1/routes/iris', undefined, null)).json.rolledBack;
      }, { timeout: 20_000 })
      .toBe(true);
    await expect.poll(() => iris.locator('.phase').first().textContent()).toBe('rolled back');
    const reason = (await admin(sy, 'GET', '/v1/routes/iris/analysis', undefined, null)).json.rollbackReason as string;
    expect(['error_ceiling', 'error_rate']).toContain(reason);
    const event = page.locator('#events .event[data-action="rollback"]');
    await expect.poll(() => event.count()).toBe(1);
    expect(await event.textContent()).toContain(`iris · ${reason}`);
    expect(await event.textContent()).toContain('by controller');
    const chart = page.locator(`#detail .chart[data-guardrail="${reason}"]`);
    await expect.poll(() => chart.locator('line.breach').count()).toBe(1);
    expect(await chart.locator('.estimate').count()).toBe(1);
    expect(await chart.locator('.span-rolled_back').count()).toBe(1);
    // Still the same document: the page updated itself.
    expect(await page.evaluate(() => (globalThis as unknown as { marker?: number }).marker)).toBe(42);
  });

  it('with a token, the Pause button pauses the route (audited under the token\'s name) and the split form sets a split', async () => {
    const { sy } = await startDemo({ tokens: `alice:${TOKEN}` });
    const page = await openPage(sy.adminUrl, '#route=iris');
    const pause = page.locator('#actions button[data-action="pause"]');
    await expect.poll(() => pause.isDisabled()).toBe(true);
    await page.click('#token-button');
    await page.fill('#token-input', 'wrong-token');
    await page.click('#token-save');
    await expect.poll(() => page.locator('#token-error').textContent()).toContain('refused');
    await page.fill('#token-input', TOKEN);
    await page.click('#token-save');
    await expect.poll(() => page.locator('#who').textContent()).toBe('signed in as alice');
    await expect.poll(() => pause.isEnabled()).toBe(true);
    await pause.click();
    await expect.poll(async () => (await admin(sy, 'GET', '/v1/routes/iris', undefined, null)).json.paused).toBe(true);
    await expect.poll(() => row(page, 'iris').textContent()).toContain('paused');
    await expect.poll(() => page.locator('#events .event[data-action="pause"]').textContent()).toContain('by alice');
    await expect.poll(() => pause.isDisabled()).toBe(true);
    expect(await page.locator('#actions button[data-action="resume"]').isEnabled()).toBe(true);
    // The split form: a 30 % canary instead of the shadow.
    await page.fill('#actions input[data-field="percent"]', '30');
    await page.selectOption('#actions select[data-field="mode"]', 'canary');
    await page.click('#actions button[data-action="split"]');
    await expect.poll(async () => (await admin(sy, 'GET', '/v1/routes/iris', undefined, null)).json.challengers).toMatchObject([{ name: 'iris-v2', mode: 'canary', percent: 30 }]);
    await expect.poll(() => row(page, 'iris').textContent()).toContain('iris-v2 canary 30%');
    // The token is kept for the tab's session: a reload is still signed in.
    await page.reload();
    await page.waitForSelector('body[data-ready=true]');
    await expect.poll(() => page.locator('#who').textContent()).toBe('signed in as alice');
  });

  it('Promote (confirmed by a second click) promotes, or says clearly that this server has no promote endpoint', async () => {
    const { sy } = await startDemo({ tokens: `admin:${TOKEN}` });
    expect((await admin(sy, 'PUT', '/v1/routes/iris/split', { challenger: 'iris-v2', percent: 10, mode: 'canary' })).status).toBe(200);
    const page = await openPage(sy.adminUrl, '#route=iris');
    await page.evaluate((token) => (globalThis as unknown as { sessionStorage: { setItem(k: string, v: string): void } }).sessionStorage.setItem('switchyard.adminToken', token), TOKEN);
    await page.reload();
    await page.waitForSelector('body[data-ready=true]');
    const promote = page.locator('#actions button[data-action="promote"]');
    await expect.poll(() => promote.isEnabled()).toBe(true);
    await promote.click();
    expect(await promote.textContent()).toBe('Confirm promote');
    await promote.click();
    const paths = (await admin(sy, 'GET', '/v1/openapi.json', undefined, null)).json.paths as Record<string, Record<string, unknown>>;
    if (paths['/v1/routes/{route}/promote']?.post === undefined) {
      await expect.poll(() => page.locator('#toast .error').textContent()).toBe('Promote iris: this Switchyard has no POST /v1/routes/iris/promote endpoint (it answered 404). Upgrade the server to use it.');
    } else {
      await expect.poll(() => page.locator('#events .event[data-action="promote"]').count()).toBe(1);
    }
  });

  it('without a token the page is read-only, and the server refuses a change sent from it anyway', async () => {
    const { sy } = await startDemo({ tokens: `admin:${TOKEN}` });
    const page = await openPage(sy.adminUrl, '#route=iris');
    await page.waitForSelector('#actions');
    expect(await page.locator('#who').textContent()).toBe('read-only');
    expect(await page.locator('#readonly-note').isVisible()).toBe(true);
    for (const action of ['pause', 'resume', 'rollback', 'promote', 'approve', 'split']) {
      expect(await page.locator(`#actions button[data-action="${action}"]`).isDisabled(), action).toBe(true);
    }
    await page.locator('#actions button[data-action="pause"]').click({ force: true });
    const status = await page.evaluate(async () => (await fetch('/v1/routes/iris/pause', { method: 'POST' })).status);
    expect(status).toBe(401);
    expect((await admin(sy, 'GET', '/v1/routes/iris', undefined, null)).json.paused).toBe(false);
    expect((await admin(sy, 'GET', '/v1/events', undefined, null)).json.events).toEqual([]);
  });

  it('renders 200 routes and keeps them live: a split change on one shows up without a reload', async () => {
    const upstream: Upstream = await startUpstream();
    running.push(upstream);
    const routes = Array.from({ length: 200 }, (_, i) => {
      const name = `model-${String(i).padStart(3, '0')}`;
      return {
        name,
        match: { pathPrefix: `/v1/models/${name}` },
        champion: { name: `${name}-v1`, url: upstream.url },
        challengers: [{ name: `${name}-v2`, url: upstream.url, mode: i % 3 === 0 ? 'shadow' : 'canary', percent: i % 3 === 0 ? 100 : i % 10 }],
      };
    });
    const sy = await startSwitchyard({ routes }, { adminTokens: [{ name: 'admin', secret: TOKEN }], controlIntervalMs: 100 });
    running.push(sy);
    const started = Date.now();
    const page = await openPage(sy.adminUrl);
    await expect.poll(() => page.locator('tr.route').count()).toBe(200);
    const firstRenderMs = Date.now() - started;
    expect(await page.locator('#route-count').textContent()).toContain('200 routes');
    // Every row has its guardrail dots once the controller has judged the routes.
    await expect.poll(() => page.locator('tr.route .dots .dot').count()).toBe(200 * 5);
    const target = row(page, 'model-137');
    expect(await target.textContent()).toContain('model-137-v2 canary 7%');
    expect((await admin(sy, 'PUT', '/v1/routes/model-137/split', { challenger: 'model-137-v2', percent: 40 })).status).toBe(200);
    await expect.poll(() => target.textContent()).toContain('model-137-v2 canary 40%');
    // Filtering narrows the table to the matching rows.
    await page.fill('#filter', 'model-13');
    await expect.poll(() => page.locator('tr.route:not([hidden])').count()).toBe(10);
    // "Needs attention" keeps the routes a person should look at: here the one rolled back.
    await page.fill('#filter', '');
    expect((await admin(sy, 'POST', '/v1/routes/model-042/rollback')).status).toBe(200);
    await page.click('[data-show="attention"]');
    await expect.poll(() => page.locator('tr.route:not([hidden])').count()).toBe(1);
    expect(await page.locator('tr.route:not([hidden])').getAttribute('data-route')).toBe('model-042');
    await expect.poll(() => page.locator('#route-count').textContent()).toContain('1 rolled back');
    await page.click('[data-show="all"]');
    await expect.poll(() => page.locator('tr.route:not([hidden])').count()).toBe(200);
    // How long the page spends per refresh with 200 rows (reported, not asserted: timing depends on the machine).
    const readyMs = await page.locator('body').getAttribute('data-ready-ms');
    const timing = await page.evaluate(async () => {
      const t0 = performance.now();
      await fetch('/v1/overview').then((r) => r.json());
      const fetchMs = performance.now() - t0;
      const renders = performance.getEntriesByName('switchyard:routes').map((e) => e.duration);
      return { fetchMs, first: renders[0]!, later: renders.slice(1).sort((a, b) => a - b), count: renders.length };
    });
    const median = timing.later[Math.floor(timing.later.length / 2)] ?? Number.NaN;
    console.info(`status page, 200 routes: 200 rows in the test's view after ${firstRenderMs} ms (browser context included), first complete draw ${readyMs} ms after navigation; table drawn in ${timing.first.toFixed(1)} ms, later refreshes median ${median.toFixed(1)} ms (${timing.count} refreshes); /v1/overview fetch ${timing.fetchMs.toFixed(1)} ms`);
  });
});
