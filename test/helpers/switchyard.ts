// Test helper: writes a policy to a temp directory and starts a real Switchyard on ephemeral ports.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { buildApp, type Switchyard, type SwitchyardOptions } from '../../src/app.js';

export interface RunningSwitchyard {
  app: Switchyard;
  dataUrl: string;
  adminUrl: string;
  policyFile: string;
  dir: string;
  /** Rewrites the policy file (the caller triggers or awaits the reload). */
  writePolicy(policy: unknown): Promise<void>;
  close(): Promise<void>;
}

/** Starts Switchyard with `policy` (an object serialised to YAML) on 127.0.0.1 with free ports. */
export async function startSwitchyard(policy: unknown, options: Partial<SwitchyardOptions> = {}): Promise<RunningSwitchyard> {
  const dir = await mkdtemp(path.join(tmpdir(), 'swy-test-'));
  const policyFile = path.join(dir, 'policy.yaml');
  const writePolicy = (p: unknown) => writeFile(policyFile, typeof p === 'string' ? p : stringify(p));
  await writePolicy(policy);
  const app = await buildApp({ configPath: policyFile, host: '127.0.0.1', port: 0, adminPort: 0, defaultMetrics: false, dataDir: dir, ...options });
  const { dataUrl, adminUrl } = await app.listen();
  return {
    app,
    dataUrl,
    adminUrl,
    policyFile,
    dir,
    writePolicy,
    async close() {
      await app.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A one-route policy in front of the given champion and challengers. */
export function routePolicy(champion: string, challengers: { url: string; mode?: string; percent?: number; name?: string; fallback?: boolean }[] = [], extra: Record<string, unknown> = {}): unknown {
  return {
    routes: [
      {
        name: 'iris',
        match: { pathPrefix: '/v1/models/iris', methods: ['POST', 'GET'] },
        champion: { name: 'iris-v1', url: champion },
        challengers: challengers.map((c, i) => ({ name: c.name ?? `iris-v${i + 2}`, url: c.url, mode: c.mode ?? 'canary', percent: c.percent ?? 0, ...(c.fallback ? { fallback: true } : {}) })),
        ...extra,
      },
    ],
  };
}

/**
 * A canary route at 0 % whose rollout (10, 50, 100 %) moves quickly on an A/A challenger: small step and guardrail
 * minimums, a 300 ms minimum step time. `rollout` adds to or overrides it (approval gates, a confirm webhook).
 */
export function quickRolloutPolicy(champion: string, challenger: string, rollout: Record<string, unknown> = {}): unknown {
  return {
    routes: [{
      name: 'iris',
      match: { pathPrefix: '/v1/models/iris' },
      champion: { name: 'iris-v1', url: champion },
      challengers: [{ name: 'iris-v2', url: challenger, mode: 'canary', percent: 0 }],
      stickiness: { header: 'x-user-id' },
      guardrails: { minRequests: 40, latency: { baselineRequests: 50, ratio: 1.5 } },
      rollout: { steps: [10, 50, 100], minDuration: '300ms', minRequests: 60, ...rollout },
    }],
  };
}
