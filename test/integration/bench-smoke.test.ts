// Bench smoke: a short autocannon run through the built Switchyard process sees no errors, no non-2xx and both variants.
import { expect, it } from 'vitest';
import { runSmoke } from '../../bench/smoke.js';

it('serves a 1 s autocannon burst through the canary path with 0 errors, 0 non-2xx and both variants', async () => {
  // runSmoke throws BENCH_SMOKE_FAILED on any error, timeout, non-2xx or a variant that served nothing.
  const result = await runSmoke({ seconds: 1, connections: 10, mode: 'process' });
  expect(Object.keys(result.served).sort()).toEqual(['m-v1', 'm-v2']);
  expect(Object.values(result.served).every((n) => n > 0)).toBe(true);
});
