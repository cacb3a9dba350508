// The embedded demo (`npm start`): two real Iris model servers and Switchyard, a prediction through it, and its pair log.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { request } from 'undici';

let child: ChildProcess | undefined;
afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await exited;
  }
});

it('starts two model servers and the router, prints a working curl line, and logs the shadow pair', async () => {
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
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  expect((await exited)[0]).toBe(0);
  // The shutdown flushes the pair log: the logistic regression and the tree disagree on this flower.
  const dir = path.join(cwd, 'data', 'pairs');
  const [file] = await readdir(dir);
  const record = JSON.parse((await readFile(path.join(dir, file!), 'utf8')).trim()) as { served: { prediction: string }; shadow: { prediction: string }; comparison: { agree: boolean } };
  expect(record).toMatchObject({ served: { prediction: 'virginica' }, shadow: { prediction: 'versicolor' }, comparison: { agree: false } });
});
