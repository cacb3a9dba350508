// Locates the repository root from a module's directory, so the bench works from bench/ (tsx, vitest) and dist/bench/.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** Walks up from `start` to the directory whose package.json is Switchyard's. */
export function findRepoRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'switchyard') return dir;
    if (path.dirname(dir) === dir) throw new Error(`no switchyard package.json above ${start}`);
  }
}
