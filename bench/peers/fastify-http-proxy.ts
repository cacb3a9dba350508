// Same-stack peer: a minimal fastify + @fastify/http-proxy reverse proxy (logger off, reply-from's undici defaults).
import Fastify from 'fastify';
import proxy from '@fastify/http-proxy';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { port: { type: 'string' }, upstream: { type: 'string' }, host: { type: 'string' } } });
if (values.port === undefined || values.upstream === undefined) {
  console.error('Usage: node dist/bench/peers/fastify-http-proxy.js --port N --upstream http://127.0.0.1:M [--host 127.0.0.1]');
  process.exit(2);
}

// Logging off as in fastify's own benchmarks: request logging would dominate the per-request cost.
const app = Fastify({ logger: false });
// reply-from defaults to an undici Pool with 128 connections and pipelining 1, the same shape as Switchyard's pools.
await app.register(proxy, { upstream: values.upstream, http2: false });
await app.listen({ port: Number(values.port), host: values.host ?? '127.0.0.1' });

const stop = () => void app.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
