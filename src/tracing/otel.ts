// Opt-in OpenTelemetry traces of upstream calls, made by subscribing to the data path's diagnostics channels (src/proxy/trace-channels.ts).
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Span, type TextMapGetter, type TextMapSetter } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace-base';
import type { Logger } from 'pino';
import { upstreamCallEnd, upstreamCallStart, type UpstreamCallMessage } from '../proxy/trace-channels.js';

/** Settings of the tracing module (SWITCHYARD_TRACING=otlp and SWITCHYARD_TRACING_SAMPLE; README, "Request logs and traces"). */
export interface TracingOptions {
  /**
   * OTLP/HTTP traces endpoint, e.g. `http://127.0.0.1:4318/v1/traces`. Default: the exporter's own reading of
   * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces, else localhost:4318.
   */
  url?: string;
  /** Share of traces started here that are recorded (0..1, default 1); a caller's traceparent decides for its own. */
  sampleRatio?: number;
  /** service.name of the spans (default `switchyard`). */
  serviceName?: string;
  /** How long finished spans wait before a batch is exported (ms, default 1000). */
  exportDelayMs?: number;
}

/** Running tracing: stop it to unsubscribe and export what is left. */
export interface Tracing {
  close(): Promise<void>;
}

/** Reads a field from the flat [name, value, ...] header list the data path forwards (names in any case). */
const headerGetter: TextMapGetter<string[]> = {
  keys(headers) {
    const names: string[] = [];
    for (let i = 0; i < headers.length; i += 2) names.push(headers[i]!.toLowerCase());
    return names;
  },
  get(headers, key) {
    for (let i = 0; i < headers.length; i += 2) if (headers[i]!.toLowerCase() === key) return headers[i + 1];
    return undefined;
  },
};

/** Sets a field in the flat header list: replaces every value already there (the caller's traceparent), else appends. */
const headerSetter: TextMapSetter<string[]> = {
  set(headers, key, value) {
    let found = false;
    for (let i = headers.length - 2; i >= 0; i -= 2) {
      if (headers[i]!.toLowerCase() !== key) continue;
      if (found) headers.splice(i, 2);
      else {
        headers[i + 1] = value;
        found = true;
      }
    }
    if (!found) headers.push(key, value);
  },
};

/**
 * Subscribes to the upstream-call channels and makes one CLIENT span per call (the served call, a fallback, each
 * mirror), all children of the caller's `traceparent` when it sent one; each call carries its own span's
 * `traceparent` upstream. Spans are exported in batches over OTLP/HTTP; the batch queue is bounded (2,048 spans by
 * default), so a collector that cannot keep up loses spans, never memory.
 */
export function startTracing(options: TracingOptions, logger: Logger): Tracing {
  const exporter = new OTLPTraceExporter(options.url === undefined ? {} : { url: options.url });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': options.serviceName ?? 'switchyard' }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(options.sampleRatio ?? 1) }),
    spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: options.exportDelayMs ?? 1_000 })],
  });
  const tracer = provider.getTracer('switchyard');
  const propagator = new W3CTraceContextPropagator();
  /** The caller's context of each client request, read from its headers before the first call replaced them. */
  const callerContext = new WeakMap<object, Context>();
  const spans = new WeakMap<UpstreamCallMessage, Span>();

  const onStart = (message: unknown): void => {
    const call = message as UpstreamCallMessage;
    let parent = callerContext.get(call.request);
    if (parent === undefined) {
      parent = propagator.extract(ROOT_CONTEXT, call.headers, headerGetter);
      callerContext.set(call.request, parent);
    }
    const span = tracer.startSpan(
      `${call.call} ${call.variant}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'http.request.method': call.method,
          'url.full': call.upstream + call.path,
          'switchyard.call': call.call,
          'switchyard.route': call.route,
          'switchyard.variant': call.variant,
          'switchyard.role': call.role,
          'switchyard.request_id': call.requestId,
          ...(call.fallbackFrom === null ? {} : { 'switchyard.fallback_from': call.fallbackFrom }),
        },
      },
      parent,
    );
    spans.set(call, span);
    propagator.inject(trace.setSpan(parent, span), call.headers, headerSetter);
  };

  const onEnd = (message: unknown): void => {
    const call = message as UpstreamCallMessage;
    const span = spans.get(call);
    if (span === undefined) return;
    spans.delete(call);
    if (call.status !== 0) span.setAttribute('http.response.status_code', call.status);
    if (call.errorKind !== null) {
      span.setAttribute('error.type', call.errorKind);
      span.setStatus({ code: SpanStatusCode.ERROR, message: call.errorKind });
    }
    if (call.fellBack) span.setAttribute('switchyard.fell_back', true);
    span.end();
  };

  upstreamCallStart.subscribe(onStart);
  upstreamCallEnd.subscribe(onEnd);
  logger.info({ url: options.url ?? 'from OTEL_EXPORTER_OTLP_* or localhost:4318', sampleRatio: options.sampleRatio ?? 1 }, 'tracing upstream calls with OpenTelemetry (OTLP/HTTP)');
  let closed = false;
  return {
    async close() {
      if (closed) return;
      closed = true;
      upstreamCallStart.unsubscribe(onStart);
      upstreamCallEnd.unsubscribe(onEnd);
      await provider.shutdown();
    },
  };
}
