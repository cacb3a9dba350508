// Static checks of the Dockerfile (no Docker engine here): pinned base, non-root user, no secrets, COPY sources, entrypoint.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, posix, relative } from 'node:path';
import ts from 'typescript';
import { beforeAll, describe, expect, it } from 'vitest';
import { chartDir, readYaml, repoRoot } from './chart.js';

interface Instruction { keyword: string; args: string; line: number }
interface Stage { name: string; base: string; instructions: Instruction[] }

/** Splits a Dockerfile into instructions: joins `\` continuations, drops comments and blank lines. */
function parseInstructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending: { text: string; line: number } | null = null;
  text.split('\n').forEach((raw, index) => {
    const trimmed = raw.trim();
    // Comment lines are removed even inside a continuation, as Docker does.
    if (trimmed.startsWith('#') || (trimmed === '' && pending === null)) return;
    const continued = trimmed.endsWith('\\');
    const piece = continued ? trimmed.slice(0, -1).trim() : trimmed;
    pending = pending === null ? { text: piece, line: index + 1 } : { text: `${pending.text} ${piece}`, line: pending.line };
    if (!continued) {
      const match = /^(\S+)\s*(.*)$/.exec(pending.text);
      if (match !== null) out.push({ keyword: (match[1] ?? '').toUpperCase(), args: match[2] ?? '', line: pending.line });
      pending = null;
    }
  });
  return out;
}

/** Groups instructions by FROM, resolving `${ARG}` defaults declared before the first FROM. */
function parseStages(instructions: Instruction[]): Stage[] {
  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.keyword === 'ARG' && stages.length === 0) {
      const [name, value = ''] = ins.args.split('=', 2);
      globalArgs.set((name ?? '').trim(), value.trim());
    } else if (ins.keyword === 'FROM') {
      const words = ins.args.split(/\s+/).filter((w) => !w.startsWith('--platform'));
      const base = (words[0] ?? '').replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string | undefined, b: string | undefined) => globalArgs.get(a ?? b ?? '') ?? '');
      const asIndex = words.findIndex((w) => w.toUpperCase() === 'AS');
      stages.push({ name: asIndex >= 0 ? (words[asIndex + 1] ?? '') : String(stages.length), base, instructions: [] });
    } else {
      stages.at(-1)?.instructions.push(ins);
    }
  }
  return stages;
}

/** Parses an exec-form (JSON array) instruction argument; null for shell form. */
function execForm(args: string): string[] | null {
  try {
    const parsed: unknown = JSON.parse(args);
    return Array.isArray(parsed) && parsed.every((x) => typeof x === 'string') ? parsed : null;
  } catch {
    return null;
  }
}

/** `KEY=value KEY2=value2` pairs of an ENV or ARG instruction (also the legacy `KEY value` form). */
function assignments(args: string): Map<string, string> {
  const pairs = new Map<string, string>();
  if (!args.includes('=')) {
    const [key, ...rest] = args.split(/\s+/);
    pairs.set(key ?? '', rest.join(' '));
    return pairs;
  }
  for (const match of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S*)/g)) pairs.set(match[1] ?? '', (match[2] ?? '').replace(/^"|"$/g, ''));
  return pairs;
}

/** COPY flags, sources and destination. */
function copyParts(args: string): { from: string | null; sources: string[]; dest: string } {
  const words = args.split(/\s+/);
  const flags = words.filter((w) => w.startsWith('--'));
  const rest = words.filter((w) => !w.startsWith('--'));
  const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length) ?? null;
  return { from, sources: rest.slice(0, -1), dest: rest.at(-1) ?? '' };
}

/** Converts a .dockerignore pattern to a RegExp over slash-separated context paths (Go filepath.Match plus `**`). */
function ignorePatternToRegExp(pattern: string): RegExp {
  const clean = posix.normalize(pattern.replace(/^\//, '')).replace(/\/$/, '');
  let source = '';
  for (let i = 0; i < clean.length; i++) {
    const ch = clean[i] ?? '';
    if (ch === '*' && clean[i + 1] === '*') {
      source += '.*';
      i += clean[i + 2] === '/' ? 2 : 1;
    } else if (ch === '*') source += '[^/]*';
    else if (ch === '?') source += '[^/]';
    else source += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

/** Whether Docker leaves a context path out: the last pattern matching the path or one of its parents wins. */
function isIgnored(rules: { negate: boolean; re: RegExp }[], path: string): boolean {
  const parts = path.split('/');
  const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let ignored = false;
  for (const rule of rules) {
    if (candidates.some((c) => rule.re.test(c))) ignored = !rule.negate;
  }
  return ignored;
}

/** Where a COPY puts one source: a directory's contents land in dest; a file lands in dest/ or becomes dest. */
function copyTarget(workdir: string, source: string, dest: string, contextPath: string | null): string {
  const target = posix.resolve(workdir, dest);
  const isDir = contextPath === null || statSync(contextPath).isDirectory();
  return !isDir && (dest.endsWith('/') || dest === '.') ? posix.join(target, posix.basename(source)) : target;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = join(dir, entry.name);
    return entry.isDirectory() ? filesUnder(full) : [full];
  });
}

const dockerfile = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');
let stages: Stage[] = [];
let final: Stage;
let ignoreRules: { negate: boolean; re: RegExp }[] = [];
const packageJson = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { bin?: Record<string, string> };

function finalInstructions(keyword: string): Instruction[] {
  return final.instructions.filter((i) => i.keyword === keyword);
}

function workdirAt(stage: Stage, index: number): string {
  let dir = '/';
  for (const ins of stage.instructions.slice(0, index)) if (ins.keyword === 'WORKDIR') dir = posix.resolve(dir, ins.args.trim());
  return dir;
}

beforeAll(() => {
  stages = parseStages(parseInstructions(dockerfile));
  final = stages.at(-1) as Stage;
  ignoreRules = readFileSync(join(repoRoot, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => ({ negate: l.startsWith('!'), re: ignorePatternToRegExp(l.replace(/^!/, '')) }));
});

describe('Dockerfile', () => {
  it('is multi-stage on an LTS Node base pinned to an exact version', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const names = new Set<string>();
    for (const stage of stages) {
      if (names.has(stage.base)) continue; // FROM an earlier stage
      const pinned = /^node:(\d+)\.(\d+)\.(\d+)-bookworm-slim(@sha256:[0-9a-f]{64})?$/.exec(stage.base);
      expect(pinned, `FROM ${stage.base}`).not.toBeNull();
      const major = Number(pinned?.[1]);
      expect(major % 2, 'even majors are the LTS lines').toBe(0);
      expect(major).toBeGreaterThanOrEqual(20);
      expect(stage.base).not.toMatch(/latest/);
      names.add(stage.name);
    }
  });

  it('runs as a numeric non-root user, the same uid the chart sets', () => {
    const users = finalInstructions('USER');
    expect(users.length).toBeGreaterThan(0);
    const match = /^(\d+)(?::(\d+))?$/.exec(users.at(-1)?.args.trim() ?? '');
    expect(match, 'numeric uid so Kubernetes can verify runAsNonRoot').not.toBeNull();
    const uid = Number(match?.[1]);
    expect(uid).toBeGreaterThan(0);
    const values = readYaml(join(chartDir, 'values.yaml')) as { podSecurityContext: { runAsUser: number } };
    expect(values.podSecurityContext.runAsUser).toBe(uid);
  });

  it('bakes in no secrets', () => {
    for (const stage of stages) {
      for (const ins of stage.instructions.filter((i) => i.keyword === 'ENV' || i.keyword === 'ARG')) {
        for (const key of assignments(ins.args).keys()) {
          expect(key, `line ${ins.line}`).not.toMatch(/TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|PRIVATE|CREDENTIAL|REDIS_URL/i);
        }
      }
    }
    for (const stage of stages) {
      for (const copy of stage.instructions.filter((i) => i.keyword === 'COPY')) {
        expect(copy.args, `line ${copy.line}`).not.toMatch(/\.npmrc|(^|[\s/])\.env|id_rsa|\.pem\b|\.key\b/);
      }
    }
    for (const path of ['.env', '.env.local', '.npmrc', 'certs/server.pem', 'node_modules/fastify/package.json', 'dist/src/cli.js', '.git/HEAD', '.tools/helm', 'bench/results/run.json', 'test/deploy/helm.test.ts', 'src/app.log']) {
      expect(isIgnored(ignoreRules, path), path).toBe(true);
    }
  });

  it('copies only sources that exist in the context (and are not .dockerignored) or that an earlier stage produced', () => {
    const buildOutDir = ts.getParsedCommandLineOfConfigFile(join(repoRoot, 'tsconfig.build.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined })?.options.outDir;
    expect(buildOutDir).toBeDefined();
    const produced = new Map<string, string[]>();
    let copies = 0;
    stages.forEach((stage, stageIndex) => {
      const outputs: string[] = [];
      stage.instructions.forEach((ins, index) => {
        const workdir = workdirAt(stage, index);
        if (ins.keyword === 'COPY' || ins.keyword === 'ADD') {
          expect(ins.keyword, `line ${ins.line}: use COPY`).toBe('COPY');
          const { from, sources, dest } = copyParts(ins.args);
          expect(sources.length, `line ${ins.line}`).toBeGreaterThan(0);
          for (const source of sources) {
            copies += 1;
            if (from === null) {
              const path = join(repoRoot, source);
              expect(existsSync(path), `line ${ins.line}: ${source} is not in the repository`).toBe(true);
              const contextPaths = statSync(path).isDirectory() ? filesUnder(path).map((f) => relative(repoRoot, f)) : [posix.normalize(source)];
              expect(contextPaths.some((p) => !isIgnored(ignoreRules, p)), `line ${ins.line}: ${source} is excluded by .dockerignore`).toBe(true);
            } else {
              const earlier = stages.slice(0, stageIndex).map((s) => s.name);
              expect(earlier, `line ${ins.line}: --from=${from}`).toContain(from);
              const made = produced.get(from) ?? [];
              expect(made.some((p) => source === p || source.startsWith(`${p}/`)), `line ${ins.line}: ${source} is not produced by stage ${from} (${made.join(', ')})`).toBe(true);
            }
          }
          for (const source of sources) outputs.push(copyTarget(workdir, source, dest, from === null ? join(repoRoot, source) : null));
        }
        if (ins.keyword === 'RUN') {
          if (/\bnpm ci\b/.test(ins.args)) outputs.push(posix.join(workdir, 'node_modules'));
          if (/\bnpm run build\b/.test(ins.args)) outputs.push(posix.join(workdir, relative(repoRoot, buildOutDir ?? 'dist')));
        }
      });
      produced.set(stage.name, outputs);
    });
    expect(copies).toBeGreaterThan(3);
  });

  it('installs from the lockfile, builds, and ships only production dependencies', () => {
    const runs = (stage: Stage): string => stage.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args).join('\n');
    const builder = stages.find((s) => /\bnpm run build\b/.test(runs(s)));
    expect(builder, 'a stage runs npm run build').toBeDefined();
    const buildRuns = runs(builder as Stage);
    expect(buildRuns.indexOf('npm ci')).toBeGreaterThanOrEqual(0);
    expect(buildRuns.indexOf('npm ci')).toBeLessThan(buildRuns.indexOf('npm run build'));

    const modulesCopy = finalInstructions('COPY').map((i) => copyParts(i.args)).find((c) => c.sources.some((s) => s.endsWith('/node_modules')));
    expect(modulesCopy?.from, 'node_modules come from an earlier stage').toBeTruthy();
    const modulesStage = stages.find((s) => s.name === modulesCopy?.from) as Stage;
    expect(runs(modulesStage)).toMatch(/npm ci [^\n]*--omit=dev|npm prune [^\n]*--omit=dev/);
    expect(runs(final)).not.toMatch(/npm (ci|install)\b/);
  });

  it('stops with SIGTERM, exposes the data and admin ports, and enters through the switchyard bin', () => {
    expect(finalInstructions('STOPSIGNAL').map((i) => i.args.trim())).toEqual(['SIGTERM']);
    const exposed = finalInstructions('EXPOSE').flatMap((i) => i.args.split(/\s+/)).map((p) => p.replace(/\/tcp$/, ''));
    const values = readYaml(join(chartDir, 'values.yaml')) as { server: { port: number; adminPort: number } };
    expect(exposed.sort()).toEqual([String(values.server.port), String(values.server.adminPort)].sort());
    expect(execForm(finalInstructions('ENTRYPOINT').at(-1)?.args ?? '')).toEqual(['switchyard']);
    expect(execForm(finalInstructions('CMD').at(-1)?.args ?? '')).toEqual(['serve', '--config', '/etc/switchyard/policies']);

    const env = new Map(finalInstructions('ENV').flatMap((i) => [...assignments(i.args)]));
    expect(env.get('SWITCHYARD_CONFIG')).toBe('/etc/switchyard/policies');
    expect(env.get('SWITCHYARD_DATA_DIR')).toBe('/var/lib/switchyard');
    expect(env.get('NODE_OPTIONS')).toContain('--max-semi-space-size=64');
  });

  it('links the bin that `npm run build` emits onto PATH and makes it executable', () => {
    const bin = packageJson.bin?.switchyard;
    expect(bin).toBe('dist/src/cli.js');

    // tsconfig.build.json must compile src/cli.ts to exactly that file.
    const parsed = ts.getParsedCommandLineOfConfigFile(join(repoRoot, 'tsconfig.build.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined });
    expect(parsed).toBeDefined();
    const cliSource = join(repoRoot, 'src/cli.ts');
    expect(parsed?.fileNames.map((f) => join(f))).toContain(cliSource);
    const outputs = ts.getOutputFileNames(parsed as ts.ParsedCommandLine, cliSource, false).map((f) => relative(repoRoot, f));
    expect(outputs).toContain(bin);
    expect(readFileSync(cliSource, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);

    const runIndex = final.instructions.findIndex((i) => i.keyword === 'RUN' && /ln -s\S* \S+ \/usr\/local\/bin\/switchyard\b/.test(i.args));
    expect(runIndex, 'RUN ln -s <bin> /usr/local/bin/switchyard').toBeGreaterThanOrEqual(0);
    const link = /ln -s\S* (\S+) \/usr\/local\/bin\/switchyard/.exec(final.instructions[runIndex]?.args ?? '');
    expect(link?.[1]).toBe(posix.join(workdirAt(final, runIndex), bin ?? ''));
    // tsc does not set the executable bit; the build stage must, and COPY keeps it.
    const builder = stages.find((s) => s.instructions.some((i) => i.keyword === 'RUN' && /\bnpm run build\b/.test(i.args)));
    expect(builder?.instructions.some((i) => i.keyword === 'RUN' && new RegExp(`chmod [0-7]*7[0-7]* ${bin ?? ''}|chmod \\+x ${bin ?? ''}`).test(i.args))).toBe(true);
  });

  it('writes only to the data dir and /tmp: the data dir is created for the runtime user', () => {
    const uid = /^(\d+)/.exec(finalInstructions('USER').at(-1)?.args ?? '')?.[1];
    const runs = finalInstructions('RUN').map((i) => i.args).join('\n');
    expect(runs).toMatch(/mkdir -p(?: [^\s&;|]+)* \/var\/lib\/switchyard(?=\s|$)/);
    expect(runs).toMatch(new RegExp(`chown ${uid}(:\\d+)? /var/lib/switchyard`));
    expect(finalInstructions('VOLUME')).toEqual([]);
  });
});
