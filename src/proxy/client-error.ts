// Answers what node:http refuses before the request listener runs (parse errors, oversized heads, slow heads) with the JSON error shape.
import { randomUUID } from 'node:crypto';
import { maxHeaderSize, STATUS_CODES, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { SWY_ERR_BAD_REQUEST, SWY_ERR_CHUNK_EXTENSIONS_TOO_LARGE, SWY_ERR_HEADERS_TIMEOUT, SWY_ERR_HEADERS_TOO_LARGE } from '../errors.js';
import type { DataPathMetrics } from './data-path-metrics.js';

/** What node:http passes to 'clientError': llhttp's errors carry `code` (HPE_*) and a human `reason`. */
type ClientError = Error & { code?: string; reason?: string };

/**
 * The data server's 'clientError' listener. Without one, node:http writes a bare "400 Bad Request" with no body: every
 * other refusal is the JSON shape with a stable code, so clients and log pipelines would need a second parser for these.
 * node:http's own mapping is kept (header overflow 431, chunk-extension overflow 413, header timeout 408, else 400).
 * Built once per server; nothing here runs for a well-formed request.
 */
export function clientErrorListener(server: Server, metrics: DataPathMetrics): (err: ClientError, socket: Duplex) => void {
  return (err, socket) => {
    // A response already under way on this socket cannot be replaced without corrupting the stream the peer reads; a
    // peer that reset its own connection, or a socket already answered (node:http reports every later chunk again), gets nothing.
    const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent === true) {
      socket.destroy();
      return;
    }
    let error: Error & { code: string; statusCode?: number };
    let reason: string;
    switch (err.code) {
      case 'HPE_HEADER_OVERFLOW':
        error = new SWY_ERR_HEADERS_TOO_LARGE(`${maxHeaderSize} bytes (request line and header fields together)`);
        reason = 'headers_too_large';
        break;
      case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
        error = new SWY_ERR_CHUNK_EXTENSIONS_TOO_LARGE();
        reason = 'bad_request';
        break;
      case 'ERR_HTTP_REQUEST_TIMEOUT':
        error = new SWY_ERR_HEADERS_TIMEOUT(server.headersTimeout);
        reason = 'headers_timeout';
        break;
      default:
        error = new SWY_ERR_BAD_REQUEST(`The request is not valid HTTP/1.1: ${err.reason ?? err.message} (${err.code ?? 'unknown'}); fix the client that sent it`);
        reason = 'bad_request';
    }
    metrics.rejected(reason);
    const status = error.statusCode ?? 400;
    const requestId = randomUUID();
    const body = JSON.stringify({ error: { code: error.code, message: error.message, requestId } });
    const head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestId}\r\nconnection: close\r\n\r\n`;
    // The parser cannot resync after an error, so the connection ends; it is destroyed once the answer is flushed.
    socket.end(head + body, () => socket.destroy());
  };
}
