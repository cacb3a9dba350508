// Process environment → a validated, frozen runtime Config (ports, paths, tokens, Unleash and Redis settings).
import { z } from 'zod';
import { SWY_ERR_ENV_INVALID } from '../errors.js';

/** A whole number in [min, max]; every failure says which range is allowed (zod's own text says "received NaN"). */
function wholeNumber(min: number, max: number) {
  const error = `must be a whole number from ${min} to ${max}`;
  return z.coerce.number({ error }).int({ error }).min(min, { error }).max(max, { error });
}

/** A number (fractions allowed) in [min, max], with the same kind of message. */
function numberIn(min: number, max: number) {
  const error = `must be a number from ${min} to ${max}`;
  return z.coerce.number({ error }).min(min, { error }).max(max, { error });
}

/** The smallest memory setting accepted: below it the prediction log's budgets (record/budgets.ts) hold too little to pair anything. */
export const minMemoryMb = 64;
/** The largest memory setting accepted (1 TiB). */
export const maxMemoryMb = 1_048_576;

/** Where the prediction log goes (SWITCHYARD_PAIRS_SINK): the one list of sink kinds. */
export const sinkKinds = ['ndjson', 'stdout', 'jetstream', 'cloudevents', 'none'] as const;
export type SinkKind = (typeof sinkKinds)[number];

const port = wholeNumber(0, 65_535);
const optionalText = z.string().trim().min(1).optional();

const envSchema = z.object({
  SWITCHYARD_CONFIG: optionalText,
  SWITCHYARD_PORT: port.default(8080),
  SWITCHYARD_ADMIN_PORT: port.default(9090),
  SWITCHYARD_HOST: z.string().min(1).default('0.0.0.0'),
  SWITCHYARD_DATA_DIR: z.string().min(1).default('./data'),
  SWITCHYARD_DRAIN_MS: wholeNumber(0, 600_000).default(10_000),
  SWITCHYARD_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  SWITCHYARD_ADMIN_TOKEN: optionalText,
  /** redis://, rediss://, redis+sentinel:// or redis+cluster:// (parsed by coordination/redis-url.ts). */
  SWITCHYARD_REDIS_URL: optionalText.refine((url) => url === undefined || /^rediss?(\+sentinel|\+cluster)?:\/\//.test(url), {
    message: 'must start with redis://, rediss://, redis+sentinel:// or redis+cluster:// (docs/replicas.md)',
  }),
  SWITCHYARD_REDIS_PREFIX: z.string().regex(/^[A-Za-z0-9:_.-]{1,64}$/).default('swy'),
  SWITCHYARD_REDIS_TIMEOUT_MS: wholeNumber(10, 10_000).default(200),
  SWITCHYARD_COORDINATION_MS: wholeNumber(20, 10_000).default(250),
  /** Default max(2000, 8 × SWITCHYARD_COORDINATION_MS). */
  SWITCHYARD_LEASE_MS: wholeNumber(100, 600_000).optional(),
  /** Comma-separated URLs each receiving every notified event as JSON (control/notify-config.ts). */
  SWITCHYARD_WEBHOOK_URLS: optionalText,
  /** HMAC-SHA256 key signing the SWITCHYARD_WEBHOOK_URLS posts (docs/notifications.md). */
  SWITCHYARD_WEBHOOK_SECRET: optionalText,
  /** YAML or JSON file of notification sinks (docs/notifications.md). */
  SWITCHYARD_NOTIFY_FILE: optionalText,
  SWITCHYARD_CONTROL_INTERVAL_MS: wholeNumber(10, 60_000).default(250),
  SWITCHYARD_INSTANCE_ID: optionalText,
  SWITCHYARD_PAIRS_SINK: z.enum(sinkKinds).default('ndjson'),
  /** The jetstream sink's servers, stream and subject (README, "Prediction log sinks"). */
  SWITCHYARD_NATS_URL: z.string().regex(/^(nats|tls):\/\/[^,\s]+(,(nats|tls):\/\/[^,\s]+)*$/, { message: 'must be nats://host:port, or several separated by commas' }).default('nats://127.0.0.1:4222'),
  SWITCHYARD_NATS_STREAM: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, { message: 'must be a stream name: letters, digits, _ and -, at most 64' }).default('SWITCHYARD_RECORDS'),
  SWITCHYARD_NATS_SUBJECT: z.string().regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, { message: 'must be a subject of dot-separated tokens without wildcards' }).optional(),
  /** The cloudevents sink's receiver and events per request (0: structured mode, one event per request). */
  SWITCHYARD_CLOUDEVENTS_URL: optionalText.refine((url) => url === undefined || /^https?:\/\/\S+$/.test(url), { message: 'must be an http(s) URL (the CloudEvents receiver, e.g. a Knative broker)' }),
  SWITCHYARD_CLOUDEVENTS_BATCH: wholeNumber(0, 10_000).default(0),
  SWITCHYARD_NATS_CREATE_STREAM: z.enum(['true', 'false']).default('true').transform((v) => v === 'true'),
  SWITCHYARD_PAIRS_DIR: optionalText,
  SWITCHYARD_PAIRS_MAX_FILE_MB: numberIn(1, 100_000).default(64),
  SWITCHYARD_PAIRS_ROTATE_MINUTES: numberIn(1, 10_080).default(60),
  SWITCHYARD_KEY_SALT: optionalText,
  /** MiB the process may use; the prediction log's byte budgets derive from it (record/budgets.ts). Default: the container limit, else 1024. */
  SWITCHYARD_MEMORY_MB: wholeNumber(minMemoryMb, maxMemoryMb).optional(),
  UNLEASH_URL: optionalText,
  UNLEASH_API_TOKEN: optionalText,
  UNLEASH_ADMIN_TOKEN: optionalText,
  UNLEASH_APP_NAME: z.string().min(1).default('switchyard'),
  UNLEASH_ENVIRONMENT: z.string().min(1).default('development'),
  UNLEASH_REFRESH_MS: wholeNumber(100, 3_600_000).default(1_000),
  UNLEASH_BOOTSTRAP_FILE: optionalText,
});

/** Runtime settings read from the environment, with CLI flags applied on top. */
export type EnvConfig = z.infer<typeof envSchema>;

/** Validates the environment once at start; throws SWY_ERR_ENV_INVALID naming each bad variable and what it accepts. */
export function readEnv(env: NodeJS.ProcessEnv = process.env): Readonly<EnvConfig> {
  const result = envSchema.safeParse(env);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new SWY_ERR_ENV_INVALID(lines.join('\n'));
  }
  return Object.freeze(result.data);
}
