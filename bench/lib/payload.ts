// The request and response shapes every bench target sees, shared so that direct and proxied runs send identical bytes.

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
