// `switchyard resume <route>`: end a pause and a rollback; the route returns to its flag, override or policy split.
import { toggleCommand } from './pause.js';

export function resumeCommand(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return toggleCommand('resume', 'Clears a pause and a rollback (a rolled-back route serves only the champion until resumed).', (c, r) => c.resume(r), args, env);
}
