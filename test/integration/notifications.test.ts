// Notifications through real HTTP receivers on 127.0.0.1: Slack text, CloudEvents 1.0 structured JSON, HMAC-signed JSON; retries on 5xx and 429, none on 400; bounded queue; counted.
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { pino } from 'pino';
import { AuditLog } from '../../src/control/audit.js';
import { Notifier, SIGNATURE_HEADER, TIMESTAMP_HEADER } from '../../src/control/notifier.js';
import { notifyConfigFromEnv, parseNotifyConfig } from '../../src/control/notify-config.js';
import { parseAdminTokens } from '../../src/admin/auth.js';
import { Metrics } from '../../src/metrics/registry.js';
import { metric } from '../helpers/metrics.js';
import { quickRolloutPolicy, routePolicy, startSwitchyard, type RunningSwitchyard } from '../helpers/switchyard.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';

interface Received { headers: IncomingHttpHeaders; body: string }

/** A receiver answering each request with the next status of `script` (the last one repeats); `hold` keeps requests unanswered until released. */
async function receiver(script: number[] = [200], options: { hold?: boolean } = {}) {
  const received: Received[] = [];
  const held: (() => void)[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const status = script[Math.min(received.length - 1, script.length - 1)]!;
      const answer = () => res.writeHead(status, status === 429 ? { 'retry-after': '0' } : {}).end();
      if (options.hold) held.push(answer);
      else answer();
      for (const w of waiters.filter((w) => received.length >= w.n)) w.resolve();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return {
    url,
    received,
    waitFor: (n: number) => new Promise<void>((resolve) => (received.length >= n ? resolve() : waiters.push({ n, resolve }))),
    release: () => held.splice(0).forEach((answer) => answer()),
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close').catch(() => undefined);
    },
  };
}

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

const fast = { attempts: 4, baseDelayMs: 5, maxDelayMs: 20, timeoutMs: 2_000 };
const SECRET = `s-${randomUUID()}`;

/** How a receiver verifies a signed delivery (docs/notifications.md): HMAC-SHA256 of `<timestamp>.<raw body>`. */
function verify(received: Received, key: string, maxAgeSeconds = 300): boolean {
  const timestamp = String(received.headers[TIMESTAMP_HEADER]);
  const given = Buffer.from(String(received.headers[SIGNATURE_HEADER]));
  const expected = Buffer.from(`sha256=${createHmac('sha256', key).update(`${timestamp}.${received.body}`).digest('hex')}`);
  const fresh = Math.abs(Date.now() / 1000 - Number(timestamp)) <= maxAgeSeconds;
  return fresh && given.length === expected.length && timingSafeEqual(given, expected);
}

describe('notifications from a real rollback', () => {
  let swy: RunningSwitchyard;
  let champion: Upstream;
  let challenger: Upstream;

  it('posts a readable Slack message, a CloudEvent and a signed JSON event, and counts them', async () => {
    const slack = await receiver();
    const cloud = await receiver();
    const signed = await receiver();
    closers.push(slack.close, cloud.close, signed.close);
    champion = await startUpstream();
    challenger = await startUpstream();
    closers.push(() => champion.close(), () => challenger.close());
    const notify = parseNotifyConfig({
      sinks: [
        { name: 'releases', kind: 'slack', url: slack.url, events: ['rollback', 'promote'] },
        { name: 'bus', kind: 'cloudevents', url: cloud.url },
        { name: 'ci', kind: 'json', url: signed.url, secretEnv: 'TEST_HOOK_SECRET', routes: ['iris'] },
      ],
      retry: fast,
    }, 'test', { TEST_HOOK_SECRET: SECRET });
    const token = `t-${randomUUID()}`;
    swy = await startSwitchyard(routePolicy(champion.url, [{ url: challenger.url, percent: 20 }]), { notify, adminTokens: parseAdminTokens({ token }) });
    closers.push(() => swy.close());
    // Traffic first, so the rollback's evidence has counts for both arms.
    for (let i = 0; i < 30; i++) {
      const served = await request(`${swy.dataUrl}/v1/models/iris:predict`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json', 'x-user-id': `u${i}` } });
      await served.body.dump();
    }
    // The rollback's evidence is what the controller last judged: wait until a tick has seen the challenger's requests.
    await expect.poll(async () => {
      const analysis = (await (await request(`${swy.adminUrl}/v1/routes/iris/analysis`)).body.json()) as { guardrails: { nChallenger: number }[] };
      return Math.max(0, ...analysis.guardrails.map((g) => g.nChallenger));
    }, { timeout: 10_000 }).toBeGreaterThan(0);

    const res = await request(`${swy.adminUrl}/v1/routes/iris/rollback`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
    await Promise.all([slack.waitFor(1), cloud.waitFor(1), signed.waitFor(1)]);
    await swy.app.notifier.settle();

    const text = (JSON.parse(slack.received[0]!.body) as { text: string }).text;
    expect(text).toContain('*Rollback* of route `iris`');
    expect(text).toContain('reason: *manual*');
    expect(text).toMatch(/iris-v2 \(challenger\): [1-9]\d* requests, errors 0\.00 %/);

    expect(cloud.received[0]!.headers['content-type']).toBe('application/cloudevents+json; charset=utf-8');
    const event = JSON.parse(cloud.received[0]!.body) as Record<string, unknown>;
    expect(event).toMatchObject({ specversion: '1.0', type: 'io.switchyard.rollback', subject: 'iris', datacontenttype: 'application/json' });
    expect(typeof event.id).toBe('string');
    expect(String(event.source)).toMatch(/^\/switchyard\//);
    expect(Number.isNaN(Date.parse(String(event.time)))).toBe(false);
    expect(event.data).toMatchObject({ type: 'rollback', route: 'iris', action: 'rollback', detail: { reason: 'manual' } });

    expect(verify(signed.received[0]!, SECRET)).toBe(true);
    expect(verify({ ...signed.received[0]!, body: signed.received[0]!.body.replace('manual', 'manuaL') }, SECRET)).toBe(false);
    expect(verify(signed.received[0]!, 'another-secret-of-16+')).toBe(false);
    expect(JSON.parse(signed.received[0]!.body)).toMatchObject({ type: 'rollback', route: 'iris', who: 'admin' });

    for (const sink of ['releases', 'bus', 'ci']) {
      expect(await metric(swy.adminUrl, `switchyard_notifications_total{sink="${sink}",event="rollback",result="delivered"}`)).toBe(1);
      expect(await metric(swy.adminUrl, `switchyard_notifications_total{sink="${sink}",event="rollback",result="failed"}`)).toBe(0);
    }
    // The Slack sink asked for rollback and promote only: no step series.
    expect(await metric(swy.adminUrl, 'switchyard_notifications_total{sink="releases",event="promote",result="delivered"}')).toBe(0);
    expect((await swy.app.trail.page({ limit: 10, actions: ['rollback'] })).events).toHaveLength(1);
  });

  it('keeps SWITCHYARD_WEBHOOK_URLS working (JSON posts, signed with SWITCHYARD_WEBHOOK_SECRET)', async () => {
    const hook = await receiver();
    closers.push(hook.close);
    champion = await startUpstream();
    challenger = await startUpstream();
    closers.push(() => champion.close(), () => challenger.close());
    const token = `t-${randomUUID()}`;
    swy = await startSwitchyard(routePolicy(champion.url, [{ url: challenger.url, percent: 20 }]), { webhookUrls: [hook.url], webhookSecret: SECRET, adminTokens: parseAdminTokens({ token }) });
    closers.push(() => swy.close());
    const res = await request(`${swy.adminUrl}/v1/routes/iris/rollback`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    await res.body.dump();
    await hook.waitFor(1);
    expect(JSON.parse(hook.received[0]!.body)).toMatchObject({ type: 'rollback', route: 'iris' });
    expect(verify(hook.received[0]!, SECRET)).toBe(true);
  });
});

describe('a rollout through an approval gate', () => {
  it('notifies the step, the approval it waits for, and the promotion a person makes', { timeout: 60_000 }, async () => {
    const slack = await receiver();
    closers.push(slack.close);
    const champion = await startUpstream();
    const challenger = await startUpstream();
    closers.push(() => champion.close(), () => challenger.close());
    const token = `t-${randomUUID()}`;
    const swy = await startSwitchyard(quickRolloutPolicy(champion.url, challenger.url, { approve: [50] }), { adminTokens: parseAdminTokens({ token }), controlIntervalMs: 100, notify: parseNotifyConfig({ sinks: [{ name: 'releases', kind: 'slack', url: slack.url }], retry: fast }, 'test') });
    closers.push(() => swy.close());
    let running = true;
    let n = 0;
    const load = (async () => {
      while (running) {
        const res = await request(`${swy.dataUrl}/v1/models/iris:predict`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json', 'x-user-id': `user-${n++}` } });
        await res.body.dump();
      }
    })();
    closers.push(async () => {
      running = false;
      await load;
    });
    const texts = () => slack.received.map((r) => (JSON.parse(r.body) as { text: string }).text);
    await expect.poll(() => texts().some((t) => t.includes('*Approval needed* on route `iris`')), { timeout: 30_000 }).toBe(true);
    expect(texts().find((t) => t.includes('*Rollout step*'))).toContain('challenger iris-v2 at 10 %');
    expect(texts().find((t) => t.includes('*Approval needed*'))).toContain('before step 1 (50 %): run `switchyard approve iris`');
    const promoted = await request(`${swy.adminUrl}/v1/routes/iris/promote`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ note: 'looks good' }) });
    expect(promoted.statusCode).toBe(200);
    await promoted.body.dump();
    await expect.poll(() => texts().find((t) => t.includes('*Promoted*'))).toContain('challenger iris-v2 now takes 100 % (by admin)');
    expect(await metric(swy.adminUrl, 'switchyard_notifications_total{sink="releases",event="approval.needed",result="delivered"}')).toBe(1);
    expect(await metric(swy.adminUrl, 'switchyard_notifications_total{sink="releases",event="promote",result="delivered"}')).toBe(1);
  });
});

describe('a flag that goes stale', () => {
  it('is audited once as flag.stale and notified when Unleash stays unreachable past the threshold', async () => {
    const slack = await receiver();
    closers.push(slack.close);
    const champion = await startUpstream();
    const challenger = await startUpstream();
    closers.push(() => champion.close(), () => challenger.close());
    // A port nothing listens on: Unleash is unreachable from the start.
    const closed = createServer().listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const apiUrl = `http://127.0.0.1:${port}/api/`;
    const flag = `swy.stale.${randomUUID()}`;
    const swy = await startSwitchyard(
      { routes: [{ name: 'iris', match: { pathPrefix: '/v1/models/iris', methods: ['POST'] }, champion: { name: 'iris-v1', url: champion.url }, challengers: [{ name: 'iris-v2', url: challenger.url, mode: 'canary', percent: 10 }], flag: { name: flag } }] },
      {
        flags: { apiUrl, rootUrl: apiUrl.replace(/\/api\/$/, ''), apiToken: 'default:development.none', appName: 'switchyard-stale-test', environment: 'development', refreshMs: 200, disableMetrics: true },
        flagStaleAfterMs: 300,
        notify: parseNotifyConfig({ sinks: [{ name: 'releases', kind: 'slack', url: slack.url, events: ['flag.stale'] }], retry: fast }, 'test'),
      },
    );
    closers.push(() => swy.close());
    await slack.waitFor(1);
    const text = (JSON.parse(slack.received[0]!.body) as { text: string }).text;
    expect(text).toContain('*Flags stale* for route `iris`');
    const stale = (await swy.app.trail.page({ after: 0, limit: 100, actions: ['flag.stale'] })).events;
    expect(stale).toHaveLength(1);
    expect(stale[0]).toMatchObject({ who: 'flags', route: 'iris', detail: { status: 'stale', flag } });
    expect((stale[0]!.detail as { ageSeconds: number }).ageSeconds).toBeGreaterThanOrEqual(0);
  });
});

describe('delivery', () => {
  const silent = pino({ level: 'silent' });
  const setup = (url: string, extra: Record<string, unknown> = {}) => {
    const metrics = new Metrics({ defaultMetrics: false });
    const audit = new AuditLog({ file: null });
    const notifier = new Notifier(parseNotifyConfig({ sinks: [{ name: 'hook', kind: 'json', url, secret: SECRET }], retry: fast, ...extra }, 'test'), { metrics, logger: silent, instanceId: 'test-1' });
    notifier.follow(audit);
    closers.push(() => notifier.close(0));
    const count = async (event: string, result: string) => (await metrics.notifications.get()).values.find((v) => v.labels.sink === 'hook' && v.labels.event === event && v.labels.result === result)?.value ?? 0;
    return { audit, notifier, count };
  };
  const rollback = { who: 'controller', action: 'rollback', route: 'iris', before: null, after: null, detail: { reason: 'error_rate' } };

  it('retries 5xx and 429 with jitter until the receiver accepts', async () => {
    const hook = await receiver([503, 500, 429, 200]);
    closers.push(hook.close);
    const { audit, notifier, count } = setup(hook.url);
    audit.append(rollback);
    await hook.waitFor(4);
    await notifier.settle();
    expect(hook.received).toHaveLength(4);
    // Every attempt is signed afresh and carries the same body.
    expect(hook.received.every((r) => verify(r, SECRET) && r.body === hook.received[0]!.body)).toBe(true);
    expect(await count('rollback', 'delivered')).toBe(1);
    expect(await count('rollback', 'failed')).toBe(0);
  });

  it('does not retry a 400, and counts the failure', async () => {
    const hook = await receiver([400, 200]);
    closers.push(hook.close);
    const { audit, notifier, count } = setup(hook.url);
    audit.append(rollback);
    await hook.waitFor(1);
    await notifier.settle();
    expect(hook.received).toHaveLength(1);
    expect(await count('rollback', 'failed')).toBe(1);
    expect(await count('rollback', 'delivered')).toBe(0);
  });

  it('gives up after the configured attempts on a receiver that keeps failing', async () => {
    const hook = await receiver([502]);
    closers.push(hook.close);
    const { audit, notifier, count } = setup(hook.url);
    audit.append(rollback);
    await hook.waitFor(fast.attempts);
    await notifier.settle();
    expect(hook.received).toHaveLength(fast.attempts);
    expect(await count('rollback', 'failed')).toBe(1);
  });

  it('drops and counts beyond the queue bound, notifies only the notified actions, and keeps order', async () => {
    const hook = await receiver([200], { hold: true });
    closers.push(hook.close);
    const { audit, notifier, count } = setup(hook.url, { queue: { maxPerSink: 2 } });
    audit.append({ ...rollback, action: 'split.set' });
    audit.append({ ...rollback, action: 'breach' });
    audit.append({ ...rollback, action: 'rollback' });
    audit.append({ ...rollback, action: 'step' });
    audit.append({ ...rollback, action: 'promote' });
    expect(await count('step', 'dropped')).toBe(1);
    expect(await count('promote', 'dropped')).toBe(1);
    await hook.waitFor(1);
    hook.release();
    await hook.waitFor(2);
    hook.release();
    await notifier.settle();
    expect(hook.received.map((r) => r.headers['x-switchyard-event'])).toEqual(['breach', 'rollback']);
    expect(await count('breach', 'delivered')).toBe(1);
    expect(await count('rollback', 'delivered')).toBe(1);
  });
});

describe('configuration', () => {
  it('names the field in every error', () => {
    expect(() => parseNotifyConfig({ sinks: [{ name: 'a', kind: 'teams', url: 'ftp://x' }] }, 'notify.yaml')).toThrow(/notify\.yaml: sinks\[0\]\.kind: must be one of slack, cloudevents, json[\s\S]*notify\.yaml: sinks\[0\]\.url: must be an http\(s\) URL/);
    expect(() => parseNotifyConfig({ sinks: [{ name: 'a', kind: 'json', url: 'http://127.0.0.1/x' }] }, 'notify.yaml')).toThrow(/sinks\[0\]: a json sink is signed: set secretEnv/);
    expect(() => parseNotifyConfig({ sinks: [{ name: 'a', kind: 'json', url: 'http://127.0.0.1/x', secretEnv: 'NOPE_UNSET' }] }, 'notify.yaml', {})).toThrow(/sinks\[0\]\.secretEnv: the variable NOPE_UNSET must be set/);
    expect(() => parseNotifyConfig({ sinks: [{ name: 'a', kind: 'slack', url: 'http://127.0.0.1/x', events: ['deploy'] }] }, 'notify.yaml')).toThrow(/sinks\[0\]\.events\[0\]: must be one of rollback, promote/);
    expect(() => parseNotifyConfig({ sinks: [], retry: { attempts: 0 } }, 'notify.yaml')).toThrow(/retry\.attempts: must be at least 1/);
    expect(() => parseNotifyConfig({ sink: [] }, 'notify.yaml')).toThrow(/unknown field sink/);
  });

  it('reads SWITCHYARD_WEBHOOK_URLS as json sinks and refuses a bad entry by position', async () => {
    const config = await notifyConfigFromEnv({ SWITCHYARD_WEBHOOK_URLS: 'http://127.0.0.1:1/a, https://example.com/b' });
    expect(config.sinks.map((s) => [s.name, s.kind, s.key])).toEqual([['webhook-1', 'json', undefined], ['webhook-2', 'json', undefined]]);
    await expect(notifyConfigFromEnv({ SWITCHYARD_WEBHOOK_URLS: 'http://ok/a,nope' })).rejects.toThrow(/SWITCHYARD_WEBHOOK_URLS: entry 2/);
    await expect(notifyConfigFromEnv({ SWITCHYARD_NOTIFY_FILE: '/nonexistent/notify.yaml' })).rejects.toThrow(/SWITCHYARD_NOTIFY_FILE \/nonexistent\/notify\.yaml: cannot be read/);
  });
});
