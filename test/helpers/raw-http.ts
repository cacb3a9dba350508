// Test helper: raw HTTP/1.1 over `net` sockets, client and upstream, so a test decides every byte (a library would not misbehave).
import { EventEmitter, once } from 'node:events';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

/** One response as the client saw it: interim (1xx) statuses, then the final head and its body (chunked decoded). */
export interface RawResponse {
  /** Interim (1xx) statuses received before the final answer, in order. */
  interim: number[];
  status: number;
  /** Lowercased names; a repeated field keeps its last value. */
  headers: Record<string, string>;
  body: string;
}

function parseHead(head: string): { status: number; headers: Record<string, string> } {
  const [statusLine, ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) headers[line.slice(0, line.indexOf(':')).toLowerCase()] = line.slice(line.indexOf(':') + 1).trim();
  return { status: Number(statusLine!.split(' ')[1]), headers };
}

/** Decodes a chunked body at `from`; returns it and where the message ends (after the trailers), or null while incomplete. */
function decodeChunked(text: string, from: number): { body: string; end: number } | null {
  let body = '';
  let at = from;
  for (;;) {
    const sizeEnd = text.indexOf('\r\n', at);
    if (sizeEnd === -1) return null;
    // parseInt stops at a chunk extension (`;name=value`).
    const size = Number.parseInt(text.slice(at, sizeEnd), 16);
    if (Number.isNaN(size)) throw new Error(`bad chunk size ${JSON.stringify(text.slice(at, sizeEnd))} in ${JSON.stringify(text)}`);
    if (size === 0) {
      // The last chunk: trailer fields (usually none), then an empty line.
      const trailersEnd = text.indexOf('\r\n\r\n', sizeEnd);
      return trailersEnd === -1 ? null : { body, end: trailersEnd + 4 };
    }
    if (text.length < sizeEnd + 2 + size + 2) return null;
    body += text.slice(sizeEnd + 2, sizeEnd + 2 + size);
    at = sizeEnd + 2 + size + 2;
  }
}

/**
 * Parses one response at the start of `text`, its interim (1xx) heads included; returns it and how many characters it
 * took, or null while incomplete. Bodies are framed by chunked encoding, Content-Length, or neither: none for 204 and
 * 304, otherwise up to the end of the connection, so such a response is complete only once `closed` says so (no test
 * here sends HEAD). Call it again on the rest to read several responses sent on one keep-alive connection.
 */
export function parseOne(text: string, { closed = false } = {}): { response: RawResponse; length: number } | null {
  const interim: number[] = [];
  let at = 0;
  for (;;) {
    const headEnd = text.indexOf('\r\n\r\n', at);
    if (headEnd === -1) return null;
    const { status, headers } = parseHead(text.slice(at, headEnd));
    at = headEnd + 4;
    if (status >= 100 && status < 200) {
      interim.push(status);
      continue;
    }
    if (headers['transfer-encoding'] === 'chunked') {
      const chunked = decodeChunked(text, at);
      return chunked === null ? null : { response: { interim, status, headers, body: chunked.body }, length: chunked.end };
    }
    let end: number;
    if (headers['content-length'] !== undefined) end = at + Number(headers['content-length']);
    else if (status === 204 || status === 304) end = at;
    else if (closed) end = text.length;
    else return null;
    if (text.length < end) return null;
    return { response: { interim, status, headers, body: text.slice(at, end) }, length: end };
  }
}

/** Connects to `base` (an http:// origin); the socket reads latin1 strings, one character per byte. */
export async function rawConnect(base: string): Promise<Socket> {
  const { hostname, port } = new URL(base);
  const socket = connect(Number(port), hostname);
  await once(socket, 'connect');
  socket.setEncoding('latin1');
  return socket;
}

/** One raw HTTP/1.1 client connection: the test writes every byte and decides when. */
export class RawConnection {
  readonly socket: Socket;
  /** Everything the server sent so far; a test may clear it between requests on a keep-alive connection. */
  received = '';
  /** The first socket error, if any. */
  error: Error | null = null;
  readonly closed: Promise<void>;
  readonly #arrived = new EventEmitter();

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (text: string) => {
      this.received += text;
      this.#arrived.emit('data');
    });
    // A reset after the answer arrived (the proxy closes oversized uploads) is not what these tests are about; the
    // answer (or its absence) is. The error is kept to explain a missing answer.
    socket.on('error', (err) => (this.error ??= err));
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static async open(base: string): Promise<RawConnection> {
    return new RawConnection(await rawConnect(base));
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

  /**
   * Waits for the server to close the connection (requests under test say `Connection: close` or are refused with it),
   * then parses the response it sent (bytes after it are ignored). Fails, quoting what arrived, if that response is
   * incomplete or the server keeps the connection past `timeoutMs`.
   */
  async response(timeoutMs = 10_000): Promise<RawResponse> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        this.socket.destroy();
        reject(new Error(`the connection was still open after ${timeoutMs} ms; got ${JSON.stringify(this.received.slice(0, 300))}`));
      }, timeoutMs);
    });
    try {
      await Promise.race([this.closed, late]);
    } finally {
      clearTimeout(timer);
    }
    const parsed = parseOne(this.received, { closed: true });
    if (parsed === null) throw new Error(`connection closed without a complete response (${String(this.error)}); got ${JSON.stringify(this.received.slice(0, 300))}`);
    return parsed.response;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Sends `text` on a fresh connection and returns the response the server sent before it closed the connection. */
export async function rawExchange(base: string, text: string, timeoutMs = 5_000): Promise<RawResponse> {
  const conn = await RawConnection.open(base);
  conn.write(text);
  return conn.response(timeoutMs);
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
