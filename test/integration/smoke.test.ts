// Smoke: a request flows client → Switchyard → upstream → client.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { request } from 'undici';
import { startUpstream, behave, type Upstream } from '../helpers/upstream.js';
import { startSwitchyard, routePolicy, type RunningSwitchyard } from '../helpers/switchyard.js';

let champion: Upstream;
let swy: RunningSwitchyard;
beforeAll(async () => {
  champion = await startUpstream(behave.json('setosa'), { name: 'champion' });
  swy = await startSwitchyard(routePolicy(champion.url));
});
afterAll(async () => {
  await swy.close();
  await champion.close();
});

it('forwards', async () => {
  const res = await request(`${swy.dataUrl}/v1/models/iris:predict`, { method: 'POST', body: '{"instances":[[1,2,3,4]]}', headers: { 'content-type': 'application/json' } });
  const body = await res.body.json();
  expect(res.statusCode).toBe(200);
});
