// Stack floor: the least a node:http + undici proxy can do per request (no routing, metrics, ids or header rewriting).
import http from 'node:http';
import { parseArgs } from 'node:util';
import { Pool, type Dispatcher } from 'undici';

const { values } = parseArgs({ options: { port: { type: 'string' }, upstream: { type: 'string' }, host: { type: 'string' } } });
if (values.port === undefined || values.upstream === undefined) {
  console.error('Usage: node dist/bench/peers/bare-dispatch.js --port N --upstream http://127.0.0.1:M [--host 127.0.0.1]');
  process.exit(2);
}

// The same pool shape as Switchyard's upstream pools, so the difference between the two is Switchyard's own work.
const pool = new Pool(values.upstream, { connections: 256, pipelining: 1, keepAliveTimeout: 4_000 });

/** Streams the upstream answer to the client; the "node:http + undici floor" target (bench/README.md, "Targets"). */
class Forward implements Dispatcher.DispatchHandler {
  readonly res: http.ServerResponse;
  constructor(res: http.ServerResponse) {
    this.res = res;
  }
  onConnect(): void {}
  onHeaders(statusCode: number, rawHeaders: Buffer[]): boolean {
    const headers: string[] = [];
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = rawHeaders[i]!.toString('latin1');
      // Only the framing and hop-by-hop fields that node:http must own are left out.
      if (name.length === 10 && name.toLowerCase() === 'connection') continue;
      if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') continue;
      headers.push(name, rawHeaders[i + 1]!.toString('latin1'));
    }
    this.res.writeHead(statusCode, headers);
    return true;
  }
  onData(chunk: Buffer): boolean {
    this.res.write(chunk);
    return true;
  }
  onComplete(): void {
    this.res.end();
  }
  onError(): void {
    if (!this.res.headersSent) this.res.writeHead(502);
    this.res.end();
  }
}

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const headers: string[] = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i]!;
      if (name.length === 4 && name.toLowerCase() === 'host') continue;
      if (name.length === 10 && name.toLowerCase() === 'connection') continue;
      headers.push(name, req.rawHeaders[i + 1]!);
    }
    pool.dispatch({ path: req.url ?? '/', method: req.method as Dispatcher.HttpMethod, headers, body: chunks.length === 0 ? null : Buffer.concat(chunks) }, new Forward(res));
  });
});
server.keepAliveTimeout = 65_000;
server.listen(Number(values.port), values.host ?? '127.0.0.1');

const stop = () => server.close(() => void pool.close().then(() => process.exit(0)));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
