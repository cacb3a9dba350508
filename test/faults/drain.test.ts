// SIGTERM under keep-alive load against a real `switchyard serve`: no connection is reset, every request sent gets a whole answer.
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startServe, type ServeProcess } from '../helpers/cli.js';
import { parseOne, rawConnect, type RawResponse } from '../helpers/raw-http.js';
import { routePolicy } from '../helpers/switchyard.js';
import { behave, startUpstream, type Upstream } from '../helpers/upstream.js';

const REQUEST = 'POST /v1/models/iris:predict HTTP/1.1\r\nHost: switchyard.test\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}';
const BUSY_CONNECTIONS = 16;
const RUNS = 3;

/** How one keep-alive connection ended, seen from the client. */
interface Ending {
  /** A socket error (ECONNRESET, EPIPE, ...): what a client pool reports as a failed request. */
  error: string | null;
  /** The connection closed while a request was sent and its answer incomplete ("socket hang up"). */
  outstanding: boolean;
  /** The last answer said `Connection: close` (so the client knew not to reuse the connection). */
  toldToClose: boolean;
  responses: RawResponse[];
}

/**
 * One keep-alive connection. `busy` sends the next request as soon as an answer arrives (a closed loop: the connection
 * is never idle longer than the client takes to reply) until an answer says `Connection: close`; a quiet one sends
 * only when asked.
 */
class KeepAliveClient {
  readonly socket: Socket;
  readonly responses: RawResponse[] = [];
  readonly ended: Promise<Ending>;
  #buffer = '';
  #outstanding = false;
  #error: string | null = null;
  #answered: ((res: RawResponse) => void) | null = null;

  constructor(socket: Socket, readonly busy: boolean) {
    this.socket = socket;
    socket.on('data', (chunk: string) => this.#onData(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => (this.#error ??= err.code ?? err.message));
    // Not events.once: it rejects on 'error', and an error is what this records.
    this.ended = new Promise<void>((resolve) => socket.once('close', () => resolve())).then(() => ({
      error: this.#error,
      outstanding: this.#outstanding,
      toldToClose: this.responses.at(-1)?.headers.connection === 'close',
      responses: this.responses,
    }));
  }

  static async open(base: string, busy: boolean): Promise<KeepAliveClient> {
    const client = new KeepAliveClient(await rawConnect(base), busy);
    if (busy) client.send();
    return client;
  }

  send(): void {
    this.#outstanding = true;
    this.socket.write(REQUEST, 'latin1');
  }

  /** Sends one request and resolves with its answer; rejects if the connection ends first. */
  ask(): Promise<RawResponse> {
    const answer = new Promise<RawResponse>((resolve) => (this.#answered = resolve));
    this.send();
    const cut = this.ended.then((e) => Promise.reject(new Error(`the connection ended before the answer (error ${String(e.error)}, request outstanding: ${e.outstanding})`)));
    return Promise.race([answer, cut]);
  }

  #onData(chunk: string): void {
    this.#buffer += chunk;
    for (let parsed = parseOne(this.#buffer); parsed !== null; parsed = parseOne(this.#buffer)) {
      this.#buffer = this.#buffer.slice(parsed.length);
      this.#outstanding = false;
      this.responses.push(parsed.response);
      this.#answered?.(parsed.response);
      this.#answered = null;
      if (this.busy && parsed.response.headers.connection !== 'close') this.send();
    }
  }
}

describe('SIGTERM drain under keep-alive load', () => {
  let upstream: Upstream;
  let dir: string;
  let policyFile: string;
  const children: ServeProcess[] = [];
  beforeAll(async () => {
    upstream = await startUpstream(behave.json('setosa'));
    dir = await mkdtemp(path.join(tmpdir(), 'swy-faults-drain-'));
    policyFile = path.join(dir, 'policy.yaml');
    await writeFile(policyFile, stringify(routePolicy(upstream.url)));
  });
  afterAll(async () => {
    for (const served of children) served.child.kill('SIGKILL');
    await upstream?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it(`resets no connection in ${RUNS} runs of ${BUSY_CONNECTIONS} busy and 2 quiet keep-alive connections`, async () => {
    const figures: string[] = [];
    for (let run = 0; run < RUNS; run++) {
      const served = await startServe(policyFile, { ...process.env, SWITCHYARD_LOG_LEVEL: 'info', SWITCHYARD_DATA_DIR: path.join(dir, `data-${run}`) });
      children.push(served);
      const busy = await Promise.all(Array.from({ length: BUSY_CONNECTIONS }, () => KeepAliveClient.open(served.dataUrl, true)));
      // Quiet connections: answered once, then idle when SIGTERM arrives; one asks again during the drain.
      const idle = await KeepAliveClient.open(served.dataUrl, false);
      const late = await KeepAliveClient.open(served.dataUrl, false);
      expect((await idle.ask()).status).toBe(200);
      expect((await late.ask()).status).toBe(200);
      // Traffic is flowing on every busy connection before the signal.
      await expect.poll(() => Math.min(...busy.map((c) => c.responses.length)), { timeout: 10_000, interval: 5 }).toBeGreaterThanOrEqual(20);

      const exited = once(served.child, 'exit');
      served.child.kill('SIGTERM');
      await expect.poll(() => served.lines.some((l) => l.msg === 'draining'), { timeout: 5_000, interval: 1 }).toBe(true);
      // An idle keep-alive connection used again during the drain gets a whole answer, not a reset.
      const lateAnswer = await late.ask();
      expect([200, 503]).toContain(lateAnswer.status);
      expect(lateAnswer.headers.connection).toBe('close');

      const [code] = (await exited) as [number | null];
      expect(code).toBe(0);
      const endings = await Promise.all(busy.map((c) => c.ended));
      const idleEnding = await idle.ended;
      const lateEnding = await late.ended;

      const errors = [...endings, idleEnding, lateEnding].filter((e) => e.error !== null || e.outstanding);
      const last = endings.map((e) => e.responses.at(-1)?.status);
      figures.push(`run ${run}: ${endings.reduce((n, e) => n + e.responses.length, 0)} answers on busy connections, last ones ${last.filter((s) => s === 200).length} × 200 and ${last.filter((s) => s === 503).length} × 503 with Connection: close, ${errors.length} reset or cut off`);
      expect(errors.map((e) => ({ error: e.error, outstanding: e.outstanding }))).toEqual([]);
      // Every busy connection was closed by an answer that said so, never under a request.
      expect(endings.filter((e) => !e.toldToClose)).toEqual([]);
      // The idle one was closed between requests: its one request was answered and none was outstanding.
      expect(idleEnding.responses.length).toBe(1);
      expect(served.lines.find((l) => l.msg === 'drained; exiting')).toMatchObject({ forced: false });
    }
    console.log(figures.join('\n'));
  }, 120_000);
});
