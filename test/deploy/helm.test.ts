// Chart checks with the real helm binary: lint --strict and template for every ci values file, then the rendered manifests.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  chartDir, ciValuesFiles, effectiveValues, helmPath, only, readYaml, releaseNamespace, render, renderFailure, repoRoot, runHelm,
  type ChartValues, type Container, type Manifest, type PodSpec, type RenderOptions,
} from './chart.js';
import { readEnv } from '../../src/config/env.js';
import { defaultMemoryMb, semiSpaceMbFor } from '../../src/record/budgets.js';
import { coordinationOptionsFromEnv, redisSettings } from '../../src/coordination/factory.js';

const cases = [
  { name: 'values.yaml defaults', file: undefined },
  ...ciValuesFiles().map((file) => ({ name: `ci/${basename(file)}`, file })),
];

/** Kinds each case must render, so a template that silently drops out (or appears) fails here. */
const expectedKinds: Record<string, string[]> = {
  'values.yaml defaults': ['ConfigMap', 'Deployment', 'Pod', 'Service', 'ServiceAccount'],
  'ci/default-values.yaml': ['ConfigMap', 'Deployment', 'Pod', 'Service', 'ServiceAccount'],
  'ci/ha-values.yaml': [
    'ConfigMap', 'ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'Pod', 'PodDisruptionBudget',
    'PrometheusRule', 'Secret', 'Service', 'ServiceAccount', 'ServiceMonitor',
  ],
  'ci/persistence-values.yaml': ['Deployment', 'PersistentVolumeClaim', 'Pod', 'Service', 'ServiceAccount'],
};

const selectorKeys = ['app.kubernetes.io/name', 'app.kubernetes.io/instance'];

function routerPod(manifests: readonly Manifest[]): { pod: PodSpec; container: Container; labels: Record<string, string>; annotations: Record<string, string> } {
  const template = only(manifests, 'Deployment').spec?.template;
  if (template === undefined) throw new Error('Deployment has no pod template');
  const container = template.spec.containers.find((c) => c.name === 'switchyard');
  if (container === undefined) throw new Error('no switchyard container');
  return { pod: template.spec, container, labels: template.metadata.labels ?? {}, annotations: template.metadata.annotations ?? {} };
}

function envValue(container: Container, name: string): string | undefined {
  return container.env?.find((e) => e.name === name)?.value;
}

function matches(selector: Record<string, unknown>, labels: Record<string, string> | undefined): boolean {
  return Object.entries(selector).every(([key, value]) => labels?.[key] === value);
}

beforeAll(() => {
  // Unpacking ~60 MB the first time can take a few seconds; later runs only check the size.
  expect(existsSync(helmPath())).toBe(true);
}, 60_000);

describe('helm lint --strict', () => {
  it.each(cases)('passes for $name', ({ file }) => {
    const run = runHelm(['lint', '--strict', chartDir, ...(file === undefined ? [] : ['--values', file])]);
    expect(run.stdout + run.stderr).toContain('0 chart(s) failed');
    expect(run.stdout).not.toMatch(/\[(WARNING|ERROR)\]/);
    expect(run.status).toBe(0);
  });

  it('versions the chart with the app it ships', () => {
    const chart = readYaml(join(chartDir, 'Chart.yaml')) as { apiVersion: string; name: string; version: string; appVersion: string };
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    expect(chart).toMatchObject({ apiVersion: 'v2', name: 'switchyard', appVersion: pkg.version });
    expect(chart.version).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('finds at least the single-replica and HA ci files', () => {
    const names = ciValuesFiles().map((f) => basename(f));
    expect(names).toEqual(expect.arrayContaining(['default-values.yaml', 'ha-values.yaml']));
    expect(Object.keys(expectedKinds).sort()).toEqual(cases.map((c) => c.name).sort());
  });
});

describe.each(cases)('helm template with $name', ({ name, file }) => {
  let manifests: Manifest[] = [];
  let values: ChartValues;

  beforeAll(() => {
    manifests = render({ valuesFiles: file === undefined ? [] : [file] });
    values = effectiveValues(file);
  });

  it('renders the expected kinds, all in the release namespace with the common labels', () => {
    expect(manifests.map((m) => m.kind).sort()).toEqual(expectedKinds[name]);
    for (const m of manifests) {
      expect(m.metadata.namespace, `${m.kind}/${m.metadata.name}`).toBe(releaseNamespace);
      expect(m.metadata.labels?.['app.kubernetes.io/managed-by'], m.kind).toBe('Helm');
      expect(m.metadata.labels?.['helm.sh/chart'], m.kind).toMatch(/^switchyard-\d+\.\d+\.\d+/);
      expect(m.metadata.labels?.['app.kubernetes.io/instance'], m.kind).toBe('sy');
    }
  });

  it('keeps selectors to the stable name/instance labels and makes every selector match the pods', () => {
    const deployment = only(manifests, 'Deployment');
    const selector = deployment.spec?.selector?.matchLabels ?? {};
    expect(Object.keys(selector).sort()).toEqual([...selectorKeys].sort());
    const { labels } = routerPod(manifests);
    expect(matches(selector, labels)).toBe(true);

    const service = only(manifests, 'Service');
    const { matchLabels: _none, ...serviceSelector } = service.spec?.selector ?? {};
    expect(serviceSelector).toEqual(selector);

    for (const pdb of manifests.filter((m) => m.kind === 'PodDisruptionBudget')) {
      expect(pdb.spec?.selector?.matchLabels).toEqual(selector);
    }
    // A ServiceMonitor selects Services, not pods.
    for (const sm of manifests.filter((m) => m.kind === 'ServiceMonitor')) {
      expect(sm.spec?.selector?.matchLabels).toEqual(selector);
      expect(matches(sm.spec?.selector?.matchLabels ?? {}, service.metadata.labels)).toBe(true);
    }
    for (const m of manifests) {
      const sel = m.spec?.selector;
      const keys = Object.keys(sel?.matchLabels ?? sel ?? {});
      expect(keys, `${m.kind} selector`).not.toContain('helm.sh/chart');
      expect(keys, `${m.kind} selector`).not.toContain('app.kubernetes.io/version');
    }
    for (const c of routerPod(manifests).pod.topologySpreadConstraints ?? []) {
      expect(c.labelSelector?.matchLabels).toEqual(selector);
    }
    // The helm test pod must never be counted as a router by the Service, PDB or HPA.
    const testPod = only(manifests, 'Pod');
    expect(matches(selector, testPod.metadata.labels)).toBe(false);
  });

  it('probes /healthz and /readyz on the admin port, which the env and the Service agree on', () => {
    const { container } = routerPod(manifests);
    expect(container.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'admin' });
    expect(container.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'admin' });
    expect(container.startupProbe?.httpGet).toEqual({ path: '/healthz', port: 'admin' });

    const ports = Object.fromEntries((container.ports ?? []).map((p) => [p.name, p.containerPort]));
    expect(ports).toEqual({ http: values.server.port, admin: values.server.adminPort });
    expect(envValue(container, 'SWITCHYARD_ADMIN_PORT')).toBe(String(ports.admin));
    expect(envValue(container, 'SWITCHYARD_PORT')).toBe(String(ports.http));
    expect(ports.admin).not.toBe(ports.http);

    const servicePorts = only(manifests, 'Service').spec?.ports ?? [];
    expect(servicePorts.map((p) => [p.name, p.targetPort])).toEqual([['http', 'http'], ['admin', 'admin']]);
    for (const sm of manifests.filter((m) => m.kind === 'ServiceMonitor')) {
      expect(sm.spec?.endpoints).toEqual([expect.objectContaining({ port: 'admin', path: '/metrics' })]);
    }
  });

  it('omits replicas exactly when an HPA owns the Deployment', () => {
    const deployment = only(manifests, 'Deployment');
    const hpa = manifests.find((m) => m.kind === 'HorizontalPodAutoscaler');
    if (hpa === undefined) {
      expect(deployment.spec?.replicas).toBeTypeOf('number');
    } else {
      expect(deployment.spec).not.toHaveProperty('replicas');
      expect(hpa.spec?.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata.name });
    }
  });

  it('takes every secret env var from a key the chart Secret holds, or from the existing Secret', () => {
    const { container } = routerPod(manifests);
    const chartSecret = manifests.find((m) => m.kind === 'Secret');
    const refs = (container.env ?? []).flatMap((e) => (e.valueFrom?.secretKeyRef === undefined ? [] : [{ env: e.name, ...e.valueFrom.secretKeyRef }]));
    for (const ref of refs) {
      if (ref.env === 'SWITCHYARD_REDIS_URL' && values.redis.existingSecret !== '') {
        // The Redis URL may live in a Secret of its own (redis.existingSecret), under the same key name.
        expect(ref, ref.env).toEqual({ env: ref.env, name: values.redis.existingSecret, key: values.secret.keys.redisUrl });
      } else if (values.secret.existingSecret !== '') {
        expect(ref.name, ref.env).toBe(values.secret.existingSecret);
      } else {
        expect(ref.name, ref.env).toBe(chartSecret?.metadata.name);
        expect(Object.keys(chartSecret?.data ?? {}), ref.env).toContain(ref.key);
        expect(ref.optional, ref.env).toBeUndefined();
      }
    }
    // Credentials never appear as plain values.
    for (const e of container.env ?? []) {
      if (/TOKEN|PASSWORD|REDIS_URL/.test(e.name)) expect(e.valueFrom?.secretKeyRef, e.name).toBeDefined();
    }
    if (chartSecret !== undefined) {
      const toChartSecret = refs.filter((r) => r.name === chartSecret.metadata.name);
      expect(Object.keys(chartSecret.data ?? {}).sort()).toEqual(toChartSecret.map((r) => r.key).sort());
      expect(routerPod(manifests).annotations['checksum/secret']).toMatch(/^[0-9a-f]{64}$/);
    }
  });

  it('gives Kubernetes longer than the preStop wait plus the drain before it kills the pod', () => {
    const { pod, container } = routerPod(manifests);
    const drainMs = Number(envValue(container, 'SWITCHYARD_DRAIN_MS'));
    expect(drainMs).toBe(values.server.drainMs);
    const preStop = container.lifecycle?.preStop?.exec?.command ?? [];
    const preStopMs = preStop[0] === 'sleep' ? Number(preStop[1]) * 1000 : 0;
    expect(preStopMs).toBe(values.server.preStopSleepSeconds * 1000);
    expect((pod.terminationGracePeriodSeconds ?? 30) * 1000).toBeGreaterThan(drainMs + preStopMs);
  });

  it('runs restricted: non-root, read-only root, only /tmp and the data dir writable, policies mounted read-only', () => {
    const { pod, container } = routerPod(manifests);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.securityContext?.runAsUser).toBeGreaterThan(0);
    expect(container.securityContext).toMatchObject({
      runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' },
    });
    const writable = (container.volumeMounts ?? []).filter((m) => m.readOnly !== true).map((m) => m.mountPath).sort();
    expect(writable).toEqual(['/tmp', '/var/lib/switchyard']);
    expect(envValue(container, 'SWITCHYARD_DATA_DIR')).toBe('/var/lib/switchyard');

    const configDir = envValue(container, 'SWITCHYARD_CONFIG');
    expect(container.args).toEqual(['serve', '--config', configDir]);
    const policiesMount = container.volumeMounts?.find((m) => m.mountPath === configDir);
    expect(policiesMount?.readOnly).toBe(true);
    const policiesVolume = pod.volumes?.find((v) => v.name === policiesMount?.name);
    const expectedConfigMap = values.policies.existingConfigMap || `sy-switchyard-policies`;
    expect(policiesVolume?.configMap?.name).toBe(expectedConfigMap);
    const policiesConfigMap = manifests.find((m) => m.kind === 'ConfigMap' && m.metadata.name === expectedConfigMap);
    expect(policiesConfigMap === undefined).toBe(values.policies.existingConfigMap !== '');

    expect(envValue(container, 'NODE_OPTIONS')).toMatch(/^--max-semi-space-size=\d+$/);
    // Each replica needs its own identity for Redis leadership; the pod name is unique and stable for its life.
    expect(container.env?.find((e) => e.name === 'SWITCHYARD_INSTANCE_ID')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.name');
    expect(container.resources?.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    expect(container.resources?.limits?.memory).toEqual(expect.any(String));
    expect(pod.securityContext?.runAsUser).toBe(values.podSecurityContext.runAsUser);
  });

  it('backs the data dir with the claim when persistence is on, and with an emptyDir otherwise', () => {
    const { pod, container } = routerPod(manifests);
    const dataMount = container.volumeMounts?.find((m) => m.mountPath === '/var/lib/switchyard');
    const dataVolume = pod.volumes?.find((v) => v.name === dataMount?.name);
    const claim = manifests.find((m) => m.kind === 'PersistentVolumeClaim');
    if (claim === undefined) {
      expect(dataVolume?.emptyDir).toBeDefined();
    } else {
      expect(dataVolume?.persistentVolumeClaim?.claimName).toBe(claim.metadata.name);
      expect(claim.metadata.annotations?.['helm.sh/resource-policy']).toBe('keep');
    }
  });

  it('annotates the pods with a checksum of the chart-rendered policies', () => {
    const { annotations } = routerPod(manifests);
    if (values.policies.existingConfigMap === '') expect(annotations['checksum/policies']).toMatch(/^[0-9a-f]{64}$/);
    else expect(annotations).not.toHaveProperty('checksum/policies');
  });
});

describe('checksum/policies', () => {
  const checksum = (values?: Record<string, unknown>): string | undefined =>
    routerPod(render(values === undefined ? {} : { values })).annotations['checksum/policies'];

  it('changes when a policy changes, so pods roll, and not when an unrelated value does', () => {
    const base = checksum();
    const edited = checksum({ policies: { files: { 'routes.yaml': 'routes: []\n' } } });
    const added = checksum({ policies: { files: { 'extra.yaml': 'routes: []\n' } } });
    const unrelated = checksum({ server: { logLevel: 'debug' } });
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    expect(edited).not.toBe(base);
    expect(added).not.toBe(base);
    expect(added).not.toBe(edited);
    expect(unrelated).toBe(base);
  });

  it('is left out when policies.rollOnChange is false (reloads are left to the router)', () => {
    expect(checksum({ policies: { rollOnChange: false } })).toBeUndefined();
  });
});

describe('ServiceMonitor', () => {
  const serviceMonitors = (opts: Parameters<typeof render>[0]): number => render(opts).filter((m) => m.kind === 'ServiceMonitor').length;
  const operatorApi = ['monitoring.coreos.com/v1/ServiceMonitor'];

  it('renders on auto only when the Prometheus Operator API exists', () => {
    expect(serviceMonitors({})).toBe(0);
    expect(serviceMonitors({ apiVersions: operatorApi })).toBe(1);
  });

  it('follows an explicit value either way', () => {
    expect(serviceMonitors({ values: { serviceMonitor: { enabled: true } } })).toBe(1);
    expect(serviceMonitors({ values: { serviceMonitor: { enabled: false } }, apiVersions: operatorApi })).toBe(0);
  });
});

describe('refused configurations', () => {
  it.each([
    { what: 'a grace period shorter than preStop + drain', values: { terminationGracePeriodSeconds: 12 }, message: /terminationGracePeriodSeconds \(12 s\) must exceed/ },
    { what: 'Unleash without a token or existing Secret', values: { unleash: { enabled: true, url: 'http://unleash:4242/api' } }, message: /unleash.enabled needs unleash.apiToken/ },
    { what: 'Unleash without a URL', values: { unleash: { enabled: true, apiToken: 't' } }, message: /unleash.enabled needs unleash.url/ },
    { what: 'Redis without a URL', values: { redis: { enabled: true } }, message: /redis.enabled needs redis.url/ },
    { what: 'a ReadWriteOnce claim shared by an HPA', values: { persistence: { enabled: true }, autoscaling: { enabled: true } }, message: /ReadWriteMany/ },
    { what: 'no policies at all', values: { policies: { files: { 'routes.yaml': null } } }, message: /policies.files is empty/ },
    { what: 'a string port (schema)', values: { service: { port: 'eighty' } }, message: /\/service\/port/ },
    { what: 'an unknown key (schema)', values: { image: { tga: 'v1' } }, message: /\/image.*tga/ },
  ])('$what', ({ values, message }) => {
    expect(renderFailure({ values })).toMatch(message);
  });
});

describe('Redis coordination', () => {
  const redisVars = ['SWITCHYARD_REDIS_URL', 'SWITCHYARD_REDIS_PREFIX', 'SWITCHYARD_COORDINATION_MS', 'SWITCHYARD_LEASE_MS', 'SWITCHYARD_REDIS_TIMEOUT_MS'];
  const url = 'redis://:s3cret@redis-master.redis.svc:6379/0';
  const container = (opts: RenderOptions) => routerPod(render(opts)).container;
  const env = (c: Container) => Object.fromEntries((c.env ?? []).filter((e) => redisVars.includes(e.name)).map((e) => [e.name, e.value ?? e.valueFrom]));

  /**
   * The pod environment as the router reads it: plain values as rendered, the Redis URL Secret reference resolved to
   * `secretUrl`. Parsed by the router's own env schema and coordination settings, so a value the chart lets through but
   * the router would refuse at start (a crash-looping rollout) fails here.
   */
  const routerSettings = (c: Container, secretUrl: string) => {
    const vars: NodeJS.ProcessEnv = {};
    for (const e of c.env ?? []) {
      if (e.value !== undefined) vars[e.name] = e.value;
      else if (e.name === 'SWITCHYARD_REDIS_URL') vars[e.name] = secretUrl;
    }
    return redisSettings(coordinationOptionsFromEnv(readEnv(vars)));
  };

  it('passes nothing to the router while disabled, whatever the tunables say', () => {
    expect(env(container({ values: { redis: { prefix: 'other', intervalMs: 1000, leaseMs: 9000, timeoutMs: 50 } } }))).toEqual({});
  });

  it('renders the defaults when enabled: URL from the chart Secret, prefix swy, 250 ms cadence, 200 ms timeout, the router\'s lease', () => {
    const manifests = render({ values: { redis: { enabled: true, url } } });
    const { container: c } = routerPod(manifests);
    expect(env(c)).toEqual({
      SWITCHYARD_REDIS_URL: { secretKeyRef: { name: 'sy-switchyard', key: 'redis-url' } },
      SWITCHYARD_REDIS_PREFIX: 'swy',
      SWITCHYARD_COORDINATION_MS: '250',
      SWITCHYARD_REDIS_TIMEOUT_MS: '200',
    });
    const secret = only(manifests, 'Secret');
    expect(Buffer.from(secret.data?.['redis-url'] ?? '', 'base64').toString()).toBe(url);
    expect(routerSettings(c, url)).toMatchObject({ prefix: 'swy', intervalMs: 250, leaseMs: 2_000, timeoutMs: 200, target: { kind: 'single' } });
  });

  it('passes every tunable of ci/ha-values.yaml to the router, which accepts them', () => {
    const file = join(chartDir, 'ci/ha-values.yaml');
    const { redis } = effectiveValues(file);
    const c = container({ valuesFiles: [file] });
    expect(env(c)).toMatchObject({
      SWITCHYARD_REDIS_PREFIX: redis.prefix,
      SWITCHYARD_COORDINATION_MS: String(redis.intervalMs),
      SWITCHYARD_LEASE_MS: String(redis.leaseMs),
      SWITCHYARD_REDIS_TIMEOUT_MS: String(redis.timeoutMs),
    });
    expect(redis.leaseMs).toBeGreaterThan(0);
    expect(routerSettings(c, redis.url)).toMatchObject({ prefix: redis.prefix, intervalMs: redis.intervalMs, leaseMs: redis.leaseMs, timeoutMs: redis.timeoutMs });
  });

  it.each([
    { what: 'the smallest cadence and timeout', redis: { intervalMs: 20, leaseMs: 100, timeoutMs: 10 } },
    { what: 'the largest cadence, lease and timeout', redis: { intervalMs: 10_000, leaseMs: 600_000, timeoutMs: 10_000 } },
    { what: 'a derived lease (8 x cadence) and the longest prefix', redis: { intervalMs: 1_000, leaseMs: 0, timeoutMs: 3_999, prefix: `${'a'.repeat(60)}:_.-` } },
  ])('renders settings the router accepts at the bounds of the schema: $what', ({ redis }) => {
    const c = container({ values: { redis: { enabled: true, url, ...redis } } });
    const expectedLease = redis.leaseMs > 0 ? redis.leaseMs : Math.max(2_000, 8 * redis.intervalMs);
    expect(routerSettings(c, url)).toMatchObject({ intervalMs: redis.intervalMs, leaseMs: expectedLease, timeoutMs: redis.timeoutMs });
  });

  it.each([
    'rediss://default:pw@redis.example.com:6380/2',
    'redis+sentinel://:pw@sentinel-0.redis:26379,sentinel-1.redis:26379/mymaster/0',
    'redis+cluster://:pw@redis-cluster-0:6379,redis-cluster-1:6379',
  ])('accepts %s and stores it in the chart Secret', (redisUrl) => {
    const manifests = render({ values: { redis: { enabled: true, url: redisUrl } } });
    expect(Buffer.from(only(manifests, 'Secret').data?.['redis-url'] ?? '', 'base64').toString()).toBe(redisUrl);
    expect(routerSettings(routerPod(manifests).container, redisUrl)).not.toBeNull();
  });

  it('reads the URL from redis.existingSecret under secret.keys.redisUrl, and writes no URL into a chart Secret', () => {
    const manifests = render({ values: { redis: { enabled: true, existingSecret: 'redis-url-from-vault' }, secret: { keys: { redisUrl: 'url' } }, admin: { token: 't' } } });
    expect(env(routerPod(manifests).container).SWITCHYARD_REDIS_URL).toEqual({ secretKeyRef: { name: 'redis-url-from-vault', key: 'url' } });
    // The chart Secret still holds the admin token, and nothing for Redis.
    expect(Object.keys(only(manifests, 'Secret').data ?? {})).toEqual(['admin-token']);
    // Without other inline credentials there is no chart Secret at all.
    expect(render({ values: { redis: { enabled: true, existingSecret: 'redis-url-from-vault' } } }).some((m) => m.kind === 'Secret')).toBe(false);
  });

  it('mounts redis.caSecret read-only and points NODE_EXTRA_CA_CERTS at its key, only while Redis is enabled', () => {
    const tlsUrl = 'rediss://:pw@redis.internal:6380/0';
    const { pod, container: c } = routerPod(render({ values: { redis: { enabled: true, url: tlsUrl, caSecret: 'redis-ca', caKey: 'ca.pem' } } }));
    const caPath = envValue(c, 'NODE_EXTRA_CA_CERTS');
    expect(caPath).toBe('/etc/switchyard/redis-ca/ca.pem');
    const mount = c.volumeMounts?.find((m) => caPath!.startsWith(`${m.mountPath}/`));
    expect(mount).toMatchObject({ mountPath: '/etc/switchyard/redis-ca', readOnly: true });
    expect(pod.volumes?.find((v) => v.name === mount!.name)?.secret).toEqual({ secretName: 'redis-ca', items: [{ key: 'ca.pem', path: 'ca.pem' }] });
    expect(routerSettings(c, tlsUrl)).toMatchObject({ target: { kind: 'single', tls: true } });
    for (const values of [{ redis: { enabled: true, url: tlsUrl } }, { redis: { enabled: false, caSecret: 'redis-ca' } }]) {
      const other = routerPod(render({ values }));
      expect(envValue(other.container, 'NODE_EXTRA_CA_CERTS')).toBeUndefined();
      expect(other.pod.volumes?.some((v) => v.secret !== undefined)).toBe(false);
    }
  });

  it('refuses a caSecret or caKey that cannot name a Secret or a file', () => {
    expect(renderFailure({ values: { redis: { enabled: true, url, caSecret: 'Redis CA' } } })).toMatch(/caSecret/);
    expect(renderFailure({ values: { redis: { enabled: true, url, caSecret: 'redis-ca', caKey: '../ca.crt/' } } })).toMatch(/caKey/);
  });

  it('prefers redis.existingSecret over secret.existingSecret for the URL only', () => {
    const c = container({ values: { redis: { enabled: true, existingSecret: 'redis-only' }, secret: { existingSecret: 'creds' } } });
    expect(env(c).SWITCHYARD_REDIS_URL).toEqual({ secretKeyRef: { name: 'redis-only', key: 'redis-url' } });
    expect(c.env?.find((e) => e.name === 'SWITCHYARD_ADMIN_TOKEN')?.valueFrom?.secretKeyRef?.name).toBe('creds');
  });

  it.each([
    { what: 'a lease shorter than 3 x the cadence', redis: { leaseMs: 600, intervalMs: 250 }, message: /redis\.leaseMs \(600 ms\) must be at least 3 x redis\.intervalMs \(750 ms\)/ },
    { what: 'a timeout of half the derived lease', redis: { intervalMs: 500, timeoutMs: 2_000 }, message: /redis\.timeoutMs \(2000 ms\) must be under half the leader lease of 4000 ms/ },
    { what: 'a timeout over half an explicit lease', redis: { leaseMs: 1_000, timeoutMs: 600 }, message: /redis\.timeoutMs \(600 ms\) must be under half the leader lease of 1000 ms/ },
    { what: 'both an inline URL and an existing Secret', redis: { existingSecret: 'redis-creds' }, message: /set redis\.url or redis\.existingSecret, not both/ },
  ])('refuses $what', ({ redis, message }) => {
    expect(renderFailure({ values: { redis: { enabled: true, url, ...redis } } })).toMatch(message);
  });

  it('refuses a Redis variable also set through server.extraEnv, naming the value to use instead', () => {
    const values = { redis: { enabled: true, url }, server: { extraEnv: [{ name: 'SWITCHYARD_LEASE_MS', value: '5000' }] } };
    expect(renderFailure({ values })).toMatch(/server\.extraEnv sets SWITCHYARD_LEASE_MS, which the chart sets from redis\.leaseMs/);
    // While Redis is off the chart sets none of them, so extraEnv stays the way to pass them.
    expect(env(container({ values: { server: { extraEnv: [{ name: 'SWITCHYARD_LEASE_MS', value: '5000' }] } } }))).toEqual({ SWITCHYARD_LEASE_MS: '5000' });
  });

  it.each([
    { what: 'a prefix with a space', redis: { prefix: 'my swy' }, message: /at '\/redis\/prefix'.*does not match pattern/ },
    { what: 'a cadence under 20 ms', redis: { intervalMs: 5 }, message: /at '\/redis\/intervalMs': minimum: got 5, want 20/ },
    { what: 'a lease between 0 and 100 ms', redis: { leaseMs: 50 }, message: /at '\/redis\/leaseMs': 'anyOf' failed[\s\S]*minimum: got 50, want 100/ },
    { what: 'a timeout as a string', redis: { timeoutMs: '200ms' }, message: /at '\/redis\/timeoutMs': got string, want integer/ },
    { what: 'a URL with an http scheme', redis: { url: 'http://redis:6379' }, message: /at '\/redis\/url'/ },
    { what: 'a misspelt tunable', redis: { leaseMS: 4000 }, message: /at '\/redis'.*leaseMS/ },
  ])('refuses $what through the schema, naming the value', ({ redis, message }) => {
    expect(renderFailure({ values: { redis: { enabled: true, url, ...redis } } })).toMatch(message);
  });
});

describe('memory setting', () => {
  const memoryEnv = (opts: RenderOptions) => routerPod(render(opts)).container.env?.find((e) => e.name === 'SWITCHYARD_MEMORY_MB');

  it('derives SWITCHYARD_MEMORY_MB from the container memory limit by default, in MiB', () => {
    const { container } = routerPod(render());
    expect(container.resources?.limits?.memory).toBe('512Mi');
    expect(memoryEnv({})).toEqual({ name: 'SWITCHYARD_MEMORY_MB', valueFrom: { resourceFieldRef: { containerName: container.name, resource: 'limits.memory', divisor: '1Mi' } } });
  });

  it('passes server.memoryMb when set, which the router accepts', () => {
    const env = memoryEnv({ values: { server: { memoryMb: 300 } } });
    expect(env).toEqual({ name: 'SWITCHYARD_MEMORY_MB', value: '300' });
    expect(readEnv({ SWITCHYARD_MEMORY_MB: env?.value }).SWITCHYARD_MEMORY_MB).toBe(300);
  });

  it('sets nothing without a memory limit (the router then reads its cgroup limit, else 1024)', () => {
    expect(memoryEnv({ values: { resources: { limits: { memory: null } } } })).toBeUndefined();
  });

  it('refuses a setting the router would refuse', () => {
    expect(renderFailure({ values: { server: { memoryMb: 32 } } })).toMatch(/\/server\/memoryMb/);
  });

  const nodeOptions = (opts: RenderOptions) => routerPod(render(opts)).container.env?.find((e) => e.name === 'NODE_OPTIONS')?.value;

  it.each([
    { what: 'the default 512Mi limit', values: {}, memoryMb: 512 },
    { what: 'a 256Mi limit', values: { resources: { limits: { memory: '256Mi' } } }, memoryMb: 256 },
    { what: 'a 1Gi limit', values: { resources: { limits: { memory: '1Gi' } } }, memoryMb: 1024 },
    { what: 'a 2G limit (decimal units)', values: { resources: { limits: { memory: '2G' } } }, memoryMb: 1907 },
    { what: 'server.memoryMb over the limit', values: { server: { memoryMb: 300 } }, memoryMb: 300 },
    { what: 'no limit (the router assumes 1024)', values: { resources: { limits: { memory: null } } }, memoryMb: defaultMemoryMb },
  ])('sizes the young generation from the memory setting with the router\'s own rule: $what', ({ values, memoryMb }) => {
    expect(nodeOptions({ values })).toBe(`--max-semi-space-size=${semiSpaceMbFor(memoryMb)}`);
  });

  it('passes server.nodeOptions unchanged when set', () => {
    expect(nodeOptions({ values: { server: { nodeOptions: '--max-semi-space-size=8 --enable-source-maps' } } })).toBe('--max-semi-space-size=8 --enable-source-maps');
  });
});

describe('policies shipped in the chart', () => {
  const cli = join(repoRoot, 'dist/src/cli.js');
  // `npm test` builds first (pretest), so this only skips when vitest is run by hand before a build.
  const withChartPolicies = cases.filter(({ file }) => effectiveValues(file).policies.existingConfigMap === '');
  it.skipIf(!existsSync(cli)).each(withChartPolicies)('pass `switchyard validate` for $name', ({ file }) => {
    const policies = only(render({ valuesFiles: file === undefined ? [] : [file] }).filter((m) => m.metadata.name === 'sy-switchyard-policies'), 'ConfigMap');
    const files = Object.entries(policies.data ?? {});
    expect(files.length).toBeGreaterThan(0);
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-policies-'));
    for (const [name, content] of files) {
      const path = join(dir, name);
      writeFileSync(path, content);
      const run = spawnSync(process.execPath, [cli, 'validate', path], { encoding: 'utf8' });
      expect(run.status, `${name}: ${run.stdout}${run.stderr}`).toBe(0);
    }
  });
});
