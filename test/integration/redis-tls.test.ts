// Coordination over TLS: `switchyard serve` with a rediss:// URL leads its route through a TLS-only Redis when it trusts
// the server's CA (NODE_EXTRA_CA_CERTS), and without it says why it cannot connect while it goes on serving alone.
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { RouteAnalysis } from '../../src/control/controller.js';
import { routeKeys } from '../../src/coordination/keys.js';
import { parseLease } from '../../src/coordination/lease.js';
import { startTlsRedis, type TlsRedis } from '../helpers/redis-topologies.js';
import { startServe, type ServeProcess } from '../helpers/cli.js';
import { routePolicy } from '../helpers/switchyard.js';
import { behave, startUpstream, type Upstream } from '../helpers/upstream.js';

const PREFIX = 'swy-tls';

let redis: TlsRedis;
let upstream: Upstream;
let dir: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  redis = await startTlsRedis();
  upstream = await startUpstream(behave.json('setosa'), { name: 'v1' });
  dir = await mkdtemp(path.join(tmpdir(), 'swy-redis-tls-'));
  // A challenger, so the route has something to coordinate (a champion-only route is never exchanged).
  await writeFile(path.join(dir, 'policy.yaml'), stringify(routePolicy(upstream.url, [{ url: upstream.url, percent: 10 }])));
});

afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
});

afterAll(async () => {
  await upstream?.close();
  await redis?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Starts the built CLI against the TLS Redis with `env` on top (an undefined value unsets a variable). */
async function serve(env: Record<string, string | undefined>): Promise<ServeProcess> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, SWITCHYARD_LOG_LEVEL: 'info', SWITCHYARD_DATA_DIR: path.join(dir, `data-${children.length}`), SWITCHYARD_REDIS_URL: redis.url, SWITCHYARD_REDIS_PREFIX: PREFIX, SWITCHYARD_COORDINATION_MS: '50', ...env };
  for (const [key, value] of Object.entries(childEnv)) if (value === undefined) delete childEnv[key];
  const served = await startServe(path.join(dir, 'policy.yaml'), childEnv);
  children.push(served.child);
  return served;
}

async function analysis(served: ServeProcess): Promise<RouteAnalysis> {
  return (await (await request(`${served.adminUrl}/v1/routes/iris/analysis`)).body.json()) as RouteAnalysis;
}

describe('coordination over TLS (rediss://)', () => {
  it('leads the route through a TLS-only Redis when the CA is trusted through NODE_EXTRA_CA_CERTS', async () => {
    const served = await serve({ NODE_EXTRA_CA_CERTS: redis.caFile });
    await expect.poll(async () => {
      // A route is led while it has traffic (an idle route costs no Redis command, docs/replicas.md).
      const res = await request(`${served.dataUrl}/v1/models/iris:predict`, { method: 'POST', body: '{}' });
      await res.body.dump();
      const a = await analysis(served);
      return `${a.coordination}/${a.role}`;
    }, { timeout: 10_000, interval: 25 }).toBe('ok/leader');
    // The lease really is in the TLS Redis, held by this replica.
    const lease = parseLease((await redis.client().get(routeKeys(PREFIX, 'iris').lease)) ?? '');
    expect(lease?.instance).toBe((await analysis(served)).leader);
    const res = await request(`${served.dataUrl}/v1/models/iris:predict`, { method: 'POST', body: '{}' });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
  });

  it('without the CA, names the rejected certificate in a warning and serves on alone (degraded)', async () => {
    const served = await serve({ NODE_EXTRA_CA_CERTS: undefined });
    await expect.poll(() => served.lines.find((l) => l.msg.includes('TLS'))?.code, { timeout: 10_000, interval: 25 }).toBe('SELF_SIGNED_CERT_IN_CHAIN');
    const warning = served.lines.find((l) => l.msg.includes('TLS'))!;
    expect(warning.level).toBe(40);
    expect(warning.msg).toContain('NODE_EXTRA_CA_CERTS');
    await expect.poll(async () => (await analysis(served)).coordination, { timeout: 10_000, interval: 25 }).toBe('degraded');
    const res = await request(`${served.dataUrl}/v1/models/iris:predict`, { method: 'POST', body: '{}' });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
    // Said once per cause, not once per reconnect attempt.
    await expect.poll(() => served.lines.filter((l) => l.msg.includes('degraded')).length, { timeout: 10_000, interval: 25 }).toBeGreaterThan(0);
    expect(served.lines.filter((l) => l.msg.includes('TLS'))).toHaveLength(1);
  });
});
