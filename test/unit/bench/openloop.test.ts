// The open-loop generator leaves its lead-in out of the percentiles but not out of the totals.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runOpenLoop } from '../../../bench/openloop.js';

const slowFirst = 100;
// Far above any stall a loaded CI machine shows, so a measured request cannot reach it.
const slowMs = 250;
let server: http.Server;
let url = '';
let arrivals = 0;

beforeAll(async () => {
  // The first `slowFirst` requests answer after `slowMs`; every later one at once. Only the lead-in is slow.
  server = http.createServer((req, res) => {
    const index = arrivals++;
    req.resume();
    req.on('end', () => {
      if (index < slowFirst) setTimeout(() => res.end('slow'), slowMs);
      else res.end('fast');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

describe('runOpenLoop lead-in', () => {
  it('sends the lead-in on the same schedule, counts it in the totals and leaves it out of every percentile', async () => {
    arrivals = 0;
    let starts = 0;
    let sentBeforeStart = -1;
    // 500 req/s: a lead-in of 0.2 s is the first 100 requests (all slow), then 200 measured requests (all fast).
    const result = await runOpenLoop({ url, rate: 500, seconds: 0.4, leadInSeconds: 0.2, connections: 256, preconnect: 0, onStart: () => { starts++; sentBeforeStart = arrivals; } });
    expect(result.scheduled).toBe(300);
    expect(result.ok2xx).toBe(300);
    expect(result.measuredCompleted).toBe(200);
    expect(result.leadInSeconds).toBe(0.2);
    expect(starts).toBe(1);
    // onStart runs just before the first measured send: at most the lead-in has reached the server by then.
    expect(sentBeforeStart).toBeLessThanOrEqual(slowFirst);
    expect(result.wholeRunLatencyUs.max).toBeGreaterThanOrEqual(slowMs * 1000);
    expect(result.latencyUs.max).toBeLessThan(slowMs * 1000);
  });

  it('measures everything when there is no lead-in', async () => {
    arrivals = 0;
    const result = await runOpenLoop({ url, rate: 500, seconds: 0.4, connections: 256, preconnect: 0 });
    expect(result.scheduled).toBe(200);
    expect(result.measuredCompleted).toBe(200);
    expect(result.latencyUs.max).toBeGreaterThanOrEqual(slowMs * 1000);
    expect(result.latencyUs).toEqual(result.wholeRunLatencyUs);
  });
});
