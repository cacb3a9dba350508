// `switchyard demo`: trains two Iris models, serves them on 9001/9002, and runs Switchyard in front with policies/demo.yaml.
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { pino } from 'pino';
import { buildApp } from '../app.js';
import { trainIrisModels } from '../demo/iris.js';
import { startModelServer } from '../demo/model-server.js';
import { handleSignals } from './serve.js';
import { parseArgs } from 'node:util';
import { helpOption } from './options.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** policies/demo.yaml, found from both src/cli (tests) and dist/src/cli (built). */
export const demoPolicyPath = path.resolve(here, here.includes(`${path.sep}dist${path.sep}`) ? '../../../policies/demo.yaml' : '../../policies/demo.yaml');

export async function demoCommand(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { port: { type: 'string' }, 'admin-port': { type: 'string' }, ...helpOption }, allowPositionals: false, strict: true });
  } catch (err) {
    console.error(`switchyard demo: ${(err as Error).message}`);
    return 2;
  }
  if (parsed.values.help) {
    console.log('Usage: switchyard demo [--port 8080] [--admin-port 9090]\nModel servers listen on 127.0.0.1:9001 (champion) and :9002 (challenger), as policies/demo.yaml expects.');
    return 0;
  }
  const port = Number(parsed.values.port ?? process.env.SWITCHYARD_PORT ?? 8080);
  const adminPort = Number(parsed.values['admin-port'] ?? process.env.SWITCHYARD_ADMIN_PORT ?? 9090);
  const models = trainIrisModels();
  let champion, challenger;
  try {
    champion = await startModelServer({ name: 'iris', version: 'iris-v1', model: models.logisticRegression, host: '127.0.0.1', port: 9001 });
    challenger = await startModelServer({ name: 'iris', version: 'iris-v2', model: models.decisionTree, host: '127.0.0.1', port: 9002 });
  } catch (err) {
    console.error(`switchyard demo: could not start the sample model servers on 127.0.0.1:9001/9002: ${(err as Error).message}`);
    return 1;
  }
  const logger = pino({ level: process.env.SWITCHYARD_LOG_LEVEL ?? 'warn' });
  const app = await buildApp({ configPath: demoPolicyPath, host: '127.0.0.1', port, adminPort, watch: true, logger });
  handleSignals(app);
  const { dataUrl, adminUrl } = await app.listen();
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  console.log(`Switchyard demo is running.

  Champion  iris-v1  logistic regression  ${champion.url}  held-out accuracy ${pct(models.logisticRegression.heldOutAccuracy)}
  Challenger iris-v2 decision tree        ${challenger.url}  held-out accuracy ${pct(models.decisionTree.heldOutAccuracy)}
  Router    ${dataUrl}   (policy ${demoPolicyPath}: champion serves, challenger shadows 100%)
  Pairs     ${path.resolve(app.dataDir, 'pairs')}/*.ndjson  (both models' predictions per request)
  Admin     ${adminUrl}/v1/routes   ${adminUrl}/metrics

Try:
  curl -s -i -X POST ${dataUrl}/v1/models/iris:predict -H 'content-type: application/json' -H 'x-user-id: alice' -d '{"instances":[[6.0,2.2,5.0,1.5]]}'

Press Ctrl-C to stop.`);
  await new Promise(() => undefined);
  return 0;
}
