// Approval gates with two replicas on Redis: the follower mirrors the leader's gate, refuses an approval naming the
// leader, and follows the leader once it is approved there.
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { behave, startUpstream } from '../helpers/upstream.js';
import { startSwitchyard, type RunningSwitchyard } from '../helpers/switchyard.js';

const token = 'replica-gates-token';
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

interface Analysis { phase: string; role: string; leader: string | null; step: { index: number } | null; approval: { step: number } | null }
const analysis = async (swy: RunningSwitchyard): Promise<Analysis> => (await (await request(`${swy.adminUrl}/v1/routes/iris/analysis`)).body.json()) as Analysis;

describe('approval gates across replicas', { timeout: 90_000 }, () => {
  it('reports the gate on every replica; only the leader takes the approval, and the follower follows', async () => {
    const champion = await startUpstream(behave.json('a'));
    const challenger = await startUpstream(behave.json('a'));
    cleanup.push(() => champion.close(), () => challenger.close());
    const policy = {
      routes: [{
        name: 'iris', match: { pathPrefix: '/v1/models/iris' }, champion: { name: 'iris-v1', url: champion.url },
        challengers: [{ name: 'iris-v2', url: challenger.url, mode: 'canary', percent: 0 }], stickiness: { header: 'x-user-id' },
        guardrails: { minRequests: 40, latency: { baselineRequests: 50, ratio: 1.5 } },
        rollout: { steps: [10, 50, 100], minDuration: '300ms', minRequests: 60, approve: [50] },
      }],
    };
    const prefix = `gates-${randomUUID().slice(0, 8)}`;
    const replicas: RunningSwitchyard[] = [];
    for (const id of ['gate-a', 'gate-b']) {
      const swy = await startSwitchyard(policy, { adminTokens: [{ name: 'ci', secret: token }], controlIntervalMs: 100, coordination: { redisUrl: 'redis://127.0.0.1:6379', prefix, instanceId: id, intervalMs: 100, leaseMs: 1_000 } });
      cleanup.push(() => swy.close());
      replicas.push(swy);
    }
    let running = true;
    let n = 0;
    const workers = Array.from({ length: 12 }, async (_, w) => {
      while (running) {
        const res = await request(`${replicas[w % 2]!.dataUrl}/v1/models/iris:predict`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json', 'x-user-id': `u-${n++}` } });
        await res.body.dump();
      }
    });
    cleanup.push(async () => { running = false; await Promise.all(workers); });

    await expect.poll(async () => (await Promise.all(replicas.map(analysis))).map((a) => a.phase), { timeout: 45_000, interval: 100 }).toEqual(['awaiting_approval', 'awaiting_approval']);
    const views = await Promise.all(replicas.map(analysis));
    const leaderIndex = views.findIndex((a) => a.role === 'leader');
    expect(leaderIndex).toBeGreaterThanOrEqual(0);
    const leader = replicas[leaderIndex]!;
    const follower = replicas[1 - leaderIndex]!;
    expect(views[1 - leaderIndex]).toMatchObject({ role: 'follower', approval: { step: 1 } });

    const approve = async (swy: RunningSwitchyard) => {
      const res = await request(`${swy.adminUrl}/v1/routes/iris/approve`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{"step":1}' });
      return { status: res.statusCode, body: (await res.body.json()) as { error?: { code: string; message: string } } };
    };
    const refused = await approve(follower);
    expect(refused).toMatchObject({ status: 409, body: { error: { code: 'SWY_ERR_CONFLICT' } } });
    expect(refused.body.error!.message).toContain(`follows the leader of route iris (${views[leaderIndex]!.leader ?? ''})`);
    expect(await approve(leader)).toMatchObject({ status: 200 });
    await expect.poll(async () => (await Promise.all(replicas.map(analysis))).map((a) => (a.step?.index ?? -1) >= 1 || a.phase === 'promoted'), { timeout: 30_000, interval: 100 }).toEqual([true, true]);
  });
});
