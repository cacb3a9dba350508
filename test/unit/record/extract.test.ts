// Prediction extraction per protocol and pair comparison, as pure functions.
import { describe, expect, it } from 'vitest';
import { assembleOpenAiStream, compareLabels, comparePredictions, compileExtractor, extractPrediction, parsePointer, resolvePointer } from '../../../src/record/extract.js';

const buf = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));

describe('JSON Pointer (RFC 6901)', () => {
  it('parses escapes and resolves arrays and objects', () => {
    expect(parsePointer('/a~1b/~0c/0')).toEqual(['a/b', '~c', '0']);
    expect(resolvePointer({ 'a/b': { '~c': ['x'] } }, parsePointer('/a~1b/~0c/0'))).toBe('x');
    expect(resolvePointer({ a: 1 }, parsePointer('/b/c'))).toBeUndefined();
    expect(parsePointer('')).toEqual([]);
  });
});

describe('extractPrediction', () => {
  it('kserve-v1: predictions array of labels, objects or numbers', () => {
    const ex = compileExtractor({ protocol: 'kserve-v1', tolerance: 0, sampleRate: 1, logInputs: false, redact: [], rawKeys: false, maxResponseBytes: 1000 });
    expect(extractPrediction(ex, buf({ predictions: ['setosa'] }), null, false)).toEqual({ value: 'setosa', error: null });
    expect(extractPrediction(ex, buf({ predictions: [{ label: 'virginica', class_index: 2 }, { label: 'setosa' }] }), null, false).value).toEqual(['virginica', 'setosa']);
    expect(extractPrediction(ex, buf({ predictions: [1] }), null, false).value).toBe('1');
  });

  it('open-inference-v2: outputs[0].data as scores', () => {
    const ex = compileExtractor({ protocol: 'open-inference-v2', kind: 'score', tolerance: 0.01, sampleRate: 1, logInputs: false, redact: [], rawKeys: false, maxResponseBytes: 1000 });
    expect(extractPrediction(ex, buf({ outputs: [{ name: 'p', datatype: 'FP32', shape: [2], data: [0.25, 0.75] }] }), null, false).value).toEqual([0.25, 0.75]);
  });

  it('openai: non-streamed message content and a streamed SSE body', () => {
    const ex = compileExtractor({ protocol: 'openai', tolerance: 0, sampleRate: 1, logInputs: false, redact: [], rawKeys: false, maxResponseBytes: 1000 });
    expect(ex.kind).toBe('text');
    expect(extractPrediction(ex, buf({ choices: [{ message: { role: 'assistant', content: 'Hi!' } }] }), 'application/json', false).value).toBe('Hi!');
    const sse = 'data: {"choices":[{"delta":{"role":"assistant"}}]}\n\ndata: {"choices":[{"delta":{"content":"Hi"}}]}\n\ndata: {"choices":[{"delta":{"content":" you"}}]}\n\ndata: [DONE]\n\n';
    expect(extractPrediction(ex, buf(sse), 'text/event-stream', false).value).toBe('Hi you');
    expect(assembleOpenAiStream('data: not json\n\n').error).toBe('a server-sent event is not JSON');
  });

  it('records why nothing was extracted instead of throwing', () => {
    const ex = compileExtractor({ protocol: 'json', pointer: '/result/label', tolerance: 0, sampleRate: 1, logInputs: false, redact: [], rawKeys: false, maxResponseBytes: 1000 });
    expect(extractPrediction(ex, buf('<html>oops</html>'), 'text/html', false)).toEqual({ value: null, error: 'response is not JSON' });
    expect(extractPrediction(ex, buf({ other: 1 }), null, false).error).toBe('the prediction pointer does not exist in the response');
    expect(extractPrediction(ex, buf({ result: { label: 'a' } }), null, true).error).toContain('maxResponseBytes');
    expect(extractPrediction(ex, null, null, false).error).toBe('empty response');
  });
});

describe('comparePredictions', () => {
  const classes = compileExtractor(undefined);
  const scores = compileExtractor({ protocol: 'json', pointer: '/p', kind: 'score', tolerance: 0.05, sampleRate: 1, logInputs: false, redact: [], rawKeys: false, maxResponseBytes: 1000 });
  const text = compileExtractor({ protocol: 'openai', tolerance: 0, sampleRate: 1, logInputs: false, redact: [], rawKeys: false, maxResponseBytes: 1000 });
  const v = (value: string | number | (string | number)[] | null) => ({ value, error: null });

  it('classes agree only when equal', () => {
    expect(comparePredictions(classes, v('a'), v('a'))).toEqual({ kind: 'class', agree: true });
    expect(comparePredictions(classes, v(['a', 'b']), v(['a', 'c']))).toEqual({ kind: 'class', agree: false });
  });

  it('scores give absolute and relative differences and agree within the tolerance', () => {
    expect(comparePredictions(scores, v(0.5), v(0.54))).toEqual({ kind: 'score', agree: true, absDiff: expect.closeTo(0.04, 10), relDiff: expect.closeTo(0.08, 10) });
    expect(comparePredictions(scores, v([0.2, 0.8]), v([0.4, 0.6])).agree).toBe(false);
  });

  it('texts give exact match and length difference', () => {
    expect(comparePredictions(text, v('hello'), v('hello!'))).toEqual({ kind: 'text', agree: false, exactMatch: false, lengthDiff: 1 });
  });

  it('unparsed on either side is neither agreement nor disagreement', () => {
    expect(comparePredictions(classes, v(null), v('a'))).toEqual({ kind: 'unparsed', agree: null });
  });

  it('judges predictions against ground-truth labels', () => {
    expect(compareLabels('setosa', 'setosa')).toBe(true);
    expect(compareLabels(2, '2')).toBe(true);
    expect(compareLabels(null, 'x')).toBeNull();
    expect(compareLabels(['a', 'b'], ['a', 'b'])).toBe(true);
  });
});
