// Raw TCP ends for the fault suite: a client and an upstream that decide every byte, so they can misbehave on purpose.
import { EventEmitter, once } from 'node:events';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

/** What a server sent on one connection: interim (1xx) statuses, then the final head and its body (chunked decoded). */
export interface RawResponse {
  interim: number[];
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Parses everything a server sent on one connection (one final response; Content-Length, chunked or close-delimited). */
export function parseResponse(text: string): RawResponse {
  const interim: number[] = [];
  let at = 0;
  for (;;) {
    const headEnd = text.indexOf('\r\n\r\n', at);
    if (headEnd === -1) throw new Error(`no complete response head in ${JSON.stringify(text)}`);
    const [statusLine, ...lines] = text.slice(at, headEnd).split('\r\n');
    const status = Number(statusLine!.split(' ')[1]);
    at = headEnd + 4;
    if (status >= 100 && status < 200) {
      interim.push(status);
      continue;
    }
    const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
    let body = text.slice(at);
    if (headers['transfer-encoding'] === 'chunked') {
      let decoded = '';
      let i = 0;
      for (;;) {
        const sizeEnd = body.indexOf('\r\n', i);
        const size = Number.parseInt(body.slice(i, sizeEnd), 16);
        if (!(size > 0)) break;
        decoded += body.slice(sizeEnd + 2, sizeEnd + 2 + size);
        i = sizeEnd + 2 + size + 2;
      }
      body = decoded;
    } else if (headers['content-length'] !== undefined) {
      body = body.slice(0, Number(headers['content-length']));
    }
    return { interim, status, headers, body };
  }
}

/** One raw HTTP/1.1 client connection: the test writes every byte and decides when. */
export class RawConnection {
  readonly socket: Socket;
  received = '';
  readonly closed: Promise<void>;
  readonly #arrived = new EventEmitter();

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setEncoding('latin1');
    socket.on('data', (text: string) => {
      this.received += text;
      this.#arrived.emit('data');
    });
    // A reset after the answer arrived is not what these tests are about; the answer (or its absence) is.
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static async open(base: string): Promise<RawConnection> {
    const { hostname, port } = new URL(base);
    const socket = connect(Number(port), hostname);
    await once(socket, 'connect');
    return new RawConnection(socket);
  }

  write(text: string): void {
    this.socket.write(text, 'latin1');
  }

  /** Resolves once the received bytes match `pattern`; rejects if the connection closes first or after `timeoutMs`. */
  async until(pattern: RegExp, timeoutMs = 5_000): Promise<void> {
    const deadline = AbortSignal.timeout(timeoutMs);
    while (!pattern.test(this.received)) {
      if (this.socket.destroyed) throw new Error(`connection closed before ${pattern} arrived; got ${JSON.stringify(this.received)}`);
      await Promise.race([once(this.#arrived, 'data', { signal: deadline }), this.closed]);
    }
  }

  /** Waits for the server to close the connection, then parses what it sent. */
  async response(timeoutMs = 10_000): Promise<RawResponse> {
    await Promise.race([this.closed, once(new EventEmitter(), 'never', { signal: AbortSignal.timeout(timeoutMs) })]);
    return parseResponse(this.received);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A request as a raw upstream read it: the head's lines and the body (Content-Length framed only). */
export interface RawRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}

/** A raw upstream: `onRequest` gets each request head+body on a connection and answers by writing to the socket. */
export interface RawUpstream {
  url: string;
  /** Requests fully read so far. */
  readonly requests: number;
  /** Connections accepted so far. */
  readonly connections: number;
  close(): Promise<void>;
}

/**
 * Starts a raw HTTP/1.1 upstream on 127.0.0.1, port 0. It parses requests with a Content-Length body (or none) one
 * after another on each connection and hands each to `onRequest`, which writes whatever bytes the test wants.
 */
export async function startRawUpstream(onRequest: (socket: Socket, request: RawRequest) => void): Promise<RawUpstream> {
  let requests = 0;
  let connections = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffered = '';
    socket.setEncoding('latin1');
    socket.on('data', (text: string) => {
      buffered += text;
      for (;;) {
        const headEnd = buffered.indexOf('\r\n\r\n');
        if (headEnd === -1) return;
        const [requestLine, ...lines] = buffered.slice(0, headEnd).split('\r\n');
        const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
        const length = Number(headers['content-length'] ?? 0);
        if (buffered.length < headEnd + 4 + length) return;
        const [method, path] = requestLine!.split(' ');
        const body = buffered.slice(headEnd + 4, headEnd + 4 + length);
        buffered = buffered.slice(headEnd + 4 + length);
        requests++;
        onRequest(socket, { method: method!, path: path!, headers, body });
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get requests() {
      return requests;
    },
    get connections() {
      return connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A 200 JSON answer with a Content-Length and no Connection header (so HTTP/1.1 keep-alive applies). */
export function okResponse(body: string): string {
  return `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/** The value of one Prometheus series on an admin URL (0 when absent). */
export async function metric(adminUrl: string, series: string): Promise<number> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}
