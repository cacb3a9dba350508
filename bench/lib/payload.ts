// The request and response shapes the benches send and answer, shared so that direct and proxied runs see identical bytes.

/** Path of the benchmarked inference call; it sits under the bench route's pathPrefix `/v1/models/m`. */
export const predictPath = '/v1/models/m:predict';

/** A small JSON inference request (one Iris-like row), sent as POST like a real model call. */
export const requestBody = '{"instances":[[5.1,3.5,1.4,0.2]],"parameters":{"threshold":0.5}}';

/** Request headers for the benchmarked call (no `x-user-id`: requests are split at random in the policy's proportion). */
export const requestHeaders: Readonly<Record<string, string>> = { 'content-type': 'application/json' };

/** The ~200-byte prediction the origins answer with; `model` tells champion and challenger apart. */
export function predictionBody(model: string): string {
  return `{"model":"${model}","version":"2026-11-01","predictions":[{"label":"setosa","scores":[0.9712,0.0261,0.0027]}],"latency_ms":0.41,"request_id":"bench-000000000000","threshold":0.5,"explain":null,"cached":false}`;
}

/** How many different large predictions each model has (sizes spread evenly between the smallest and the largest). */
export const largePredictionVariants = 16;

const words = ['the', 'model', 'answer', 'route', 'shadow', 'champion', 'token', 'of', 'and', 'a', 'prediction', 'is', 'to', 'in', 'request', 'latency', 'memory', 'budget', 'stream', 'log'];

/**
 * Large text predictions (`/predictions/0/text`, kind text), like a generative model's answers: variant v of every
 * model has the same size and words, except that m-v2 disagrees with m-v1 on every fourth variant (its first word
 * differs). Sizes are whole bodies in bytes, spread evenly over [minBytes, maxBytes].
 */
export function largePredictionBodies(model: string, minBytes: number, maxBytes: number): Buffer[] {
  const bodies: Buffer[] = [];
  for (let v = 0; v < largePredictionVariants; v++) {
    const size = Math.round(minBytes + ((maxBytes - minBytes) * v) / Math.max(1, largePredictionVariants - 1));
    const head = `{"model":"${model}","predictions":[{"text":"`;
    const tail = '","finish_reason":"stop"}]}';
    // A seeded generator per variant, so both models build the same text for the same variant.
    let seed = 2_166_136_261 ^ v;
    let text = model === 'm-v2' && v % 4 === 3 ? 'disagree' : 'agree';
    while (head.length + text.length + tail.length < size) {
      seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
      text += ` ${words[(seed >>> 16) % words.length]}`;
    }
    bodies.push(Buffer.from(head + text.slice(0, Math.max(0, size - head.length - tail.length)) + tail));
  }
  return bodies;
}

/** Which large prediction a request gets, from its x-request-id (FNV-1a), so champion and shadow answer the same variant. */
export function largePredictionVariant(requestId: string | undefined, fallback: number): number {
  if (requestId === undefined) return fallback % largePredictionVariants;
  let hash = 2_166_136_261;
  for (let i = 0; i < requestId.length; i++) hash = Math.imul(hash ^ requestId.charCodeAt(i), 16_777_619) >>> 0;
  return hash % largePredictionVariants;
}

/** Large body sizes given in kB as a range `64-200` or one size `128`, in bytes; `name` (flag or variable) is named in errors. */
export function parseLargeKb(raw: string, name = '--large-kb'): { min: number; max: number } {
  const match = /^(\d+(?:\.\d+)?)(?:-(\d+(?:\.\d+)?))?$/.exec(raw.trim());
  const min = Number(match?.[1]);
  const max = Number(match?.[2] ?? match?.[1]);
  if (match === null || !(min >= 1) || max < min) throw new Error(`${name}: "${raw}" is not a body size; give kB as one number (128) or a range MIN-MAX (64-200), at least 1`);
  return { min: Math.round(min * 1024), max: Math.round(max * 1024) };
}
