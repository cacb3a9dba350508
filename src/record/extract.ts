// Protocol-aware prediction extraction (KServe v1, Open Inference v2, OpenAI incl. SSE, JSON Pointer) and pair comparison.
import type { RoutePolicy } from '../config/policy-schema.js';
import { parsePointer } from '../config/json-pointer.js';

type PredictionsPolicy = NonNullable<RoutePolicy['predictions']>;
export type PredictionKind = PredictionsPolicy['kind'];

/** What was extracted from one response. `value` is null when nothing could be read; `error` says why. */
export interface Extracted {
  value: string | number | (string | number)[] | null;
  error: string | null;
}

/** The comparison of a champion and a challenger prediction, by prediction kind. */
export type Comparison =
  | { kind: 'class'; agree: boolean }
  | { kind: 'score'; agree: boolean; absDiff: number; relDiff: number }
  | { kind: 'text'; agree: boolean; exactMatch: boolean; lengthDiff: number }
  | { kind: 'unparsed'; agree: null };

/** Compiled extraction settings for a route. */
export interface Extractor {
  readonly protocol: PredictionsPolicy['protocol'];
  readonly kind: PredictionKind;
  readonly pointer: readonly string[];
  readonly tolerance: number;
}

const defaultPointers: Record<PredictionsPolicy['protocol'], string> = {
  'kserve-v1': '/predictions',
  'open-inference-v2': '/outputs/0/data',
  openai: '/choices/0',
  json: '',
};

export { parsePointer };

/** Resolves pointer tokens against a parsed JSON value; undefined when a step is missing. */
export function resolvePointer(document: unknown, tokens: readonly string[]): unknown {
  let current: unknown = document;
  for (const token of tokens) {
    if (Array.isArray(current)) current = current[Number(token)];
    else if (current !== null && typeof current === 'object') current = (current as Record<string, unknown>)[token];
    else return undefined;
  }
  return current;
}

/** Builds a route's extractor from its `predictions` policy (defaults when the route has none). */
export function compileExtractor(predictions: PredictionsPolicy | undefined): Extractor {
  const protocol = predictions?.protocol ?? 'json';
  return Object.freeze({
    protocol,
    kind: predictions?.kind ?? (protocol === 'openai' ? 'text' : 'class'),
    pointer: Object.freeze(parsePointer(predictions?.pointer ?? defaultPointers[protocol])),
    tolerance: predictions?.tolerance ?? 0,
  });
}

/** Normalises one predicted element to a class label, score or text. */
function normaliseElement(element: unknown, kind: PredictionKind): string | number | null {
  if (element === null || element === undefined) return null;
  if (kind === 'score') {
    if (typeof element === 'number') return element;
    if (typeof element === 'string' && element.trim() !== '' && Number.isFinite(Number(element))) return Number(element);
    if (typeof element === 'object') {
      const o = element as Record<string, unknown>;
      for (const key of ['score', 'probability', 'value', 'prediction']) if (typeof o[key] === 'number') return o[key];
    }
    return null;
  }
  if (typeof element === 'string' || typeof element === 'number' || typeof element === 'boolean') return kind === 'text' ? String(element) : String(element);
  if (typeof element === 'object') {
    const o = element as Record<string, unknown>;
    // Common shapes: {label}, {class}, {class_index}, OpenAI choices {message:{content}} / {text}.
    for (const key of ['label', 'class', 'class_name', 'class_index', 'text', 'content']) {
      const v = o[key];
      if (typeof v === 'string' || typeof v === 'number') return String(v);
    }
    const message = o.message as Record<string, unknown> | undefined;
    if (message && typeof message.content === 'string') return message.content;
    // Unknown object: compare canonical JSON so identical answers still agree.
    return JSON.stringify(element);
  }
  return null;
}

function normalise(value: unknown, kind: PredictionKind): Extracted {
  if (value === undefined) return { value: null, error: 'the prediction pointer does not exist in the response' };
  if (Array.isArray(value)) {
    const out: (string | number)[] = [];
    for (const element of value) {
      const n = normaliseElement(element, kind);
      if (n === null) return { value: null, error: `an element is not a ${kind}` };
      out.push(n);
    }
    return { value: out.length === 1 ? out[0]! : out, error: null };
  }
  const n = normaliseElement(value, kind);
  return n === null ? { value: null, error: `the prediction is not a ${kind}` } : { value: n, error: null };
}

/** Assembles the text of an OpenAI chat/completions server-sent event stream (`data:` lines, `[DONE]` terminator). */
export function assembleOpenAiStream(text: string): Extracted {
  let out = '';
  let sawData = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith('data:')) continue;
    const payload = line.slice(5).trim();
    if (payload === '[DONE]') break;
    if (payload === '') continue;
    try {
      const event = JSON.parse(payload) as { choices?: { delta?: { content?: unknown }; text?: unknown }[] };
      const choice = event.choices?.[0];
      const piece = choice?.delta?.content ?? choice?.text;
      if (typeof piece === 'string') out += piece;
      sawData = true;
    } catch {
      return { value: null, error: 'a server-sent event is not JSON' };
    }
  }
  return sawData ? { value: out, error: null } : { value: null, error: 'the event stream holds no data events' };
}

/** Extracts the prediction from a (possibly truncated) response copy. Never throws. */
export function extractPrediction(extractor: Extractor, body: Buffer | null, contentType: string | null, truncated: boolean): Extracted {
  if (body === null || body.length === 0) return { value: null, error: 'empty response' };
  if (truncated) return { value: null, error: 'response larger than predictions.maxResponseBytes' };
  const text = body.toString('utf8');
  if (extractor.protocol === 'openai' && (contentType?.includes('text/event-stream') || text.startsWith('data:'))) {
    const assembled = assembleOpenAiStream(text);
    return assembled.error === null ? normalise(assembled.value, extractor.kind) : assembled;
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    return { value: null, error: 'response is not JSON' };
  }
  return normalise(resolvePointer(document, extractor.pointer), extractor.kind);
}

/** Compares two predictions of the same kind; unparsed on either side gives `agree: null`. */
export function comparePredictions(extractor: Extractor, champion: Extracted, challenger: Extracted): Comparison {
  if (champion.value === null || challenger.value === null) return { kind: 'unparsed', agree: null };
  const a = champion.value;
  const b = challenger.value;
  switch (extractor.kind) {
    case 'score': {
      const xs = Array.isArray(a) ? a : [a];
      const ys = Array.isArray(b) ? b : [b];
      if (xs.length !== ys.length) return { kind: 'score', agree: false, absDiff: Number.POSITIVE_INFINITY, relDiff: Number.POSITIVE_INFINITY };
      let absDiff = 0;
      let scale = 0;
      for (let i = 0; i < xs.length; i++) {
        absDiff = Math.max(absDiff, Math.abs(Number(xs[i]) - Number(ys[i])));
        scale = Math.max(scale, Math.abs(Number(xs[i])));
      }
      const relDiff = scale === 0 ? (absDiff === 0 ? 0 : Number.POSITIVE_INFINITY) : absDiff / scale;
      return { kind: 'score', agree: absDiff <= extractor.tolerance, absDiff, relDiff };
    }
    case 'text': {
      const x = Array.isArray(a) ? a.join('\n') : String(a);
      const y = Array.isArray(b) ? b.join('\n') : String(b);
      return { kind: 'text', agree: x === y, exactMatch: x === y, lengthDiff: y.length - x.length };
    }
    default:
      return { kind: 'class', agree: JSON.stringify(a) === JSON.stringify(b) };
  }
}

/** Compares two logged sides by their extracted predictions. */
export function compareWith(extractor: Extractor, champion: { prediction: Extracted['value'] }, challenger: { prediction: Extracted['value'] }): Comparison {
  return comparePredictions(extractor, { value: champion.prediction, error: null }, { value: challenger.prediction, error: null });
}

/** Bytes a prediction is counted for against the recorder's budgets (characters for text: one byte each for ASCII). */
export function predictionBytes(value: Extracted['value']): number {
  if (value === null) return 0;
  if (typeof value === 'number') return 8;
  if (typeof value === 'string') return value.length;
  let bytes = 16;
  for (const element of value) bytes += 16 + (typeof element === 'string' ? element.length : 8);
  return bytes;
}

/** Whether a prediction matches a ground-truth label (null when there is no prediction to judge). */
export function compareLabels(prediction: Extracted['value'], label: unknown): boolean | null {
  if (prediction === null) return null;
  if (Array.isArray(prediction)) return JSON.stringify(prediction.map(String)) === JSON.stringify((Array.isArray(label) ? label : [label]).map(String));
  return String(prediction) === String(label);
}
