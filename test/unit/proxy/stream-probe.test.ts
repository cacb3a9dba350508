// The stream probe on real buffers: terminal markers split across chunks, usage from the last event, counted events, cuts.
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../../src/metrics/registry.js';
import { DataPathMetrics } from '../../../src/proxy/data-path-metrics.js';
import { isEventStream, StreamProbe } from '../../../src/proxy/stream-probe.js';
import type { Arm, CompiledStreaming } from '../../../src/decision/snapshot.js';

const arm: Arm = Object.freeze({ index: 1, name: 'v2', role: 'challenger', origin: 'http://127.0.0.1:1', basePath: '', fallback: false });

function probe(terminal: string | null, options: { sse?: boolean; gapThresholdMs?: number } = {}): { probe: StreamProbe; metrics: Metrics } {
  const metrics = new Metrics({ defaultMetrics: false });
  const policy: CompiledStreaming = { terminal: terminal === null ? null : Buffer.from(terminal), gapThresholdMs: options.gapThresholdMs ?? 1_000 };
  return { probe: new StreamProbe(performance.now(), policy, new DataPathMetrics(metrics).forArm('chat', arm, false).streams(), options.sse ?? true), metrics };
}

const event = (data: string) => Buffer.from(`data: ${data}\n\n`);

describe('StreamProbe', () => {
  it('finds the terminal marker split between two chunks, and counts the events before it as tokens', () => {
    const { probe: p } = probe('[DONE]');
    for (let i = 0; i < 5; i++) p.chunk(event(`{"choices":[{"delta":{"content":"t${i}"}}]}`));
    p.chunk(Buffer.from('data: [DO'));
    p.chunk(Buffer.from('NE]\n\n'));
    const s = p.end(true);
    expect(s).toMatchObject({ interrupted: false, tokens: 5, tokensFromUsage: false, gaps: 6 });
    expect(s.ttftMs).toBeGreaterThanOrEqual(0);
  });

  it('takes output tokens from the usage of the last event, even with the usage details after it', () => {
    const { probe: p } = probe('[DONE]');
    p.chunk(event('{"choices":[{"delta":{"content":"a"}}]}'));
    const details = '"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}';
    p.chunk(event(`{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":42,"total_tokens":51,${details}}}`));
    p.chunk(event('[DONE]'));
    expect(p.end(true)).toMatchObject({ interrupted: false, tokens: 42, tokensFromUsage: true });
  });

  it('calls a stream that ends without its marker, or that was cut, interrupted and counts it', async () => {
    const { probe: ended, metrics } = probe('[DONE]');
    ended.chunk(event('{"x":1}'));
    expect(ended.end(true).interrupted).toBe(true);
    const { probe: cut } = probe('[DONE]');
    cut.chunk(event('[DONE]'));
    cut.cut();
    expect(cut.end(true).interrupted).toBe(true);
    const exposed = await metrics.registry.metrics();
    expect(exposed).toContain('switchyard_stream_interrupted_total{route="chat",variant="v2"} 1');
  });

  it('without a terminal marker only a cut interrupts; a chunked body counts chunks as tokens', () => {
    const { probe: p } = probe(null, { sse: false });
    for (let i = 0; i < 7; i++) p.chunk(Buffer.from(`{"token":${i}}\n`));
    expect(p.end(true)).toMatchObject({ interrupted: false, tokens: 7 });
  });

  it('keeps the end of an answer larger than its tail', () => {
    const { probe: p } = probe('[DONE]');
    p.chunk(Buffer.concat([Buffer.alloc(5_000, 'x'), event('[DONE]')]));
    expect(p.end(true).interrupted).toBe(false);
    const { probe: q } = probe('[DONE]');
    q.chunk(event('[DONE]'));
    q.chunk(Buffer.alloc(600, 'y'));
    expect(q.end(true).interrupted).toBe(true);
  });

  it('counts gaps over the threshold, and leaves out the gap after a pause for a slow client', () => {
    const { probe: p } = probe('[DONE]', { gapThresholdMs: -1 });
    for (let i = 0; i < 4; i++) p.chunk(event(String(i)));
    p.pausedForClient();
    p.chunk(event('[DONE]'));
    expect(p.end(true)).toMatchObject({ gaps: 3, gapsOver: 3, interrupted: false });
  });

  it('does not count a client fault in the metrics', async () => {
    const { probe: p, metrics } = probe('[DONE]');
    p.chunk(event('x'));
    p.cut();
    expect(p.end(false).interrupted).toBe(true);
    expect(await metrics.registry.metrics()).not.toMatch(/switchyard_stream_interrupted_total\{[^}]*\} [1-9]/);
  });
});

describe('isEventStream', () => {
  it('knows text/event-stream in any case, with parameters, and nothing else', () => {
    expect(isEventStream('text/event-stream')).toBe(true);
    expect(isEventStream('Text/Event-Stream; charset=utf-8')).toBe(true);
    expect(isEventStream('text/plain')).toBe(false);
    expect(isEventStream('application/json')).toBe(false);
    expect(isEventStream(null)).toBe(false);
  });
});
