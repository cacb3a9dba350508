// Every FlagSource runs the same contract: the nop (no UNLEASH_URL) and Unleash (here unreachable, with a bootstrap file).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { NopFlagSource } from '../../src/flags/nop.js';
import { UnleashFlagSource } from '../../src/flags/unleash.js';
import { Metrics } from '../../src/metrics/registry.js';
import { describeFlagSource, flagRoute } from './flag-source.js';

const logger = pino({ level: 'silent' });

/** A port on 127.0.0.1 that refuses connections: taken from a listener that is closed again. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describeFlagSource('nop', async () => ({ source: new NopFlagSource(logger) }));

describeFlagSource('unleash', async (splits) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'swy-flags-contract-'));
  const bootstrapFile = path.join(dir, 'bootstrap.json');
  const strategy = { name: 'flexibleRollout', parameters: { rollout: '20', stickiness: 'default', groupId: 'flagged-rollout' }, constraints: [] };
  await writeFile(bootstrapFile, JSON.stringify({ features: [{ name: flagRoute.flagName, enabled: true, strategies: [strategy] }] }));
  const root = `http://127.0.0.1:${await closedPort()}`;
  const source = new UnleashFlagSource({
    splits,
    metrics: new Metrics({ defaultMetrics: false }),
    logger,
    settings: () => ({ apiUrl: `${root}/api/`, rootUrl: root, apiToken: 'default:development.contract', appName: 'switchyard-contract', environment: 'development', refreshMs: 60_000, bootstrapFile, disableMetrics: true }),
  });
  return { source, cleanup: () => rm(dir, { recursive: true, force: true }) };
});
