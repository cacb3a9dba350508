// The CLI's first impressions: `switchyard --version`, and a taken port as one clear line that names the flag and variable to change it.
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import net, { type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../helpers/cli.js';

let blocker: net.Server;
let taken: number;
let dataDir: string;
const policy = 'policies/demo.yaml';

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'swy-listen-'));
  env.SWITCHYARD_DATA_DIR = dataDir;
  blocker = net.createServer();
  blocker.listen(0, '127.0.0.1');
  await once(blocker, 'listening');
  taken = (blocker.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise<void>((resolve) => blocker.close(() => resolve()));
  await rm(dataDir, { recursive: true, force: true });
});

const env: Record<string, string> = { SWITCHYARD_LOG_LEVEL: 'silent', SWITCHYARD_PAIRS_SINK: 'none' };

describe('switchyard CLI', () => {
  it('--version prints the package version', async () => {
    const pkg = JSON.parse(await readFile('package.json', 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const { code, stdout } = await runCli([flag]);
      expect(code).toBe(0);
      expect(stdout).toBe(`switchyard ${pkg.version}\n`);
    }
  });

  it('a taken data port: one line naming --port and SWITCHYARD_PORT, no stack trace, exit 1', async () => {
    const { code, stderr } = await runCli(['serve', '--config', policy, '--host', '127.0.0.1', '--port', String(taken), '--admin-port', '0'], env);
    expect(code).toBe(1);
    expect(stderr).toBe(`switchyard serve: port ${taken} for the data listener is already in use on 127.0.0.1; choose another with --port N (or SWITCHYARD_PORT=N), or 0 for any free port\n`);
  });

  it('a taken admin port: the line names --admin-port and SWITCHYARD_ADMIN_PORT', async () => {
    const { code, stderr } = await runCli(['serve', '--config', policy, '--host', '127.0.0.1', '--port', '0'], { ...env, SWITCHYARD_ADMIN_PORT: String(taken) });
    expect(code).toBe(1);
    expect(stderr.trim().split('\n')).toEqual([`switchyard serve: port ${taken} for the admin listener is already in use on 127.0.0.1; choose another with --admin-port N (or SWITCHYARD_ADMIN_PORT=N), or 0 for any free port`]);
  });
});
