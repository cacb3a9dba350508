// Picks the flag source (Unleash when UNLEASH_URL is set, else the nop) and derives its settings from the environment.
import type { Logger } from 'pino';
import type { EnvConfig } from '../config/env.js';
import { SWY_ERR_ENV_INVALID } from '../errors.js';
import type { Metrics } from '../metrics/registry.js';
import { NopFlagSource } from './nop.js';
import type { FlagOverlayTarget, FlagSource } from './source.js';
import { UnleashFlagSource, type UnleashSettings } from './unleash.js';

/** Settings, or a function re-read on every client restart (so a reload can pick up a fixed token). */
export type FlagSettingsInput = UnleashSettings | (() => UnleashSettings);

/** Builds the flag source: Unleash when settings are given, else a nop that leaves every route on its policy split. */
export function createFlagSource(settings: FlagSettingsInput | null | undefined, deps: { splits: FlagOverlayTarget; metrics: Metrics; logger: Logger }): FlagSource {
  if (settings === null || settings === undefined) return new NopFlagSource(deps.logger);
  return new UnleashFlagSource({ ...deps, settings: typeof settings === 'function' ? settings : () => settings });
}

/**
 * Splits UNLEASH_URL into the client API URL (`…/api/`) and the server root (Admin API). Both spellings are accepted:
 * `http://unleash:4242/api` (what SDKs are usually given) and `http://unleash:4242`.
 */
export function unleashUrls(raw: string): { apiUrl: string; rootUrl: string } {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new SWY_ERR_ENV_INVALID(`UNLEASH_URL: must be an absolute http(s) URL such as http://unleash:4242/api, got ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new SWY_ERR_ENV_INVALID(`UNLEASH_URL: must use http or https, got ${url.protocol}`);
  const path = url.pathname.replace(/\/+$/, '');
  const rootPath = path.endsWith('/api') ? path.slice(0, -'/api'.length) : path;
  return { apiUrl: `${url.origin}${rootPath}/api/`, rootUrl: `${url.origin}${rootPath}` };
}

/** Unleash settings from the validated environment; null when UNLEASH_URL is unset (flags off). */
export function unleashSettingsFromEnv(env: Readonly<EnvConfig>): UnleashSettings | null {
  if (!env.UNLEASH_URL) return null;
  if (!env.UNLEASH_API_TOKEN) {
    throw new SWY_ERR_ENV_INVALID('UNLEASH_API_TOKEN: required when UNLEASH_URL is set (a backend token such as default:production.<secret>)');
  }
  return {
    ...unleashUrls(env.UNLEASH_URL),
    apiToken: env.UNLEASH_API_TOKEN,
    appName: env.UNLEASH_APP_NAME,
    environment: env.UNLEASH_ENVIRONMENT,
    refreshMs: env.UNLEASH_REFRESH_MS,
    bootstrapFile: env.UNLEASH_BOOTSTRAP_FILE ?? null,
    adminToken: env.UNLEASH_ADMIN_TOKEN ?? null,
    ...(env.SWITCHYARD_INSTANCE_ID ? { instanceId: env.SWITCHYARD_INSTANCE_ID } : {}),
  };
}
