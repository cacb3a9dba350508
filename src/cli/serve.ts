// `switchyard serve`: runs the router with env and flag settings; SIGHUP reloads policies, SIGTERM drains and exits 0.
import { pino } from 'pino';
import { buildApp, type Switchyard } from '../app.js';
import { notifyConfigFromEnv, type NotifyConfig } from '../control/notify-config.js';
import { readEnv, type EnvConfig } from '../config/env.js';
import type { PolicyProblem } from '../config/load.js';
import { formatProblems } from '../config/load.js';
import { parseArgs } from 'node:util';
import { helpOption } from './options.js';
import { listenErrorLine } from './listen-error.js';
import { parseAdminTokens, type AdminToken } from '../admin/auth.js';
import { unleashSettingsFromEnv } from '../flags/factory.js';
import { coordinationOptionsFromEnv, redisSettings, type CoordinationOptions } from '../coordination/factory.js';
import type { UnleashSettings } from '../flags/unleash.js';
import { cloudEventsSinkSettings, natsSinkSettings } from '../record/sinks/sink-settings.js';
import { idleBaselineMb, recommendedMinMemoryMb, resolveMemoryMb, semiSpaceMbFor, startedSemiSpaceMb } from '../record/budgets.js';

const serveUsage = `Usage: switchyard serve [--config <file-or-dir>] [--port N] [--admin-port N] [--host H]
Env: SWITCHYARD_CONFIG, SWITCHYARD_PORT (8080), SWITCHYARD_ADMIN_PORT (9090), SWITCHYARD_HOST (0.0.0.0),
     SWITCHYARD_DRAIN_MS (10000), SWITCHYARD_LOG_LEVEL (info), SWITCHYARD_DATA_DIR (./data), SWITCHYARD_ADMIN_TOKEN,
     SWITCHYARD_ADMIN_TOKENS (name:secret,...), SWITCHYARD_MEMORY_MB (the container limit, else 1024)
Replicas (docs/replicas.md): SWITCHYARD_REDIS_URL, SWITCHYARD_INSTANCE_ID (<host>-<pid>), SWITCHYARD_REDIS_PREFIX (swy),
     SWITCHYARD_COORDINATION_MS (250), SWITCHYARD_LEASE_MS (2000), SWITCHYARD_REDIS_TIMEOUT_MS (200)
Flags (docs/flags.md): UNLEASH_URL, UNLEASH_API_TOKEN, UNLEASH_ADMIN_TOKEN, UNLEASH_APP_NAME (switchyard),
     UNLEASH_ENVIRONMENT (development), UNLEASH_REFRESH_MS (1000), UNLEASH_BOOTSTRAP_FILE`;

/** Parses flags and env into settings; flags win over env. Returns an error message instead of throwing. */
export function serveSettings(args: string[], env: NodeJS.ProcessEnv): { env: Readonly<EnvConfig>; configPath: string } | { error: string; help?: boolean } {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { config: { type: 'string', short: 'c' }, port: { type: 'string' }, 'admin-port': { type: 'string' }, host: { type: 'string' }, ...helpOption }, allowPositionals: false, strict: true });
  } catch (err) {
    return { error: (err as Error).message };
  }
  if (parsed.values.help) return { error: serveUsage, help: true };
  const merged = { ...env };
  if (parsed.values.config !== undefined) merged.SWITCHYARD_CONFIG = parsed.values.config as string;
  if (parsed.values.port !== undefined) merged.SWITCHYARD_PORT = parsed.values.port as string;
  if (parsed.values['admin-port'] !== undefined) merged.SWITCHYARD_ADMIN_PORT = parsed.values['admin-port'] as string;
  if (parsed.values.host !== undefined) merged.SWITCHYARD_HOST = parsed.values.host as string;
  let config: Readonly<EnvConfig>;
  try {
    config = readEnv(merged);
  } catch (err) {
    return { error: (err as Error).message };
  }
  if (!config.SWITCHYARD_CONFIG) return { error: 'no policy given: pass --config <file-or-dir> or set SWITCHYARD_CONFIG' };
  return { env: config, configPath: config.SWITCHYARD_CONFIG };
}

/** Installs SIGHUP (reload) and SIGTERM/SIGINT (drain, then exit 0) handlers. */
export function handleSignals(app: Switchyard): void {
  process.on('SIGHUP', () => void app.reload('SIGHUP'));
  let draining = false;
  const drain = (signal: string) => {
    if (draining) return;
    draining = true;
    app.logger.info({ signal, inFlight: app.plane.inFlight }, 'draining');
    void app.drain().then(
      ({ forced }) => {
        app.logger.info({ forced }, 'drained; exiting');
        app.logger.flush();
        process.exit(0);
      },
      (err: unknown) => {
        app.logger.error({ err }, 'drain failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => drain('SIGTERM'));
  process.on('SIGINT', () => drain('SIGINT'));
}

export async function serveCommand(args: string[]): Promise<number> {
  const settings = serveSettings(args, process.env);
  if ('error' in settings) {
    if (settings.help) {
      console.log(settings.error);
      return 0;
    }
    console.error(`switchyard serve: ${settings.error}`);
    return 2;
  }
  const { env, configPath } = settings;
  const logger = pino({ level: env.SWITCHYARD_LOG_LEVEL, base: { app: 'switchyard' } });
  let flags: UnleashSettings | null;
  let adminTokens: AdminToken[];
  let notify: NotifyConfig;
  let coordination: CoordinationOptions;
  try {
    coordination = coordinationOptionsFromEnv(env);
    redisSettings(coordination);
    flags = unleashSettingsFromEnv(env);
    notify = await notifyConfigFromEnv(env);
    // SWITCHYARD_ADMIN_TOKENS ("name:secret,...") is read raw: it names who made each audited change.
    adminTokens = parseAdminTokens({ token: env.SWITCHYARD_ADMIN_TOKEN, tokens: process.env.SWITCHYARD_ADMIN_TOKENS });
  } catch (err) {
    console.error(`switchyard serve: ${(err as Error).message}`);
    return 2;
  }
  const memoryMb = resolveMemoryMb(env.SWITCHYARD_MEMORY_MB);
  const semiSpaceMb = startedSemiSpaceMb();
  if (semiSpaceMb !== null && semiSpaceMb > semiSpaceMbFor(memoryMb)) {
    // The young generation is outside every byte budget: a semi-space sized for a larger container takes the room the
    // budgets assume (src/record/budgets.ts). Node reads the flag only at start, so the fix is the operator's.
    logger.warn({ memoryMb, semiSpaceMb, fits: semiSpaceMbFor(memoryMb) }, `--max-semi-space-size=${semiSpaceMb} is too large for SWITCHYARD_MEMORY_MB=${memoryMb}: the young generation (two semi-spaces) may push the process over its memory limit; start Node with NODE_OPTIONS=--max-semi-space-size=${semiSpaceMbFor(memoryMb)} (the Helm chart does this when server.nodeOptions is empty)`);
  }
  if (memoryMb < recommendedMinMemoryMb) {
    logger.warn({ memoryMb, recommendedMinMemoryMb }, `SWITCHYARD_MEMORY_MB=${memoryMb} is below ${recommendedMinMemoryMb}: the byte budgets still hold, but the process's idle baseline (about ${idleBaselineMb} MiB) leaves so little room that RSS may exceed the setting under load; give the container ${recommendedMinMemoryMb} MiB or more`);
  }
  if (adminTokens.length === 0) logger.warn('no SWITCHYARD_ADMIN_TOKEN set: mutating admin calls (split, pause, resume) are refused');
  let app: Switchyard;
  try {
    app = await buildApp({
      configPath,
      host: env.SWITCHYARD_HOST,
      port: env.SWITCHYARD_PORT,
      adminPort: env.SWITCHYARD_ADMIN_PORT,
      drainMs: env.SWITCHYARD_DRAIN_MS,
      watch: true,
      logger,
      dataDir: env.SWITCHYARD_DATA_DIR,
      flags,
      adminTokens,
      notify,
      controlIntervalMs: env.SWITCHYARD_CONTROL_INTERVAL_MS,
      coordination,
      memoryMb,
      pairs: {
        sink: env.SWITCHYARD_PAIRS_SINK,
        dir: env.SWITCHYARD_PAIRS_DIR,
        maxFileBytes: env.SWITCHYARD_PAIRS_MAX_FILE_MB * 1024 * 1024,
        rotateMs: env.SWITCHYARD_PAIRS_ROTATE_MINUTES * 60_000,
        keySalt: env.SWITCHYARD_KEY_SALT,
        ...(env.SWITCHYARD_PAIRS_SINK === 'jetstream' ? { nats: natsSinkSettings(env) } : {}),
        ...(env.SWITCHYARD_PAIRS_SINK === 'cloudevents' ? { cloudevents: cloudEventsSinkSettings(env) } : {}),
      },
    });
  } catch (err) {
    const e = err as Error & { problems?: PolicyProblem[] };
    console.error(e.problems ? `switchyard: the policy is invalid:\n${formatProblems(e.problems)}` : `switchyard: ${e.message}`);
    return 1;
  }
  handleSignals(app);
  try {
    const { dataUrl, adminUrl } = await app.listen();
    logger.info({ dataUrl, adminUrl, policyVersion: app.policyVersion, routes: app.splits.routes.map((r) => r.name) }, 'switchyard listening');
  } catch (err) {
    console.error(listenErrorLine('serve', err, { port: env.SWITCHYARD_PORT, adminPort: env.SWITCHYARD_ADMIN_PORT }) ?? `switchyard: could not listen: ${(err as Error).message}`);
    await app.close();
    return 1;
  }
  // Keep running until a signal drains us.
  await new Promise(() => undefined);
  return 0;
}
