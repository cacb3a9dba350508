// The recorder worker: pairs, extracts, remembers for feedback and writes records on its own thread and heap.
import { parentPort, workerData } from 'node:worker_threads';
import { Metrics } from '../metrics/registry.js';
import type { RecordingPolicy } from './capture.js';
import { PairRecorder, type FeedbackResult } from './pair-recorder.js';
import { bufferLabels } from './budgets.js';
import { wireBytes, type ExperimentTotals, type FromWorker, type RecorderWorkerSettings, type ToWorker, type WireObservation } from './recorder-protocol.js';
import { NdjsonSink } from './sinks/ndjson.js';
import { nopSink, type RecordSink } from './sinks/sink.js';
import { createStdoutSink } from './sinks/stdout.js';
import { PredictionStats, type DriftPolicy } from './prediction-stats.js';
import { JetStreamSink } from './sinks/jetstream.js';
import { CloudEventsSink } from './sinks/cloudevents.js';

const port = parentPort;
if (port === null) throw new Error('recorder-worker.js runs only as a worker thread (see recorder-client.ts)');
const settings = workerData as RecorderWorkerSettings;

// Its own registry without default metrics: the serving thread merges these series into its /metrics at scrape time.
const metrics = new Metrics({ defaultMetrics: false });
let policies = new Map<string, RecordingPolicy>();

function createSink(): RecordSink {
  if (settings.sink === 'none') return nopSink;
  if (settings.sink === 'stdout') return createStdoutSink(metrics, settings.budgets.sink);
  if (settings.sink === 'cloudevents') {
    if (settings.cloudevents === undefined) throw new Error('the cloudevents sink needs its receiver settings');
    return new CloudEventsSink(metrics, settings.cloudevents, settings.budgets.sink);
  }
  if (settings.sink === 'jetstream') {
    if (settings.nats === undefined) throw new Error('the jetstream sink needs its NATS settings');
    return new JetStreamSink(metrics, { ...settings.nats, maxQueueBytes: settings.budgets.sink }, (err) => port?.postMessage({ type: 'sink-error', message: (err as Error)?.message ?? String(err) } satisfies FromWorker));
  }
  return new NdjsonSink(metrics, { dir: settings.dir, maxFileBytes: settings.maxFileBytes, rotateMs: settings.rotateMs, retryMs: settings.retryMs, maxQueueBytes: settings.budgets.sink });
}

const sink = createSink();
const predictionStats = new PredictionStats({ budgetBytes: settings.budgets.predictionStats, onDrop: () => metrics.recordsDropped.labels(bufferLabels.predictionStats, 'memory_budget').inc() });
const recorder = new PairRecorder({ policies: { policyOf: (route) => policies.get(route) }, metrics, sink, keySalt: settings.keySalt, budgets: settings.budgets, stats: predictionStats });
// Drift windows end on time even when a route is quiet, and the last prediction counts reach the serving thread
// after traffic stops (they are sent at most every predictionsEveryMs).
let drifts = new Map<string, DriftPolicy>();
let counted = false;
setInterval(() => {
  predictionStats.tick(drifts);
  if (ackTimer === null && counted) ackTimer = setTimeout(sendAck, ackDelayMs);
}, 1_000).unref();
for (const buffer of ['queue', 'pending', 'joinTable', 'sink', 'predictionStats'] as const) metrics.recorderBudget.labels(bufferLabels[buffer]).set(settings.budgets[buffer]);

/**
 * How often prediction counts travel to the serving thread at most: they are larger than the other totals (labels,
 * score buckets, drift windows) and the controller reads them once per tick (250 ms), so the serving thread does not
 * deserialise them with every ack.
 */
const predictionsEveryMs = 250;
let lastPredictionsAt = 0;
let lastPredictions = '';

/** Totals for the serving thread; null when nothing changed since the last ones sent. */
let lastTotals = '';
function totals(): ExperimentTotals | null {
  const routes = [...policies.keys()];
  const next: ExperimentTotals = { agreement: {}, outcomes: {} };
  for (const route of routes) {
    next.agreement[route] = recorder.agreementOf(route);
    next.outcomes[route] = recorder.outcomesOf(route);
  }
  const text = JSON.stringify(next);
  const now = Date.now();
  if (counted && now - lastPredictionsAt >= predictionsEveryMs) {
    lastPredictionsAt = now;
    const predictions: NonNullable<ExperimentTotals['predictions']> = {};
    for (const route of routes) {
      const found = recorder.predictionsOf(route);
      if (found !== null) predictions[route] = found;
    }
    const predictionsText = JSON.stringify(predictions);
    if (predictionsText !== lastPredictions) {
      lastPredictions = predictionsText;
      next.predictions = predictions;
    }
  }
  if (text === lastTotals && next.predictions === undefined) return null;
  lastTotals = text;
  return next;
}

// Acks are batched: the serving thread needs them only to bound what is in flight and to refresh the totals.
/** How long acks wait to batch up; also bounds how stale the serving thread's totals are. */
const ackDelayMs = 20;
let processed = 0;
let processedBytes = 0;
let ackTimer: NodeJS.Timeout | null = null;
function sendAck(): void {
  ackTimer = null;
  const message: FromWorker = { type: 'ack', processed, bytes: processedBytes, totals: totals() };
  processed = 0;
  processedBytes = 0;
  port!.postMessage(message);
  // A burst is worked through in batches that can outlast the ack delay: ack again until it is done, so the last
  // totals sent are the final ones (else they stay short until the next observation arrives).
  if (recorder.backlog > 0) ackTimer = setTimeout(sendAck, ackDelayMs);
}

function toBuffer(text: string | null): Buffer | null {
  return text === null ? null : Buffer.from(text, 'latin1');
}

function observe(item: WireObservation): void {
  if (item.kind === 'served') recorder.served({ ...item, requestBody: toBuffer(item.requestBody), responseBody: toBuffer(item.responseBody) });
  else recorder.shadowed({ ...item, responseBody: toBuffer(item.responseBody) });
}

function reply(id: number, result: FeedbackResult[] | unknown[] | null): void {
  // Totals first, so a caller that awaited this reply already sees what it changed (e.g. outcomes after feedback).
  if (ackTimer !== null) clearTimeout(ackTimer);
  sendAck();
  port!.postMessage({ type: 'reply', id, result } satisfies FromWorker);
}

port.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'policies':
      policies = new Map(message.routes);
      drifts = new Map(message.routes.flatMap(([route, policy]) => (policy.drift !== undefined ? [[route, policy.drift] as const] : [])));
      counted = message.routes.some(([, policy]) => policy.drift !== undefined || policy.divergence !== undefined);
      return;
    case 'observations':
      for (const item of message.items) {
        processedBytes += wireBytes(item);
        observe(item);
      }
      processed += message.items.length;
      ackTimer ??= setTimeout(sendAck, ackDelayMs);
      return;
    case 'feedback':
      reply(message.id, recorder.feedback(message.items));
      return;
    case 'flush':
      void recorder.flush().then(() => reply(message.id, null));
      return;
    case 'metrics': {
      const usage = recorder.usage();
      for (const buffer of ['queue', 'pending', 'joinTable'] as const) metrics.recorderBytes.labels(bufferLabels[buffer]).set(usage[buffer]);
      metrics.recorderBytes.labels(bufferLabels.sink).set(sink.bufferedBytes);
      metrics.recorderBytes.labels(bufferLabels.predictionStats).set(predictionStats.bytes);
      void metrics.registry.getMetricsAsJSON().then((json) => reply(message.id, json));
      return;
    }
    case 'close':
      void recorder.close().then(() => {
        reply(message.id, null);
        port!.close();
      });
      return;
  }
});
