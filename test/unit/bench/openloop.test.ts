// The open-loop generator leaves its lead-in out of the percentiles but not out of the totals, and reads a companion series.
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

describe('runOpenLoop companion', () => {
  // Both servers hold arrivals 100-149 (0.1 s at 500 req/s) for `slowMs`: a stall the companion sees as well.
  const stallFrom = 100;
  const stallTo = 150;
  let target: http.Server;
  let companion: http.Server;
  let counts = { target: 0, companion: 0 };
  const stalling = (name: 'target' | 'companion') =>
    http.createServer((req, res) => {
      const index = counts[name]++;
      req.resume();
      req.on('end', () => {
        if (index >= stallFrom && index < stallTo) setTimeout(() => res.end(name), slowMs);
        else res.end(name);
      });
    });
  const listen = async (server: http.Server) => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  };

  beforeAll(() => {
    target = stalling('target');
    companion = stalling('companion');
  });
  afterAll(async () => {
    await Promise.all([target, companion].map((server) => new Promise((resolve) => server.close(resolve))));
  });

  it('sends the companion the same schedule and leaves the bins it marks as stalled out of both series', async () => {
    counts = { target: 0, companion: 0 };
    const [targetUrl, companionUrl] = await Promise.all([listen(target), listen(companion)]);
    // Three 10 ms bins of padding on each side absorb arrival reordering between the two servers; the 50 ms threshold
    // is far below the stall and far above what a loaded CI machine adds to a local answer.
    const result = await runOpenLoop({ url: targetUrl, companionUrl, rate: 500, seconds: 0.6, connections: 256, preconnect: 0, quiet: { padBins: 3, stallMs: 50 } });
    expect(counts).toEqual({ target: 300, companion: 300 });
    expect(result.companion).toMatchObject({ url: companionUrl, ok2xx: 300, errors: 0, unfinished: 0 });
    // Over the whole run both series show the stall.
    expect(result.latencyUs.max).toBeGreaterThanOrEqual(slowMs * 1000);
    expect(result.companion!.latencyUs.max).toBeGreaterThanOrEqual(slowMs * 1000);
    // 300 samples in 60 bins of 10 ms; the stalled block and its padding are left out, the rest is kept.
    const quiet = result.quiet!;
    expect(quiet).toMatchObject({ bins: 60, binMs: 10, stallMs: 50, padBins: 3 });
    expect(quiet.stalledBins).toBeGreaterThanOrEqual(10);
    expect(quiet.excludedShare).toBeGreaterThan(0.2);
    expect(quiet.excludedShare).toBeLessThan(0.8);
    expect(quiet.latencyUs.max).toBeLessThan(slowMs * 1000);
    expect(quiet.companionLatencyUs.max).toBeLessThanOrEqual(50_000);
  });
});
