// Maps transport failures (by err.code) to our stable SWY_ERR_* codes and HTTP statuses.
import {
  errorCode,
  SWY_ERR_BODY_TOO_LARGE,
  SWY_ERR_UPSTREAM_CONNECT,
  SWY_ERR_UPSTREAM_RESET,
  SWY_ERR_UPSTREAM_TIMEOUT,
  SWY_ERR_UPSTREAM_UNAVAILABLE,
} from '../errors.js';
import type { UpstreamErrorKind } from '../record/port.js';

export type { UpstreamErrorKind };

/** Classifies a transport error by its code (never by message or instanceof: undici copies may differ). */
export function classifyUpstreamError(err: unknown): UpstreamErrorKind {
  switch (errorCode(err)) {
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
    case 'UND_ERR_CONNECT':
      return 'connect';
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
    case 'ETIMEDOUT':
      return 'timeout';
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_CLOSED':
      return 'reset';
    case 'SWY_ERR_BODY_TOO_LARGE':
      return 'body_too_large';
    case 'UND_ERR_ABORTED':
    case 'SWY_ERR_CLIENT_ABORTED':
      return 'client_abort';
    case 'SWY_ERR_CLIENT_TIMEOUT':
      return 'client_timeout';
    case 'SWY_ERR_UPSTREAM_BUSY':
      return 'busy';
    default:
      return 'other';
  }
}

/** The client-facing error for a failure kind; `cause` keeps the transport error for logs (or is the error, for our own kinds). */
export function clientErrorFor(kind: UpstreamErrorKind, upstream: string, timeoutMs: number, bodyLimit: number, route: string, cause: unknown): Error & { statusCode: number; code: string } {
  let err: Error & { statusCode?: number; code: string };
  switch (kind) {
    case 'connect':
      err = new SWY_ERR_UPSTREAM_CONNECT(upstream);
      break;
    case 'timeout':
      err = new SWY_ERR_UPSTREAM_TIMEOUT(upstream, timeoutMs);
      break;
    case 'reset':
      err = new SWY_ERR_UPSTREAM_RESET(upstream);
      break;
    case 'body_too_large':
      err = new SWY_ERR_BODY_TOO_LARGE(bodyLimit, route);
      break;
    case 'busy':
    case 'client_timeout':
      // Raised by the data plane itself with the figures the message needs: it is already the client's error.
      return cause as Error & { statusCode: number; code: string };
    default:
      err = new SWY_ERR_UPSTREAM_UNAVAILABLE(upstream);
  }
  err.cause = cause;
  return err as Error & { statusCode: number; code: string };
}
