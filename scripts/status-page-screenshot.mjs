// Draws docs/img/status-page.png: three routes of demo models under traffic (a canary that breaches and rolls back, a
// shadow, a progressive rollout), the page in headless Chromium. Run after `npm run build`: node scripts/status-page-screenshot.mjs [out.png]
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { stringify } from 'yaml';
import { buildApp } from '../dist/src/app.js';
import { trainIrisModels } from '../dist/src/demo/iris.js';
import { startModelServer } from '../dist/src/demo/model-server.js';

const out = path.resolve(process.argv[2] ?? 'docs/img/status-page.png');
const models = trainIrisModels();
const servers = {};
for (const name of ['iris', 'fraud', 'churn']) {
  servers[name] = {
    v1: await startModelServer({ name, version: `${name}-v1`, model: models.logisticRegression, host: '127.0.0.1', port: 0, latencyMs: 2 }),
    v2: await startModelServer({ name, version: `${name}-v2`, model: models.decisionTree, host: '127.0.0.1', port: 0, latencyMs: 2 }),
  };
}
const route = (name, challenger, extra = {}) => ({
  name,
  match: { pathPrefix: `/v1/models/${name}`, methods: ['POST'] },
  champion: { name: `${name}-v1`, url: servers[name].v1.url },
  challengers: [{ name: `${name}-v2`, url: servers[name].v2.url, ...challenger }],
  stickiness: { header: 'x-user-id' },
  predictions: { protocol: 'kserve-v1', kind: 'class', sampleRate: 1 },
  ...extra,
});
const dir = await mkdtemp(path.join(tmpdir(), 'swy-shot-'));
const policyFile = path.join(dir, 'policy.yaml');
await writeFile(policyFile, stringify({
  routes: [
    route('iris', { mode: 'canary', percent: 30 }),
    route('fraud', { mode: 'shadow', percent: 100 }),
    route('churn', { mode: 'canary', percent: 0 }, { rollout: { steps: [10, 25, 50, 100], minDuration: '4s', minRequests: 150, promote: true } }),
  ],
}));
const app = await buildApp({ configPath: policyFile, host: '127.0.0.1', port: 0, adminPort: 0, dataDir: dir, adminTokens: [{ name: 'alice', secret: 'screenshot' }], controlIntervalMs: 250 });
const { dataUrl, adminUrl } = await app.listen();

const flowers = [[5.1, 3.5, 1.4, 0.2], [6.0, 2.2, 5.0, 1.5], [6.7, 3.1, 4.7, 1.5], [6.3, 2.8, 5.1, 1.5], [5.9, 3.0, 5.1, 1.8]];
let i = 0;
async function traffic(ms) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    await Promise.all(['iris', 'fraud', 'churn'].map((name) => fetch(`${dataUrl}/v1/models/${name}:predict`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-user-id': `user-${i++ % 5000}` }, body: JSON.stringify({ instances: [flowers[i % flowers.length]] }),
    }).then((r) => r.arrayBuffer())));
  }
}
await traffic(20_000);
servers.iris.v2.setFaults({ errorRate: 0.12 });
await traffic(8_000);

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
const page = await browser.newPage({ viewport: { width: 1500, height: 1180 }, deviceScaleFactor: 1 });
await page.goto(`${adminUrl}/ui#route=iris`);
await page.waitForSelector('body[data-ready=true]');
await page.click('#token-button');
await page.fill('#token-input', 'screenshot');
await page.click('#token-save');
await page.waitForSelector('#detail .chart svg .band');
await page.waitForTimeout(1500);
await page.evaluate(() => document.querySelectorAll('#toast div').forEach((d) => d.remove()));
await page.screenshot({ path: out });
await browser.close();
await app.close();
for (const pair of Object.values(servers)) for (const s of Object.values(pair)) await s.close();
console.log(`wrote ${out}`);
