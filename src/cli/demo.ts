// `switchyard demo`: trains two Iris models, serves them on 9001/9002, and runs Switchyard in front with policies/demo.yaml.
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { pino } from 'pino';
import { buildApp, type Switchyard } from '../app.js';
import { trainIrisModels } from '../demo/iris.js';
import { startModelServer, type ModelServer } from '../demo/model-server.js';
import { handleSignals } from './serve.js';
import { parseArgs } from 'node:util';
import { helpOption } from './options.js';
import { parseAdminTokens, type AdminToken } from '../admin/auth.js';
import { readEnv } from '../config/env.js';
import { unleashSettingsFromEnv } from '../flags/factory.js';
import type { UnleashSettings } from '../flags/unleash.js';
import { listenErrorLine } from './listen-error.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** policies/, found from both src/cli (tests) and dist/src/cli (built). */
const policiesDir = path.resolve(here, here.includes(`${path.sep}dist${path.sep}`) ? '../../../policies' : '../../policies');
/** policies/demo.yaml. */
export const demoPolicyPath = path.join(policiesDir, 'demo.yaml');
const MODEL_PORTS = { champion: 9001, challenger: 9002 } as const;

const demoUsage = `Usage: switchyard demo [--port 8080] [--admin-port 9090] [--config policies/demo.yaml]
Model servers listen on 127.0.0.1:9001 (champion) and :9002 (challenger), as the demo policies expect.
Env: SWITCHYARD_PORT, SWITCHYARD_ADMIN_PORT, SWITCHYARD_ADMIN_TOKEN (default: a token generated for this run and
printed), UNLEASH_URL, UNLEASH_API_TOKEN, UNLEASH_ADMIN_TOKEN (with --config policies/demo-unleash.yaml: docs/flags.md,
"A local Unleash").`;

/** The admin token of this run: SWITCHYARD_ADMIN_TOKEN(S) when set, else a fresh random one (printed, never stored). */
function demoTokens(env: NodeJS.ProcessEnv): { tokens: AdminToken[]; printed: string | null } {
  const tokens = parseAdminTokens({ token: env.SWITCHYARD_ADMIN_TOKEN, tokens: env.SWITCHYARD_ADMIN_TOKENS });
  if (tokens.length > 0) return { tokens, printed: env.SWITCHYARD_ADMIN_TOKEN?.trim() || null };
  const secret = `demo-${randomBytes(12).toString('base64url')}`;
  return { tokens: [{ name: 'admin', secret }], printed: secret };
}

/** Quotes a value for a POSIX shell when it needs it. */
const sh = (value: string) => (/^[A-Za-z0-9_.:/@%+=,-]+$/.test(value) ? value : `'${value.replaceAll("'", "'\\''")}'`);

export async function demoCommand(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { port: { type: 'string' }, 'admin-port': { type: 'string' }, config: { type: 'string', short: 'c' }, ...helpOption }, allowPositionals: false, strict: true });
  } catch (err) {
    console.error(`switchyard demo: ${(err as Error).message}`);
    return 2;
  }
  if (parsed.values.help) {
    console.log(demoUsage);
    return 0;
  }
  const merged = { ...process.env };
  if (parsed.values.port !== undefined) merged.SWITCHYARD_PORT = parsed.values.port;
  if (parsed.values['admin-port'] !== undefined) merged.SWITCHYARD_ADMIN_PORT = parsed.values['admin-port'];
  let port: number, adminPort: number;
  let tokens: ReturnType<typeof demoTokens>;
  let flags: UnleashSettings | null;
  try {
    const env = readEnv(merged);
    port = env.SWITCHYARD_PORT;
    adminPort = env.SWITCHYARD_ADMIN_PORT;
    flags = unleashSettingsFromEnv(env);
    tokens = demoTokens(process.env);
  } catch (err) {
    console.error(`switchyard demo: ${(err as Error).message}`);
    return 2;
  }
  const policyPath = path.resolve(parsed.values.config ?? demoPolicyPath);
  const models = trainIrisModels();
  const started: ModelServer[] = [];
  const stopModels = () => Promise.all(started.map((m) => m.close()));
  for (const [role, modelPort, version, model] of [
    ['champion', MODEL_PORTS.champion, 'iris-v1', models.logisticRegression],
    ['challenger', MODEL_PORTS.challenger, 'iris-v2', models.decisionTree],
  ] as const) {
    try {
      started.push(await startModelServer({ name: 'iris', version, model, host: '127.0.0.1', port: modelPort }));
    } catch (err) {
      await stopModels();
      const code = (err as { code?: string }).code;
      const why = code === 'EADDRINUSE' ? 'is already in use' : (err as Error).message;
      console.error(`switchyard demo: port ${modelPort} for the ${role} model server (${version}) ${why}; the demo policies point at 127.0.0.1:${modelPort}, so stop what uses it (an earlier demo?) and start again`);
      return 1;
    }
  }
  const [champion, challenger] = started as [ModelServer, ModelServer];
  const logger = pino({ level: process.env.SWITCHYARD_LOG_LEVEL ?? 'warn' });
  let app: Switchyard;
  try {
    app = await buildApp({ configPath: policyPath, host: '127.0.0.1', port, adminPort, watch: true, logger, adminTokens: tokens.tokens, flags });
  } catch (err) {
    await stopModels();
    console.error(`switchyard demo: ${(err as Error).message}`);
    return 1;
  }
  let urls: { dataUrl: string; adminUrl: string };
  try {
    urls = await app.listen();
  } catch (err) {
    await app.close();
    await stopModels();
    console.error(listenErrorLine('demo', err, { port, adminPort }) ?? `switchyard demo: could not listen: ${(err as Error).message}`);
    return 1;
  }
  handleSignals(app);
  const { dataUrl, adminUrl } = urls;
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const token = tokens.printed ?? '<your SWITCHYARD_ADMIN_TOKENS secret>';
  const exports = `export SWITCHYARD_ADMIN_URL=${adminUrl} SWITCHYARD_ADMIN_TOKEN=${sh(token)}`;
  const relative = path.relative(process.cwd(), policyPath);
  console.log(`Switchyard demo is running.

  Champion   iris-v1  logistic regression  ${champion.url}  held-out accuracy ${pct(models.logisticRegression.heldOutAccuracy)}
  Challenger iris-v2  decision tree        ${challenger.url}  held-out accuracy ${pct(models.decisionTree.heldOutAccuracy)}
  Router     ${dataUrl}   (policy ${relative.startsWith('..') ? policyPath : relative})
  Pairs      ${path.resolve(app.dataDir, 'pairs')}/*.ndjson  (both models' predictions per request)
  Status     ${adminUrl}/ui   (live page; "Enter token" with the token below enables its buttons)
  Admin API  ${adminUrl}/v1/routes   ${adminUrl}/metrics   ${adminUrl}/v1/openapi.json
  Token      ${token}   (${tokens.printed !== null && process.env.SWITCHYARD_ADMIN_TOKEN ? 'from SWITCHYARD_ADMIN_TOKEN' : tokens.printed !== null ? 'generated for this run; set SWITCHYARD_ADMIN_TOKEN to choose it' : 'from SWITCHYARD_ADMIN_TOKENS'})

Try:
  curl -s -i -X POST ${dataUrl}/v1/models/iris:predict -H 'content-type: application/json' -H 'x-user-id: alice' -d '{"instances":[[6.0,2.2,5.0,1.5]]}'

Steer it from another terminal (in this directory):
  ${exports}
  npx switchyard status
  npx switchyard set iris iris-v2 20 --mode canary     # a 20% sticky canary instead of the shadow
  npx switchyard analysis iris                         # guardrails, intervals, shadow gate
  npx switchyard pause iris
  npx switchyard rollback iris
  npx switchyard resume iris

Press Ctrl-C to stop.`);
  await new Promise(() => undefined);
  return 0;
}
