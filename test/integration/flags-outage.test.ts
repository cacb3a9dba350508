// Flag failures: Unleash unreachable at start (policy split or bootstrap file), Unleash killed mid-run (last snapshot
// keeps serving), and a rejected API token (reported, then recovered by recreating the client on reload).
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import type { RouteView } from '../../src/admin/route-view.js';
import { stickyBucket } from '../../src/decision/bucket.js';
import { UnleashAdminClient } from '../../src/flags/unleash-admin.js';
import type { UnleashSettings } from '../../src/flags/unleash.js';
import { getSharedUnleashServer, startUnleashServer, type UnleashServer, type UnleashServerInfo } from '../helpers/unleash-server.js';
import { startSwitchyard, type RunningSwitchyard } from '../helpers/switchyard.js';
import { behave, startUpstream, type Upstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/wait-for.js';

const ENV = 'development';
const KEYS = Array.from({ length: 500 }, (_, i) => `outage-user-${i}`);

function settings(apiUrl: string, apiToken: string, extra: Partial<UnleashSettings> = {}): UnleashSettings {
  return { apiUrl, rootUrl: apiUrl.replace(/\/api\/$/, ''), apiToken, appName: 'switchyard-outage-test', environment: ENV, refreshMs: 200, disableMetrics: true, ...extra };
}

function policy(flag: string, champion: string, challenger: string, percent = 0): unknown {
  return {
    routes: [{
      name: 'iris',
      match: { pathPrefix: '/v1/models/iris', methods: ['POST'] },
      champion: { name: 'iris-v1', url: champion },
      challengers: [{ name: 'iris-v2', url: challenger, mode: 'canary', percent }],
      stickiness: { header: 'x-user-id' },
      flag: { name: flag },
    }],
  };
}

async function routeOf(swy: RunningSwitchyard): Promise<RouteView> {
  return (await (await request(`${swy.adminUrl}/v1/routes/iris`)).body.json()) as RouteView;
}

async function metricsOf(swy: RunningSwitchyard): Promise<string> {
  return (await request(`${swy.adminUrl}/metrics`)).body.text();
}

async function variants(swy: RunningSwitchyard, keys: readonly string[]): Promise<string[]> {
  const out = new Array<string>(keys.length);
  for (let i = 0; i < keys.length; i += 100) {
    await Promise.all(keys.slice(i, i + 100).map(async (key, j) => {
      const res = await request(`${swy.dataUrl}/v1/models/iris:predict`, { method: 'POST', body: '{}', headers: { 'x-user-id': key } });
      await res.body.dump();
      expect(res.statusCode).toBe(200);
      out[i + j] = String(res.headers['x-switchyard-variant']);
    }));
  }
  return out;
}

const expectedSplit = (keys: readonly string[], groupId: string, percent: number) => keys.map((k) => (stickyBucket(k, groupId) <= percent ? 'iris-v2' : 'iris-v1'));

/** An http:// URL whose port was just freed: connections to it are refused. */
async function refusedApiUrl(): Promise<string> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/api/`;
}

let champion: Upstream;
let challenger: Upstream;
const running: RunningSwitchyard[] = [];

beforeAll(async () => {
  champion = await startUpstream(behave.json('v1'), { name: 'v1' });
  challenger = await startUpstream(behave.json('v2'), { name: 'v2' });
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((swy) => swy.close()));
});
afterAll(async () => {
  await champion?.close();
  await challenger?.close();
});

describe('Unleash unreachable at start', () => {
  it('serves the policy split and reports flags "stale"', async () => {
    const flag = `swy.unreachable.${randomUUID()}`;
    const swy = await startSwitchyard(policy(flag, champion.url, challenger.url, 30), { flags: settings(await refusedApiUrl(), 'default:development.none') });
    running.push(swy);
    expect(await routeOf(swy)).toMatchObject({ flags: 'stale', source: 'policy', groupId: flag, challengers: [{ name: 'iris-v2', percent: 30 }] });
    expect(await variants(swy, KEYS)).toEqual(expectedSplit(KEYS, flag, 30));
    expect(await metricsOf(swy)).toContain('switchyard_flag_status{route="iris",status="stale"} 1');
    // (The failed fetch is counted about 3 s later, after unleash-client's two retries; the kill test below checks it.)
  });

  it('serves a bootstrap file instead when one is configured, and reports flags "bootstrap"', async () => {
    const flag = `swy.bootstrap.${randomUUID()}`;
    const swyDir = await startSwitchyard(policy(flag, champion.url, challenger.url, 0));
    running.push(swyDir);
    const file = path.join(swyDir.dir, 'features.json');
    await writeFile(file, JSON.stringify({
      version: 2,
      features: [{ name: flag, enabled: true, strategies: [{ name: 'flexibleRollout', parameters: { rollout: '60', stickiness: 'default', groupId: 'boot-group' }, constraints: [] }] }],
    }));
    const swy = await startSwitchyard(policy(flag, champion.url, challenger.url, 0), { flags: settings(await refusedApiUrl(), 'default:development.none', { bootstrapFile: file }) });
    running.push(swy);
    expect(await routeOf(swy)).toMatchObject({ flags: 'bootstrap', source: 'bootstrap', groupId: 'boot-group', challengers: [{ name: 'iris-v2', percent: 60 }] });
    expect(await variants(swy, KEYS)).toEqual(expectedSplit(KEYS, 'boot-group', 60));
    expect(await metricsOf(swy)).toMatch(/switchyard_flag_updates_total\{result="bootstrap"\} 1/);
  });
});

describe('Unleash killed mid-run', () => {
  let own: UnleashServer;
  beforeAll(async () => {
    own = await startUnleashServer();
  }, 60_000);
  afterAll(async () => {
    await own?.stop();
  });

  it('keeps serving the last flag snapshot, and reports it stale', async () => {
    const flag = `swy.killed.${randomUUID()}`;
    const admin = new UnleashAdminClient({ baseUrl: own.url, adminToken: own.adminToken });
    try {
      await admin.createFlag(flag, { type: 'experiment' });
      await admin.addFlexibleRollout(flag, ENV, { rollout: 40, stickiness: 'default', groupId: flag });
      await admin.enable(flag, ENV);
    } finally {
      await admin.close();
    }
    const swy = await startSwitchyard(policy(flag, champion.url, challenger.url, 0), { flags: settings(own.apiUrl, own.clientToken) });
    running.push(swy);
    await waitFor('flag live at 40 %', async () => {
      const r = await routeOf(swy);
      return r.flags === 'live' && r.challengers[0]?.percent === 40;
    });
    const before = await variants(swy, KEYS);
    expect(before).toEqual(expectedSplit(KEYS, flag, 40));

    process.kill(own.pid, 'SIGKILL');
    const staleAfter = await waitFor('flags stale after the kill', async () => (await routeOf(swy)).flags === 'stale');
    console.info(`Unleash SIGKILLed: route reported stale after ${Math.round(staleAfter)} ms (refresh 200 ms)`);
    expect(await routeOf(swy)).toMatchObject({ source: 'flag', challengers: [{ name: 'iris-v2', percent: 40 }] });
    expect(await variants(swy, KEYS)).toEqual(before);
    const metrics = await metricsOf(swy);
    expect(metrics).toMatch(/switchyard_flag_updates_total\{result="error"\} [1-9]/);
    expect(metrics).toContain('switchyard_flag_status{route="iris",status="stale"} 1');
    const age = Number(/switchyard_flag_snapshot_age_seconds ([\d.]+)/.exec(metrics)?.[1]);
    expect(age).toBeGreaterThan(0.5);
  });
});

describe('a rejected API token', () => {
  let unleash: UnleashServerInfo;
  beforeAll(async () => {
    unleash = await getSharedUnleashServer();
  });

  it('is reported (status and metric) with the policy split kept, and a reload recreates the client once the token is fixed', async () => {
    const flag = `swy.token.${randomUUID()}`;
    const admin = new UnleashAdminClient({ baseUrl: unleash.url, adminToken: unleash.adminToken });
    try {
      await admin.createFlag(flag, { type: 'experiment' });
      await admin.addFlexibleRollout(flag, ENV, { rollout: 25, stickiness: 'default', groupId: flag });
      await admin.enable(flag, ENV);
      let token = 'default:development.not-a-valid-token';
      const swy = await startSwitchyard(policy(flag, champion.url, challenger.url, 10), { flags: () => settings(unleash.apiUrl, token) });
      running.push(swy);
      await waitFor('unauthorized reported', async () => (await routeOf(swy)).flags === 'unauthorized');
      expect(await routeOf(swy)).toMatchObject({ source: 'policy', challengers: [{ percent: 10 }] });
      const metrics = await metricsOf(swy);
      expect(metrics).toMatch(/switchyard_flag_updates_total\{result="unauthorized"\} 1/);
      expect(metrics).toContain('switchyard_flag_status{route="iris",status="unauthorized"} 1');

      token = unleash.clientToken;
      const reloaded = await swy.app.reload('SIGHUP');
      expect(reloaded.ok).toBe(true);
      await waitFor('live with the fixed token', async () => {
        const r = await routeOf(swy);
        return r.flags === 'live' && r.challengers[0]?.percent === 25;
      });
    } finally {
      await admin.archiveAndDelete(flag).catch(() => undefined);
      await admin.close();
    }
  });
});
