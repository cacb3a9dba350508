// Test helper: raw HTTP/1.1 over `net` sockets, so a test decides every byte a client sends (a client library would not misbehave).
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';

/** One parsed HTTP/1.1 response (bodies framed by Content-Length only: every answer under test carries one). */
export interface RawResponse {
  status: number;
  /** Lowercased names; a repeated field keeps its last value. */
  headers: Record<string, string>;
  body: string;
}

/** Parses one response at the start of `text`; returns it and how many characters it took, or null while incomplete. */
export function parseOne(text: string): { response: RawResponse; length: number } | null {
  const headEnd = text.indexOf('\r\n\r\n');
  if (headEnd === -1) return null;
  const [statusLine, ...lines] = text.slice(0, headEnd).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) headers[line.slice(0, line.indexOf(':')).toLowerCase()] = line.slice(line.indexOf(':') + 1).trim();
  const length = Number(headers['content-length'] ?? 0);
  if (text.length < headEnd + 4 + length) return null;
  return { response: { status: Number(statusLine!.split(' ')[1]), headers, body: text.slice(headEnd + 4, headEnd + 4 + length) }, length: headEnd + 4 + length };
}

/** Connects to `base` (an http:// origin). */
export async function rawConnect(base: string): Promise<Socket> {
  const { hostname, port } = new URL(base);
  const socket = connect(Number(port), hostname);
  await once(socket, 'connect');
  socket.setEncoding('latin1');
  return socket;
}

/**
 * Sends `text` on a fresh connection and returns the one response the server sent before it closed the connection
 * (every request under test either says `Connection: close` or is refused with one). A reset after the whole answer
 * arrived does not matter here; one before it fails the call.
 */
export async function rawExchange(base: string, text: string, timeoutMs = 5_000): Promise<RawResponse> {
  const socket = await rawConnect(base);
  let received = '';
  socket.on('data', (chunk: string) => (received += chunk));
  let error: Error | null = null;
  socket.on('error', (err) => (error = err));
  socket.write(text, 'latin1');
  const timer = setTimeout(() => socket.destroy(new Error(`no complete answer within ${timeoutMs} ms; got ${JSON.stringify(received.slice(0, 300))}`)), timeoutMs);
  await once(socket, 'close');
  clearTimeout(timer);
  const parsed = parseOne(received);
  if (parsed === null) throw new Error(`connection closed without a complete response (${String(error)}); got ${JSON.stringify(received.slice(0, 300))}`);
  return parsed.response;
}
