// Fixed-latency fake model (node:http): the latency origin when nginx is absent, the smoke check's upstream, the soak's models.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { largePredictionBodies, largePredictionVariant, parseLargeKb, predictionBody } from './lib/payload.js';

/** Header a load generator may send to choose the delay per request (capacity runs send none and get `delayMs`). */
export const delayHeader = 'x-bench-delay-ms';

/** Options for {@link startUpstreamStub}. */
export interface UpstreamStubOptions {
  host?: string;
  /** One port per model; 0 picks a free port. Defaults to two free ports (champion, challenger). */
  ports?: number[];
  /** Model names answered on the matching port. */
  models?: string[];
  /** Delay before answering, in ms, unless the request carries `x-bench-delay-ms`. */
  delayMs?: number;
  /** Answer large text predictions of these sizes (whole body, bytes) instead of ~200 bytes (the soak bench). */
  largeBytes?: { min: number; max: number };
}

/** A running stub: one URL per model, in the order given. */
export interface RunningUpstreamStub {
  urls: string[];
  close(): Promise<void>;
}

function listen(server: http.Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

/** Starts one node:http server per model; each reads the whole request, waits the delay and answers ~200 bytes of JSON (or a large prediction). */
export async function startUpstreamStub(options: UpstreamStubOptions = {}): Promise<RunningUpstreamStub> {
  const host = options.host ?? '127.0.0.1';
  const models = options.models ?? ['m-v1', 'm-v2'];
  const ports = options.ports ?? models.map(() => 0);
  const defaultDelay = options.delayMs ?? 5;
  const servers: http.Server[] = [];
  const urls: string[] = [];
  for (let i = 0; i < models.length; i++) {
    const bodies = options.largeBytes === undefined ? [Buffer.from(predictionBody(models[i] ?? 'm'))] : largePredictionBodies(models[i] ?? 'm', options.largeBytes.min, options.largeBytes.max);
    const answers = bodies.map((body) => ({ body, headers: { 'content-type': 'application/json', 'content-length': String(body.length) } }));
    let served = 0;
    const server = http.createServer((req, res) => {
      const asked = req.headers[delayHeader];
      const delay = typeof asked === 'string' ? Number(asked) : defaultDelay;
      const requestId = req.headers['x-request-id'];
      const { body, headers } = answers.length === 1 ? answers[0]! : answers[largePredictionVariant(typeof requestId === 'string' ? requestId : undefined, served++)]!;
      const answer = () => {
        res.writeHead(200, headers);
        res.end(body);
      };
      req.resume();
      req.on('end', () => {
        if (delay > 0) setTimeout(answer, delay);
        else answer();
      });
    });
    // Longer than any client pool's idle timeout, so the server never closes a socket a client is about to reuse.
    server.keepAliveTimeout = 120_000;
    const address = await listen(server, ports[i] ?? 0, host);
    servers.push(server);
    urls.push(`http://${host}:${address.port}`);
  }
  return {
    urls,
    async close() {
      await Promise.all(servers.map((s) => new Promise<void>((resolve) => {
        s.close(() => resolve());
        s.closeAllConnections();
      })));
    },
  };
}

const usage = 'Usage: node dist/bench/upstream-stub.js [--port N]... [--model NAME]... [--delay-ms 5] [--host 127.0.0.1] [--large-kb MIN-MAX]';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { port: { type: 'string', multiple: true }, model: { type: 'string', multiple: true }, 'delay-ms': { type: 'string' }, host: { type: 'string' }, 'large-kb': { type: 'string' }, help: { type: 'boolean' } } });
  if (values.help) {
    console.log(usage);
    return;
  }
  const ports = (values.port ?? ['0', '0']).map(Number);
  const models = ports.map((_, i) => values.model?.[i] ?? `m-v${i + 1}`);
  const largeBytes = values['large-kb'] === undefined ? undefined : parseLargeKb(values['large-kb']);
  const stub = await startUpstreamStub({ host: values.host, ports, models, delayMs: Number(values['delay-ms'] ?? 5), ...(largeBytes === undefined ? {} : { largeBytes }) });
  // One line per URL, so a parent process can read the ports it got.
  for (const url of stub.urls) console.log(url);
  const stop = () => void stub.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
