// Test upstream: a real node:http server that records every request and answers with a switchable behaviour.
import { EventEmitter, once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';

/** How the upstream answers; build one with `behave.*`. */
export type UpstreamBehaviour =
  | { readonly kind: 'json'; readonly prediction: unknown }
  | { readonly kind: 'status'; readonly code: number; readonly body: string | object | undefined }
  | { readonly kind: 'delay'; readonly ms: number; readonly prediction: unknown }
  | { readonly kind: 'hang' }
  | { readonly kind: 'reset' }
  | { readonly kind: 'sse'; readonly events: readonly string[]; readonly intervalMs: number }
  | { readonly kind: 'chunked'; readonly chunks: readonly string[]; readonly intervalMs: number }
  | { readonly kind: 'largeBody'; readonly bytes: number }
  | { readonly kind: 'sseScript'; readonly plan: (index: number) => SsePlan };

/** One streamed answer of `behave.sseScript`: each piece is written `afterMs` after the previous one (the first after the headers). */
export interface SsePlan {
  readonly pieces: readonly { readonly afterMs: number; readonly data: string }[];
  /** end: a clean end of the body; destroy: the socket is destroyed after the last piece (a reset after the headers). */
  readonly ending?: 'end' | 'destroy';
}

/** Builders for every behaviour. */
export const behave = {
  /** 200 JSON echo `{ method, url, headers, body, prediction, upstream }` (body as a UTF-8 string). */
  json: (prediction: unknown = null): UpstreamBehaviour => ({ kind: 'json', prediction }),
  /** `code` with `body` (objects sent as JSON, strings as text/plain); default body `{ "status": code }`. */
  status: (code: number, body?: string | object): UpstreamBehaviour => ({ kind: 'status', code, body }),
  /** Waits `ms`, then answers like `json`. */
  delay: (ms: number, prediction: unknown = null): UpstreamBehaviour => ({ kind: 'delay', ms, prediction }),
  /** Reads the request and never answers; only `close()` or the client ends it. */
  hang: (): UpstreamBehaviour => ({ kind: 'hang' }),
  /** Destroys the socket after reading the request, before any response byte. */
  reset: (): UpstreamBehaviour => ({ kind: 'reset' }),
  /** text/event-stream: each event written as `data: <event>\n\n` and flushed, `intervalMs` apart, then ends. */
  sse: (events: readonly string[], intervalMs = 0): UpstreamBehaviour => ({ kind: 'sse', events, intervalMs }),
  /** 200 with Transfer-Encoding: chunked, one write per chunk, `intervalMs` apart. */
  chunked: (chunks: readonly string[], intervalMs = 0): UpstreamBehaviour => ({ kind: 'chunked', chunks, intervalMs }),
  /** 200 application/octet-stream of exactly `bytes` bytes of 'x', written with backpressure. */
  largeBody: (bytes: number): UpstreamBehaviour => ({ kind: 'largeBody', bytes }),
  /**
   * text/event-stream whose n-th answer (0-based, counted while this behaviour is set) follows `plan(n)`: each piece is
   * written as `data: <data>\n\n` at its own time, so a test can delay the first token, stall, cut or reset streams.
   */
  sseScript: (plan: (index: number) => SsePlan): UpstreamBehaviour => ({ kind: 'sseScript', plan }),
} as const;

export interface RecordedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** performance.now() when the request head arrived (monotonic ms, comparable within the process). */
  readonly arrivedAt: number;
}

export interface Upstream {
  /** Origin, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  readonly port: number;
  /** Every completed request (body fully read), in completion order. */
  readonly requests: readonly RecordedRequest[];
  readonly count: number;
  setBehaviour(behaviour: UpstreamBehaviour): void;
  /** Resolves once `n` requests are recorded; rejects after `timeoutMs` so a test fails with a reason. */
  waitForRequests(n: number, timeoutMs?: number): Promise<readonly RecordedRequest[]>;
  /** Forgets recorded requests (the count restarts at 0). */
  clear(): void;
  /** Stops listening, cancels pending timers and destroys every socket, hanging ones included. */
  close(): Promise<void>;
}

export interface UpstreamOptions {
  /** Sent as `x-upstream` and echoed as `upstream` by `json`, to tell upstreams apart. */
  name?: string;
}

/** Starts a recording upstream on 127.0.0.1, port 0. */
export async function startUpstream(initial: UpstreamBehaviour = behave.json(), options: UpstreamOptions = {}): Promise<Upstream> {
  const name = options.name ?? 'upstream';
  let behaviour = initial;
  let requests: RecordedRequest[] = [];
  const recorded = new EventEmitter();
  const timers = new Set<NodeJS.Timeout>();
  const later = (ms: number, fn: () => void): void => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  };

  const echo = (res: ServerResponse, rec: RecordedRequest, prediction: unknown): void => {
    const payload = JSON.stringify({
      method: rec.method, url: rec.url, headers: rec.headers, body: rec.body.toString('utf8'), prediction, upstream: name,
    });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), 'x-upstream': name });
    res.end(payload);
  };

  /** Writes `pieces` one per tick of `intervalMs`, then ends; stops if the client goes away. */
  const drip = (res: ServerResponse, pieces: readonly string[], intervalMs: number): void => {
    const step = (i: number): void => {
      if (res.destroyed) return;
      if (i >= pieces.length) return void res.end();
      res.write(pieces[i]);
      later(intervalMs, () => step(i + 1));
    };
    step(0);
  };

  /** Answers counted per sseScript behaviour object, so a new script starts at 0. */
  const scriptIndex = new WeakMap<UpstreamBehaviour, number>();

  const answer = (req: IncomingMessage, res: ServerResponse, rec: RecordedRequest, b: UpstreamBehaviour): void => {
    switch (b.kind) {
      case 'sseScript': {
        const index = scriptIndex.get(b) ?? 0;
        scriptIndex.set(b, index + 1);
        const plan = b.plan(index);
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-upstream': name });
        res.flushHeaders();
        const step = (i: number): void => {
          if (res.destroyed) return;
          if (i >= plan.pieces.length) return void (plan.ending === 'destroy' ? req.socket.destroy() : res.end());
          res.write(`data: ${plan.pieces[i]!.data}\n\n`);
          const next = plan.pieces[i + 1];
          if (next === undefined) step(i + 1);
          else later(next.afterMs, () => step(i + 1));
        };
        const first = plan.pieces[0];
        if (first === undefined || first.afterMs === 0) step(0);
        else later(first.afterMs, () => step(0));
        return;
      }
      case 'json':
        return echo(res, rec, b.prediction);
      case 'delay':
        return later(b.ms, () => echo(res, rec, b.prediction));
      case 'status': {
        const isText = typeof b.body === 'string';
        const payload = isText ? (b.body as string) : JSON.stringify(b.body ?? { status: b.code });
        res.writeHead(b.code, { 'content-type': isText ? 'text/plain' : 'application/json', 'x-upstream': name });
        return void res.end(payload);
      }
      case 'hang':
        return;
      case 'reset':
        return void req.socket.destroy();
      case 'sse':
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-upstream': name });
        res.flushHeaders();
        return drip(res, b.events.map((e) => `data: ${e}\n\n`), b.intervalMs);
      case 'chunked':
        res.writeHead(200, { 'content-type': 'text/plain', 'x-upstream': name });
        res.flushHeaders();
        return drip(res, b.chunks, b.intervalMs);
      case 'largeBody': {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': b.bytes, 'x-upstream': name });
        const piece = Buffer.alloc(64 * 1024, 'x');
        let left = b.bytes;
        const pump = (): void => {
          while (left > 0 && !res.destroyed) {
            const n = Math.min(left, piece.length);
            left -= n;
            if (!res.write(n === piece.length ? piece : piece.subarray(0, n))) return void res.once('drain', pump);
          }
          if (!res.destroyed) res.end();
        };
        return pump();
      }
    }
  };

  const server = createServer((req, res) => {
    const arrivedAt = performance.now();
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const rec: RecordedRequest = {
        method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks), arrivedAt,
      };
      requests.push(rec);
      recorded.emit('request');
      answer(req, res, rec, behaviour);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  let closed: Promise<void> | null = null;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get requests() {
      return requests;
    },
    get count() {
      return requests.length;
    },
    setBehaviour(next) {
      behaviour = next;
    },
    waitForRequests(n, timeoutMs = 5_000) {
      if (requests.length >= n) return Promise.resolve(requests);
      return new Promise((resolve, reject) => {
        const onRequest = (): void => {
          if (requests.length < n) return;
          clearTimeout(timer);
          recorded.off('request', onRequest);
          resolve(requests);
        };
        const timer = setTimeout(() => {
          recorded.off('request', onRequest);
          reject(new Error(`${name}: expected ${n} requests within ${timeoutMs} ms, got ${requests.length}`));
        }, timeoutMs);
        recorded.on('request', onRequest);
      });
    },
    clear() {
      requests = [];
    },
    close() {
      closed ??= new Promise<void>((resolve, reject) => {
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      });
      return closed;
    },
  };
}

/** A champion answering 'v1' and a challenger answering 'v2', started together for a test file's routes. */
export interface UpstreamPair {
  readonly champion: Upstream;
  readonly challenger: Upstream;
  close(): Promise<void>;
}

/** Starts the champion ('v1', named v1) and challenger ('v2', named v2) that policy tests point their routes at. */
export async function startUpstreamPair(): Promise<UpstreamPair> {
  const champion = await startUpstream(behave.json('v1'), { name: 'v1' });
  const challenger = await startUpstream(behave.json('v2'), { name: 'v2' });
  return {
    champion,
    challenger,
    close: async () => {
      await champion.close();
      await challenger.close();
    },
  };
}
