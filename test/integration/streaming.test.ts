// Streaming service levels end to end: real SSE upstreams whose challenger is late to its first token, stalls or cuts streams.
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { behave, startUpstream, type SsePlan } from '../helpers/upstream.js';
import { startSwitchyard, type RunningSwitchyard } from '../helpers/switchyard.js';
import { runCli } from '../helpers/cli.js';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

const token = 'test-admin-token';
const usage = JSON.stringify({ choices: [], usage: { prompt_tokens: 9, completion_tokens: 10, total_tokens: 19 } });

/** Ten token events, the first `firstMs` after the headers and the others `gapMs` apart, then usage and [DONE]. */
function tokens(firstMs: number, gapMs: number, options: { stallAt?: number; stallMs?: number; done?: boolean } = {}): SsePlan {
  const pieces = Array.from({ length: 10 }, (_, i) => ({
    afterMs: i === 0 ? firstMs : i === options.stallAt ? (options.stallMs ?? 0) : gapMs,
    data: JSON.stringify({ choices: [{ delta: { content: `t${i}` } }] }),
  }));
  pieces.push({ afterMs: 0, data: usage });
  if (options.done !== false) pieces.push({ afterMs: 0, data: '[DONE]' });
  return { pieces };
}

function policy(champion: string, challenger: string, streaming: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  return {
    routes: [
      {
        name: 'chat',
        match: { pathPrefix: '/v1/chat' },
        champion: { name: 'chat-v1', url: champion },
        challengers: [{ name: 'chat-v2', url: challenger, mode: 'canary', percent: 50 }],
        stickiness: { header: 'x-user-id' },
        timeouts: { connectMs: 1000, requestMs: 5000 },
        guardrails: { minRequests: 30, plannedRequests: 1000, latency: { baselineRequests: 50 } },
        streaming,
        ...extra,
      },
    ],
  };
}

interface Load {
  sent: number;
  /** 200 answers read to their end. */
  ok: number;
  bodies: Map<string, number>;
  /** Resolves when every worker has stopped (after `limit` answers, or `stop`). */
  done: Promise<void>;
  stop(): Promise<void>;
}

/** Closed-loop streaming clients with fresh sticky keys, each reading every answer to its end, until stopped or `limit` answers. */
function startLoad(base: string, concurrency: number, limit = Infinity): Load {
  let running = true;
  let n = 0;
  const load: Load = {
    sent: 0,
    ok: 0,
    bodies: new Map(),
    done: Promise.resolve(),
    stop: async () => {
      running = false;
      await load.done;
    },
  };
  const worker = async () => {
    while (running && load.sent < limit) {
      load.sent++;
      const res = await request(`${base}/v1/chat/completions`, { method: 'POST', body: '{"stream":true}', headers: { 'content-type': 'application/json', 'x-user-id': `user-${n++}` } });
      const text = await res.body.text();
      const variant = String(res.headers['x-switchyard-variant']);
      if (res.statusCode === 200) load.ok++;
      if (text.includes('[DONE]')) load.bodies.set(variant, (load.bodies.get(variant) ?? 0) + 1);
    }
  };
  load.done = Promise.all(Array.from({ length: concurrency }, worker)).then(() => undefined);
  return load;
}

interface Analysis {
  phase: string;
  rollbackReason: string | null;
  guardrails: { name: string; state: string; reason: string; nChampion: number; nChallenger: number }[];
}

async function analysis(swy: RunningSwitchyard): Promise<Analysis> {
  return (await (await request(`${swy.adminUrl}/v1/routes/chat/analysis`)).body.json()) as Analysis;
}

describe('streaming guardrails', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });

  async function setup(champion: (n: number) => SsePlan, challenger: (n: number) => SsePlan, streaming: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
    const a = await startUpstream(behave.sseScript(champion));
    const b = await startUpstream(behave.sseScript(challenger));
    cleanup.push(() => a.close(), () => b.close());
    const swy = await startSwitchyard(policy(a.url, b.url, streaming, extra), { adminTokens: [{ name: 'ci', secret: token }], controlIntervalMs: 100 });
    cleanup.push(() => swy.close());
    return swy;
  }

  async function rolledBack(swy: RunningSwitchyard, timeout: number): Promise<Analysis> {
    await expect.poll(async () => (await analysis(swy)).phase, { timeout, interval: 50 }).toBe('rolled_back');
    return analysis(swy);
  }

  it('rolls back a challenger whose first token comes 300 ms later at the same total time, naming TTFT', async () => {
    // Champion: first token at 20 ms, then 40 ms apart (380 ms). Challenger: first at 320 ms, then 7 ms apart (383 ms).
    const swy = await setup(() => tokens(20, 40), () => tokens(320, 7));
    const load = startLoad(swy.dataUrl, 24);
    cleanup.push(() => load.stop());
    const a = await rolledBack(swy, 30_000);
    await load.stop();
    expect(a.rollbackReason).toBe('ttft_log_mean');
    const ttft = a.guardrails.find((g) => g.name === 'ttft_log_mean')!;
    expect(ttft.state).toBe('breach');
    expect(ttft.reason).toContain('time to first token');
    // The total time was the same: the latency guardrails did not see it.
    expect(a.guardrails.find((g) => g.name === 'latency_log_mean')!.state).not.toBe('breach');
    const events = (await (await request(`${swy.adminUrl}/v1/events?route=chat`)).body.json()) as { events: { action: string; detail: { reason: string } }[] };
    expect(events.events.find((e) => e.action === 'rollback')!.detail.reason).toBe('ttft_log_mean');
    const metrics = await (await request(`${swy.adminUrl}/metrics`)).body.text();
    expect(metrics).toMatch(/switchyard_stream_ttft_seconds_bucket\{le="0.5",route="chat",variant="chat-v2"\} [1-9]/);
    expect(metrics).toMatch(/switchyard_stream_ttft_seconds_bucket\{le="0.25",route="chat",variant="chat-v2"\} 0\n/);
    expect(metrics).toMatch(/switchyard_stream_output_tokens_sum\{route="chat",variant="chat-v1"\} [1-9]/);
    expect(metrics).toMatch(/switchyard_stream_gap_seconds_count\{route="chat",variant="chat-v1"\} [1-9]/);
    expect(metrics).toMatch(/switchyard_rollbacks_total\{route="chat",reason="ttft_log_mean"\} 1/);
  });

  it('measures a shadow\'s streamed answers too: its pair records carry them and the shadow gate judges its TTFT', async () => {
    // The shadow's first token comes 300 ms after the champion's; nobody waits for it, but the gate must say so.
    const predictions = { protocol: 'json', pointer: '/choices/0/delta/content', kind: 'text' };
    const a = await startUpstream(behave.sseScript(() => tokens(20, 40)));
    const b = await startUpstream(behave.sseScript(() => tokens(320, 7)));
    cleanup.push(() => a.close(), () => b.close());
    const shadowPolicy = policy(a.url, b.url, {}, { challengers: [{ name: 'chat-v2', url: b.url, mode: 'shadow', percent: 100 }], predictions });
    const shadowed = await startSwitchyard(shadowPolicy, { adminTokens: [{ name: 'ci', secret: token }], controlIntervalMs: 100 });
    cleanup.push(() => shadowed.close());
    const load = startLoad(shadowed.dataUrl, 8, 80);
    await load.done;
    expect(load.bodies.get('chat-v1')).toBe(80);

    type Gate = { verdicts: { name: string; state: string; nChallenger: number }[] };
    const gate = async () => ((await (await request(`${shadowed.adminUrl}/v1/routes/chat/analysis`)).body.json()) as { shadowGates: Gate[] }).shadowGates[0]!;
    await expect.poll(async () => (await gate()).verdicts.find((v) => v.name === 'ttft_log_mean')?.state, { timeout: 15_000, interval: 100 }).toBe('breach');
    const metrics = await (await request(`${shadowed.adminUrl}/metrics`)).body.text();
    expect(metrics).toMatch(/switchyard_stream_ttft_seconds_bucket\{le="0.25",route="chat",variant="chat-v2"\} 0\n/);
    expect(metrics).toMatch(/switchyard_stream_ttft_seconds_count\{route="chat",variant="chat-v2"\} [1-9]/);

    await shadowed.app.recorder.flush();
    const dir = path.join(shadowed.dir, 'pairs');
    const lines: { type: string; shadow?: { stream?: { ttftMs: number; interrupted: boolean } } }[] = [];
    for (const file of await readdir(dir)) for (const line of (await readFile(path.join(dir, file), 'utf8')).split('\n')) if (line !== '') lines.push(JSON.parse(line) as (typeof lines)[number]);
    const pairs = lines.filter((r) => r.type === 'pair');
    expect(pairs.length).toBeGreaterThan(0);
    for (const pair of pairs) {
      expect(pair.shadow?.stream?.ttftMs).toBeGreaterThanOrEqual(300);
      expect(pair.shadow?.stream?.interrupted).toBe(false);
    }
  });

  it('rolls back a challenger that stalls mid-stream on 5 % of its answers, on the gap guardrail', async () => {
    // Every 20th challenger answer waits 400 ms before its sixth token; the threshold is 150 ms, ordinary gaps are 5 ms.
    const swy = await setup(() => tokens(5, 5), (n) => tokens(5, 5, n % 20 === 0 ? { stallAt: 5, stallMs: 400 } : {}), { gaps: { thresholdMs: 150 } });
    const load = startLoad(swy.dataUrl, 32);
    cleanup.push(() => load.stop());
    const a = await rolledBack(swy, 60_000);
    await load.stop();
    expect(a.rollbackReason).toBe('stream_gap_exceedance');
    expect(a.guardrails.find((g) => g.name === 'stream_gap_exceedance')!.reason).toContain('gap between chunks over the threshold');
  });

  it('rolls back a challenger that cuts 5 % of its streams before [DONE], on the interruption guardrail', async () => {
    const swy = await setup(() => tokens(5, 5), (n) => tokens(5, 5, { done: n % 20 !== 0 }));
    const load = startLoad(swy.dataUrl, 32);
    cleanup.push(() => load.stop());
    const a = await rolledBack(swy, 60_000);
    await load.stop();
    expect(a.rollbackReason).toBe('stream_interruptions');
    const metrics = await (await request(`${swy.adminUrl}/metrics`)).body.text();
    expect(metrics).toMatch(/switchyard_stream_interrupted_total\{route="chat",variant="chat-v2"\} [1-9]/);
    expect(metrics).not.toMatch(/switchyard_stream_interrupted_total\{route="chat",variant="chat-v1"\} [1-9]/);
  });

  it('keeps a healthy streaming challenger: every streaming guardrail judged, none in breach', async () => {
    const swy = await setup(() => tokens(5, 5), () => tokens(5, 5), { gaps: { thresholdMs: 150 } });
    const load = startLoad(swy.dataUrl, 16, 600);
    await load.done;
    expect(load.bodies.get('chat-v1')).toBeGreaterThan(100);
    expect(load.bodies.get('chat-v2')).toBeGreaterThan(100);
    const names = ['ttft_log_mean', 'stream_gap_exceedance', 'stream_interruptions'];
    // The controller ticks every 100 ms: wait until a tick has judged the answers. Those served before its first tick
    // (at most one round of the 16 clients) may fall before the experiment opened; the rest must all be in.
    const judged = async () => (await analysis(swy)).guardrails.filter((g) => names.includes(g.name)).map((g) => `${g.name}:${g.state === 'collecting' ? 'collecting' : 'judged'}:${g.nChampion + g.nChallenger >= load.ok - 16 ? 'all' : g.nChampion + g.nChallenger}`);
    await expect.poll(judged, { timeout: 10_000, interval: 50 }).toEqual(names.map((name) => `${name}:judged:all`));
    const a = await analysis(swy);
    expect(a.phase).not.toBe('rolled_back');
    expect(a.guardrails.filter((g) => g.state === 'breach')).toEqual([]);
  });

  it('writes each streamed answer to the served records, and the offline report shows the streaming columns', async () => {
    // Every other challenger answer ends without [DONE]; usage says 10 tokens.
    const swy = await setup(() => tokens(5, 5), (n) => tokens(5, 5, { done: n % 2 === 0 }), {}, { predictions: { protocol: 'openai', sampleRate: 1 } });
    const load = startLoad(swy.dataUrl, 8, 80);
    await load.done;
    const dir = path.join(swy.dir, 'pairs');
    const served = async () => {
      const lines: { type: string; variant: string; stream?: { ttftMs: number; interrupted: boolean; tokens: number; tokensFromUsage: boolean; gaps: number } }[] = [];
      for (const f of (await readdir(dir).catch(() => [] as string[])).filter((name) => name.endsWith('.ndjson'))) {
        for (const line of (await readFile(path.join(dir, f), 'utf8')).split('\n')) if (line) lines.push(JSON.parse(line) as (typeof lines)[number]);
      }
      return lines.filter((r) => r.type === 'served');
    };
    await expect.poll(async () => (await served()).length, { timeout: 10_000, interval: 50 }).toBe(80);
    const records = await served();
    for (const r of records) expect(r.stream).toMatchObject({ tokens: 10, tokensFromUsage: true, gaps: expect.any(Number) as number });
    const challenger = records.filter((r) => r.variant === 'chat-v2');
    expect(challenger.filter((r) => r.stream!.interrupted).length).toBe(Math.floor(challenger.length / 2));
    expect(records.filter((r) => r.variant === 'chat-v1' && r.stream!.interrupted)).toEqual([]);
    const report = await runCli(['report', dir]);
    expect(report.code).toBe(0);
    expect(report.stdout).toMatch(/stream chat-v1 +\d+ streams: TTFT median [\d.]+ ms, p95 [\d.]+ ms; .*interrupted 0\.0%; tokens median 10/);
    expect(report.stdout).toMatch(/stream chat-v2 +\d+ streams: .*interrupted (4\d|5\d)\.\d%/);
  });
});
