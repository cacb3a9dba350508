// Measures one streamed answer on the request path: time to first byte, gaps between chunks, tokens, and whether it ended complete.
import type { CompiledStreaming } from '../decision/snapshot.js';
import type { StreamSummary } from '../record/port.js';
import type { StreamMetrics } from './data-path-metrics.js';

/** The start of a server-sent event's data field: each is an event (a token or a few, in OpenAI-style streams). */
const sseData = Buffer.from('data:');
/** OpenAI's terminal event, left out of the counted tokens even where no terminal is required. */
const openAiDone = Buffer.from('[DONE]');
/** Present in the tail only when the last events report usage; the usage pattern is matched only then. */
const tokensKey = Buffer.from('_tokens"');
/** Output tokens as OpenAI (completion_tokens) and Anthropic or the Responses API (output_tokens) report them; the last one wins. */
const usagePattern = /"(?:completion_tokens|output_tokens)"\s*:\s*(\d+)/g;
/**
 * Bytes of the answer's end kept: the terminal marker is the last thing a complete answer sends, and the usage of an
 * OpenAI stream sits in the event before it (its details take ~250 bytes after completion_tokens).
 */
const TAIL_BYTES = 512;

/** How a text/event-stream answer of a route without a streaming policy is measured: no terminal marker is assumed. */
export const unconfiguredStreaming: CompiledStreaming = Object.freeze({ terminal: null, gapThresholdMs: 1_000 });

/** True for a text/event-stream content type (case-insensitive, parameters allowed). */
export function isEventStream(contentType: string | null): boolean {
  // One character test first: almost every answer is application/json and leaves here.
  return contentType !== null && (contentType.charCodeAt(0) | 0x20) === 0x74 && /^text\/event-stream/i.test(contentType);
}

/** True when `tail`, trailing whitespace aside, ends with `marker`. */
function endsWithMarker(tail: Buffer, length: number, marker: Buffer): boolean {
  let end = length;
  while (end > 0) {
    const c = tail[end - 1]!;
    if (c !== 0x0a && c !== 0x0d && c !== 0x20 && c !== 0x09) break;
    end--;
  }
  const start = end - marker.length;
  return start >= 0 && tail.compare(marker, 0, marker.length, start, end) === 0;
}

/**
 * One streamed answer. Per chunk it does a few comparisons, one histogram observation, a native search for SSE events
 * and a copy of at most TAIL_BYTES into its preallocated tail: nothing is allocated per chunk. The summary is built
 * once, when the answer ends (`end`).
 */
export class StreamProbe {
  readonly #startedAt: number;
  readonly #policy: CompiledStreaming;
  readonly #metrics: StreamMetrics;
  readonly #sse: boolean;
  #firstAt = -1;
  #lastAt = 0;
  #gaps = 0;
  #gapsOver = 0;
  #maxGapMs = 0;
  #chunks = 0;
  #events = 0;
  #cut = false;
  /** The gap after a back-pressure pause is the client's pace, not the upstream's: it is not counted. */
  #skipGap = false;
  readonly #tail = Buffer.allocUnsafe(TAIL_BYTES);
  #tailLength = 0;

  /** `startedAt`: the exchange's upstream start (performance.now()), the origin of its latency. */
  constructor(startedAt: number, policy: CompiledStreaming, metrics: StreamMetrics, sse: boolean) {
    this.#startedAt = startedAt;
    this.#policy = policy;
    this.#metrics = metrics;
    this.#sse = sse;
  }

  chunk(data: Buffer): void {
    const now = performance.now();
    if (this.#firstAt < 0) this.#firstAt = now;
    else if (this.#skipGap) this.#skipGap = false;
    else {
      const gap = now - this.#lastAt;
      this.#gaps++;
      if (gap > this.#policy.gapThresholdMs) this.#gapsOver++;
      if (gap > this.#maxGapMs) this.#maxGapMs = gap;
      this.#metrics.gap.observe(gap / 1000);
    }
    this.#lastAt = now;
    this.#chunks++;
    if (this.#sse) {
      // An event whose "data:" is split between two chunks is missed; usage, when reported, replaces the count.
      for (let at = data.indexOf(sseData); at !== -1; at = data.indexOf(sseData, at + 5)) this.#events++;
    }
    this.#keepTail(data);
  }

  /** The data path paused the upstream because the client reads slowly: the next gap is not the upstream's. */
  pausedForClient(): void {
    this.#skipGap = true;
  }

  /** The upstream failed (or the client left) after the headers: the answer is incomplete whatever it sent. */
  cut(): void {
    this.#cut = true;
  }

  #keepTail(data: Buffer): void {
    const tail = this.#tail;
    const n = data.length;
    if (n >= TAIL_BYTES) {
      data.copy(tail, 0, n - TAIL_BYTES, n);
      this.#tailLength = TAIL_BYTES;
      return;
    }
    const overflow = this.#tailLength + n - TAIL_BYTES;
    if (overflow > 0) {
      tail.copyWithin(0, overflow, this.#tailLength);
      this.#tailLength -= overflow;
    }
    data.copy(tail, this.#tailLength);
    this.#tailLength += n;
  }

  /** The usage the last events reported, or null. */
  #usage(): number | null {
    const tail = this.#tail.subarray(0, this.#tailLength);
    if (tail.indexOf(tokensKey) === -1) return null;
    let found: number | null = null;
    usagePattern.lastIndex = 0;
    for (let m = usagePattern.exec(tail.toString('latin1')); m !== null; m = usagePattern.exec(m.input)) found = Number(m[1]);
    return found;
  }

  /**
   * The answer ended (or failed): its summary. `evidence`: the outcome is the variant's (not a client fault), so it is
   * counted in the arm's streaming metrics.
   */
  end(evidence: boolean): StreamSummary {
    const now = performance.now();
    const terminal = this.#policy.terminal;
    const ended = endsWithMarker(this.#tail, this.#tailLength, terminal ?? openAiDone);
    const interrupted = this.#cut || (terminal !== null && !ended);
    const usage = this.#usage();
    // The terminal event is no token.
    const counted = this.#sse ? this.#events - (ended ? 1 : 0) : this.#chunks;
    const tokens = usage ?? Math.max(0, counted);
    const firstAt = this.#firstAt < 0 ? now : this.#firstAt;
    const generationMs = this.#lastAt - firstAt;
    const summary: StreamSummary = {
      ttftMs: firstAt - this.#startedAt,
      gaps: this.#gaps,
      gapsOver: this.#gapsOver,
      maxGapMs: this.#maxGapMs,
      gapThresholdMs: this.#policy.gapThresholdMs,
      interrupted,
      tokens,
      tokensFromUsage: usage !== null,
      tokensPerSecond: generationMs > 0 ? (tokens * 1000) / generationMs : null,
    };
    if (evidence) {
      const m = this.#metrics;
      m.ttft.observe(summary.ttftMs / 1000);
      m.tokens.observe(tokens);
      if (summary.tokensPerSecond !== null) m.tokensPerSecond.observe(summary.tokensPerSecond);
      if (interrupted) m.interrupted.inc();
    }
    return summary;
  }
}
