// The embedded demo (`npm start`): two real Iris model servers and Switchyard, a prediction through it, and its pair log.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { request } from 'undici';
import { runCli } from '../helpers/cli.js';

let child: ChildProcess | undefined;
afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await exited;
  }
});

it('starts two model servers and the router, prints a working curl line and a token with commands that steer it, and logs the shadow pair', async () => {
  const cwd = await mkdtemp(path.join(tmpdir(), 'swy-demo-'));
  child = spawn(process.execPath, [path.resolve('dist/src/cli.js'), 'demo', '--port', '0', '--admin-port', '0'], { cwd });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d));
  await new Promise<void>((resolve, reject) => {
    child!.stdout!.on('data', () => output.includes('Press Ctrl-C') && resolve());
    child!.once('exit', (code) => reject(new Error(`demo exited with ${code}: ${output}`)));
  });
  expect(output).toMatch(/held-out accuracy 9\d\.\d%/);
  const curl = /curl .* -X POST (\S+) .*-d '([^']+)'/.exec(output)!;
  expect(curl).not.toBeNull();
  const res = await request(curl[1]!, { method: 'POST', body: curl[2]!, headers: { 'content-type': 'application/json', 'x-user-id': 'alice' } });
  expect(res.statusCode).toBe(200);
  expect(res.headers['x-switchyard-variant']).toBe('iris-v1');
  const body = (await res.body.json()) as { predictions: { label: string }[] };
  expect(body.predictions[0]!.label).toBe('virginica');

  // It can be steered: the printed token and commands work as printed, and so does policies/demo.yaml's comment.
  const token = /^ {2}Token +(\S+)/m.exec(output)![1]!;
  expect(token).toMatch(/^demo-[A-Za-z0-9_-]{16}$/);
  const exported = /^ {2}export (SWITCHYARD_ADMIN_URL=(\S+) SWITCHYARD_ADMIN_TOKEN=(\S+))$/m.exec(output)!;
  expect(exported[3]).toBe(token);
  const env = { SWITCHYARD_ADMIN_URL: exported[2]!, SWITCHYARD_ADMIN_TOKEN: token };
  const refused = await runCli(['pause', 'iris'], { SWITCHYARD_ADMIN_URL: exported[2]!, SWITCHYARD_ADMIN_TOKEN: '' });
  expect(refused.code).toBe(1);
  expect(refused.stderr).toContain('pass --token or set SWITCHYARD_ADMIN_TOKEN');
  const commands = [...output.matchAll(/^ {2}npx switchyard ([^#\n]+?)\s*(?:#.*)?$/gm)].map((m) => m[1]!.split(' '));
  expect(commands.map((c) => c[0])).toEqual(['status', 'set', 'analysis', 'pause', 'rollback', 'resume']);
  for (const args of commands) {
    const result = await runCli(args, env);
    expect(result.code, `switchyard ${args.join(' ')}: ${result.stderr}`).toBe(0);
  }
  const routeNow = async () => (await (await request(`${exported[2]}/v1/routes/iris`)).body.json()) as { challengers: { mode: string; percent: number }[]; paused: boolean; rolledBack: boolean };
  expect(await routeNow()).toMatchObject({ challengers: [{ mode: 'canary', percent: 20 }], paused: false, rolledBack: false });
  const comment = /^#\s+npx switchyard (set .*) --token <the token npm start printed>$/m.exec(await readFile('policies/demo.yaml', 'utf8'))!;
  expect(comment).not.toBeNull();
  expect((await runCli([...comment[1]!.split(' '), '--token', token], { SWITCHYARD_ADMIN_URL: exported[2]! })).code).toBe(0);
  expect(await routeNow()).toMatchObject({ challengers: [{ mode: 'canary', percent: 20 }] });
  // A second demo finds the model ports taken: one line saying which and what to do, no stack trace.
  const second = spawn(process.execPath, [path.resolve('dist/src/cli.js'), 'demo', '--port', '0', '--admin-port', '0'], { cwd });
  let secondErr = '';
  second.stderr!.on('data', (d: Buffer) => (secondErr += d));
  expect((await once(second, 'exit'))[0]).toBe(1);
  expect(secondErr.trim().split('\n')).toEqual(['switchyard demo: port 9001 for the champion model server (iris-v1) is already in use; the demo policies point at 127.0.0.1:9001, so stop what uses it (an earlier demo?) and start again']);

  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  expect((await exited)[0]).toBe(0);
  // The shutdown flushes the pair log: the logistic regression and the tree disagree on this flower.
  const dir = path.join(cwd, 'data', 'pairs');
  const [file] = await readdir(dir);
  const record = JSON.parse((await readFile(path.join(dir, file!), 'utf8')).trim()) as { served: { prediction: string }; shadow: { prediction: string }; comparison: { agree: boolean } };
  expect(record).toMatchObject({ served: { prediction: 'virginica' }, shadow: { prediction: 'versicolor' }, comparison: { agree: false } });
});
