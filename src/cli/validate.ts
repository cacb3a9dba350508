// `switchyard validate`: checks policy files and lists every problem (file, line, field path, what is wrong, what is allowed).
import { formatProblems, loadPolicy, type PolicyProblem } from '../config/load.js';
import { parseArgs } from 'node:util';
import { helpOption } from './options.js';

export async function validateCommand(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { json: { type: 'boolean' }, ...helpOption }, allowPositionals: true, strict: true });
  } catch (err) {
    console.error(`switchyard validate: ${(err as Error).message}`);
    return 2;
  }
  if (parsed.values.help || parsed.positionals.length === 0) {
    console.log('Usage: switchyard validate <file-or-dir>... [--json]');
    return parsed.values.help ? 0 : 2;
  }
  let failed = false;
  for (const target of parsed.positionals) {
    try {
      const loaded = await loadPolicy(target);
      if (parsed.values.json) console.log(JSON.stringify({ target, ok: true, routes: loaded.policy.routes.map((r) => r.name), version: loaded.version }));
      else console.log(`${target}: ok (${loaded.policy.routes.length} route${loaded.policy.routes.length === 1 ? '' : 's'}: ${loaded.policy.routes.map((r) => r.name).join(', ')}; version ${loaded.version})`);
    } catch (err) {
      failed = true;
      const e = err as Error & { code?: string; problems?: PolicyProblem[] };
      if (parsed.values.json) console.log(JSON.stringify({ target, ok: false, code: e.code, problems: e.problems ?? [{ file: target, path: '(file)', message: e.message }] }));
      else if (e.problems) console.error(`${formatProblems(e.problems)}\n${target}: ${e.problems.length} problem${e.problems.length === 1 ? '' : 's'}`);
      else console.error(`${target}: ${e.message}`);
    }
  }
  return failed ? 1 : 0;
}
