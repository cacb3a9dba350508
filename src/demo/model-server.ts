// A small KServe v1 / Open Inference v2 model server over plain node:http, with optional latency and error injection.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { errorCode } from '../errors.js';
import { IRIS_FEATURES, type Classifier, type IrisPrediction } from './iris.js';
import { createPrng } from './prng.js';

export interface Faults {
  /** Extra delay before every predict/infer answer, in ms. */
  latencyMs?: number;
  /** Share of valid predict/infer requests answered with 500, drawn from the seeded generator. */
  errorRate?: number;
}

export interface ModelServerOptions extends Faults {
  /** Model name in the URL: `/v1/models/<name>:predict`, `/v2/models/<name>/infer`. */
  name: string;
  version: string;
  model: Classifier & { readonly heldOutAccuracy?: number };
  host?: string;
  port?: number;
  /** Seed of the error-injection draws, so a given errorRate fails the same requests every run. */
  seed?: number;
}

/** Live counters, updated as requests are answered. */
export interface ModelServerStats {
  readonly requests: number;
  /** Predict and infer calls that returned predictions. */
  readonly predictions: number;
  /** Rows classified across all successful calls. */
  readonly instances: number;
  readonly badRequests: number;
  readonly injectedErrors: number;
}

export interface ModelServer {
  readonly url: string;
  readonly port: number;
  readonly stats: ModelServerStats;
  /** Changes the injected latency or error rate at run time (e.g. to make a challenger misbehave mid-demo). */
  setFaults(faults: Faults): void;
  /** Stops listening and drops every connection, including requests waiting on injected latency. */
  close(): Promise<void>;
}

/** The largest request body accepted; Iris rows are tiny, so anything bigger is a client mistake. */
const MAX_BODY_BYTES = 1024 * 1024;

type Json = Record<string, unknown>;

/** A client error whose message names the offending field; answered as 400 `{ error }`. */
class BadRequest extends Error {
  readonly code = 'BAD_REQUEST';
  constructor(message: string, readonly status = 400) {
    super(message);
  }
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function finite(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new BadRequest(`${field} must be a finite number`);
  return value;
}

/** One KServe v1 instance: `[4 numbers]` or `{ sepal_length, sepal_width, petal_length, petal_width }`. */
function parseInstance(instance: unknown, field: string): number[] {
  if (Array.isArray(instance)) {
    if (instance.length !== IRIS_FEATURES.length) {
      throw new BadRequest(`${field} must have ${IRIS_FEATURES.length} values (${IRIS_FEATURES.join(', ')}), got ${instance.length}`);
    }
    return instance.map((v, i) => finite(v, `${field}[${i}]`));
  }
  if (isObject(instance)) return IRIS_FEATURES.map((key) => finite(instance[key], `${field}.${key}`));
  throw new BadRequest(`${field} must be an array of ${IRIS_FEATURES.length} numbers or an object with ${IRIS_FEATURES.join(', ')}`);
}

function parseV1(body: unknown): number[][] {
  if (!isObject(body)) throw new BadRequest('body must be a JSON object with "instances"');
  const { instances } = body;
  if (!Array.isArray(instances) || instances.length === 0) throw new BadRequest('instances must be a non-empty array');
  return instances.map((instance, i) => parseInstance(instance, `instances[${i}]`));
}

/** Open Inference v2: one FP32/FP64 tensor of shape [N, 4] (or [4]), data flat row-major or nested. */
function parseV2(body: unknown): number[][] {
  if (!isObject(body)) throw new BadRequest('body must be a JSON object with "inputs"');
  const { inputs } = body;
  if (!Array.isArray(inputs) || inputs.length !== 1) throw new BadRequest('inputs must be an array holding exactly one tensor');
  const tensor: unknown = inputs[0];
  if (!isObject(tensor)) throw new BadRequest('inputs[0] must be an object with name, shape, datatype and data');
  if (typeof tensor.name !== 'string') throw new BadRequest('inputs[0].name must be a string');
  if (tensor.datatype !== 'FP32' && tensor.datatype !== 'FP64') throw new BadRequest('inputs[0].datatype must be "FP32" or "FP64"');
  const { shape } = tensor;
  const width = IRIS_FEATURES.length;
  const shapeOk = Array.isArray(shape)
    && ((shape.length === 2 && Number.isInteger(shape[0]) && (shape[0] as number) > 0 && shape[1] === width)
      || (shape.length === 1 && shape[0] === width));
  if (!shapeOk) throw new BadRequest(`inputs[0].shape must be [N, ${width}] or [${width}]`);
  if (!Array.isArray(tensor.data)) throw new BadRequest('inputs[0].data must be an array');
  const flat: unknown[] = tensor.data.flat(2);
  const rows = shape.length === 2 ? (shape[0] as number) : 1;
  if (flat.length !== rows * width) throw new BadRequest(`inputs[0].data must hold ${rows * width} values for shape [${shape.join(', ')}], got ${flat.length}`);
  const values = flat.map((v, i) => finite(v, `inputs[0].data[${i}]`));
  return Array.from({ length: rows }, (_, r) => values.slice(r * width, (r + 1) * width));
}

function v2Outputs(predictions: readonly IrisPrediction[], classCount: number): Json[] {
  const n = predictions.length;
  return [
    { name: 'label', datatype: 'BYTES', shape: [n], data: predictions.map((p) => p.label) },
    { name: 'class_index', datatype: 'INT64', shape: [n], data: predictions.map((p) => p.classIndex) },
    { name: 'probabilities', datatype: 'FP32', shape: [n, classCount], data: predictions.flatMap((p) => p.probabilities) },
  ];
}

/** Reads the whole body, refusing more than MAX_BODY_BYTES (413) without destroying the socket first. */
function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) {
        chunks.push(chunk);
        return;
      }
      // Async-iterating and bailing out would destroy the socket before the 413 could be written.
      req.off('data', onData);
      req.resume();
      reject(new BadRequest(`body exceeds ${MAX_BODY_BYTES} bytes`, 413));
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

function parseJson(raw: Buffer): unknown {
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new BadRequest(`body is not valid JSON: ${(err as Error).message}`);
  }
}

function checkFaults(faults: Faults): void {
  const { latencyMs, errorRate } = faults;
  if (latencyMs !== undefined && !(latencyMs >= 0 && Number.isFinite(latencyMs))) throw new RangeError(`latencyMs must be a finite number >= 0, got ${latencyMs}`);
  if (errorRate !== undefined && !(errorRate >= 0 && errorRate <= 1)) throw new RangeError(`errorRate must be in [0, 1], got ${errorRate}`);
}

/**
 * Starts a model server for one classifier and resolves once it listens.
 * @example const champion = await startModelServer({ name: 'iris', version: 'lr-1', model: logisticRegression });
 *          // POST `${champion.url}/v1/models/iris:predict` {"instances": [[5.1, 3.5, 1.4, 0.2]]}
 */
export async function startModelServer(options: ModelServerOptions): Promise<ModelServer> {
  const { name, version, model, host = '127.0.0.1', port = 0, seed = 1 } = options;
  checkFaults(options);
  let latencyMs = options.latencyMs ?? 0;
  let errorRate = options.errorRate ?? 0;
  const draw = createPrng(seed);
  const stats = { requests: 0, predictions: 0, instances: 0, badRequests: 0, injectedErrors: 0 };
  const closing = new AbortController();

  const v1Base = `/v1/models/${name}`;
  const v2Base = `/v2/models/${name}`;
  const v2Infer = new Set([`${v2Base}/infer`, `${v2Base}/versions/${version}/infer`]);
  const metadata = {
    name,
    version,
    ready: true,
    kind: model.kind,
    classes: model.classes,
    features: IRIS_FEATURES,
    held_out_accuracy: model.heldOutAccuracy ?? null,
  };
  const v2Metadata = {
    name,
    versions: [version],
    platform: `switchyard-demo/${model.kind}`,
    inputs: [{ name: 'iris_features', datatype: 'FP32', shape: [-1, IRIS_FEATURES.length] }],
    outputs: [
      { name: 'label', datatype: 'BYTES', shape: [-1] },
      { name: 'class_index', datatype: 'INT64', shape: [-1] },
      { name: 'probabilities', datatype: 'FP32', shape: [-1, model.classes.length] },
    ],
  };

  const send = (res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void => {
    const payload = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(payload),
      'x-model-version': version,
      ...extra,
    });
    res.end(payload);
  };

  /** Shared tail of v1 and v2: latency, then maybe an injected failure, then the model. */
  const predictAll = async (rows: number[][]): Promise<IrisPrediction[] | null> => {
    if (latencyMs > 0) await sleep(latencyMs, undefined, { signal: closing.signal });
    if (errorRate > 0 && draw() < errorRate) return null;
    return rows.map((row) => model.predict(row));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    stats.requests++;
    const url = req.url ?? '/';
    const queryAt = url.indexOf('?');
    const path = queryAt === -1 ? url : url.slice(0, queryAt);
    const method = req.method ?? 'GET';

    const isV1Predict = path.startsWith(v1Base) && path.endsWith(':predict')
      && (path[v1Base.length] === ':' || path[v1Base.length] === '/');
    const isV2Infer = v2Infer.has(path);
    if (isV1Predict || isV2Infer) {
      if (method !== 'POST') return send(res, 405, { error: `${path} accepts POST, not ${method}` }, { allow: 'POST' });
      const body = parseJson(await readBody(req));
      const predictions = await predictAll(isV1Predict ? parseV1(body) : parseV2(body));
      if (predictions === null) {
        stats.injectedErrors++;
        return send(res, 500, { error: `injected failure in ${name}@${version}` });
      }
      stats.predictions++;
      stats.instances += predictions.length;
      if (isV1Predict) {
        return send(res, 200, {
          predictions: predictions.map((p) => ({ label: p.label, class_index: p.classIndex, probabilities: p.probabilities })),
          model_name: name,
          model_version: version,
        });
      }
      const id = isObject(body) && typeof body.id === 'string' ? { id: body.id } : {};
      return send(res, 200, { model_name: name, model_version: version, ...id, outputs: v2Outputs(predictions, model.classes.length) });
    }

    const readOnly = path === '/healthz' || path === v1Base || path === v2Base;
    if (!readOnly) return send(res, 404, { error: `no route for ${method} ${path}` });
    if (method !== 'GET' && method !== 'HEAD') return send(res, 405, { error: `${path} accepts GET, not ${method}` }, { allow: 'GET, HEAD' });
    if (path === '/healthz') return send(res, 200, { status: 'ok', model: name, version });
    return send(res, 200, path === v1Base ? metadata : v2Metadata);
  };

  const server = createServer({ keepAlive: true }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      switch (errorCode(err)) {
        case 'BAD_REQUEST': {
          stats.badRequests++;
          const bad = err as BadRequest;
          // A 413 leaves unread body bytes on the socket, so that connection cannot be reused.
          return send(res, bad.status, { error: bad.message }, bad.status === 413 ? { connection: 'close' } : {});
        }
        case 'ABORT_ERR': // close() cancelled an injected delay; the socket is already gone
        case 'ECONNRESET':
        case 'ERR_STREAM_PREMATURE_CLOSE':
          return undefined;
        default:
          if (!res.headersSent) send(res, 500, { error: `model server failure: ${String(err)}` });
          else res.destroy();
          return undefined;
      }
    });
  });
  // Outlive typical load-balancer and client idle timeouts (60 s) so the proxy, not the model,
  // decides when an idle pooled connection ends; headersTimeout must exceed keepAliveTimeout.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  let closed: Promise<void> | null = null;

  return {
    url: `http://${urlHost}:${bound}`,
    port: bound,
    stats,
    setFaults(faults) {
      checkFaults(faults);
      if (faults.latencyMs !== undefined) latencyMs = faults.latencyMs;
      if (faults.errorRate !== undefined) errorRate = faults.errorRate;
    },
    close() {
      closed ??= new Promise<void>((resolve, reject) => {
        closing.abort();
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      });
      return closed;
    },
  };
}
