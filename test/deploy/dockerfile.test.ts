// Static checks of the Dockerfile (no Docker engine here), read with dockerfile-ast (the parser of the VS Code Docker
// language server) and .dockerignore with @balena/dockerignore (Docker's own matching rules), not with parsers of ours.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, posix, relative } from 'node:path';
import { DockerfileParser, type Instruction, type JSONInstruction } from 'dockerfile-ast';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { chartDir, readYaml, repoRoot } from './chart.js';

// A CommonJS module whose typings declare an ES default export: loaded through require so both agree.
const dockerignore = createRequire(import.meta.url)('@balena/dockerignore') as typeof import('@balena/dockerignore').default;
const dockerfile = DockerfileParser.parse(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8'));
const ignored = dockerignore({ ignorecase: false }).add(readFileSync(join(repoRoot, '.dockerignore'), 'utf8').split('\n'));
const values = readYaml(join(chartDir, 'values.yaml')) as { podSecurityContext: { runAsUser: number }; server: { port: number; adminPort: number } };
const buildConfig = ts.getParsedCommandLineOfConfigFile(join(repoRoot, 'tsconfig.build.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined });

interface Stage { name: string; base: string; instructions: Instruction[] }

/** The build stages in order, each with its resolved base image and its instructions (up to the next FROM). */
const stages: Stage[] = [];
for (const instruction of dockerfile.getInstructions()) {
  const from = dockerfile.getFROMs().find((f) => f === instruction);
  if (from === undefined) {
    stages.at(-1)?.instructions.push(instruction);
    continue;
  }
  const line = from.getRange().start.line;
  const base = (from.getImage() ?? '').replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a?: string, b?: string) => dockerfile.resolveVariable(a ?? b ?? '', line) ?? '');
  stages.push({ name: from.getBuildStage() ?? String(stages.length), base, instructions: [] });
}
const final = stages.at(-1)!;
const words = (i: Instruction): string[] => i.getArguments().map((a) => a.getValue());
const shell = (i: Instruction): string => words(i).join(' ');
const of = (stage: Stage, keyword: string): Instruction[] => stage.instructions.filter((i) => i.getKeyword() === keyword);
const runs = (stage: Stage): string => of(stage, 'RUN').map(shell).join('\n');
const execForm = (list: JSONInstruction[]): string[] => (list.filter((i) => final.instructions.includes(i)).at(-1)?.getJSONStrings() ?? []).map((s) => s.getJSONValue());
const env = (stage: Stage): Map<string, string> => new Map(dockerfile.getENVs().filter((e) => stage.instructions.includes(e)).flatMap((e) => e.getProperties().map((p) => [p.getName(), p.getValue() ?? ''] as const)));
const workdirAt = (stage: Stage, index: number): string => of({ ...stage, instructions: stage.instructions.slice(0, index) }, 'WORKDIR').reduce((dir, w) => posix.resolve(dir, shell(w)), '/');
const filesUnder = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]));

describe('Dockerfile', () => {
  it('is multi-stage on an LTS Node base pinned to an exact version', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of stages) {
      const pinned = /^node:(\d+)\.(\d+)\.(\d+)-bookworm-slim(@sha256:[0-9a-f]{64})?$/.exec(stage.base);
      expect(pinned, `FROM ${stage.base}`).not.toBeNull();
      expect(Number(pinned?.[1]) % 2, 'even majors are the LTS lines').toBe(0);
      expect(Number(pinned?.[1])).toBeGreaterThanOrEqual(20);
    }
  });

  it('runs as a numeric non-root user, the same uid the chart sets', () => {
    const match = /^(\d+)(?::(\d+))?$/.exec(shell(of(final, 'USER').at(-1)!));
    expect(match, 'numeric uid so Kubernetes can verify runAsNonRoot').not.toBeNull();
    expect(Number(match?.[1])).toBeGreaterThan(0);
    expect(values.podSecurityContext.runAsUser).toBe(Number(match?.[1]));
  });

  it('bakes in no secrets', () => {
    const names = [...dockerfile.getARGs(), ...dockerfile.getInitialARGs()].map((a) => a.getProperty()?.getName() ?? '');
    for (const stage of stages) names.push(...env(stage).keys());
    for (const name of names) expect(name).not.toMatch(/TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|PRIVATE|CREDENTIAL|REDIS_URL/i);
    for (const copy of dockerfile.getCOPYs()) expect(shell(copy)).not.toMatch(/\.npmrc|(^|[\s/])\.env|id_rsa|\.pem\b|\.key\b/);
    for (const path of ['.env', '.env.local', '.npmrc', 'certs/server.pem', 'node_modules/fastify/package.json', 'dist/src/cli.js', '.git/HEAD', '.tools/helm', 'bench/results/run.json', 'test/deploy/helm.test.ts', 'src/app.log']) {
      expect(ignored.ignores(path), path).toBe(true);
    }
  });

  it('copies only sources that exist in the context (and are not .dockerignored) or that an earlier stage produced', () => {
    expect(dockerfile.getInstructions().filter((i) => i.getKeyword() === 'ADD'), 'use COPY').toEqual([]);
    const outDir = relative(repoRoot, buildConfig?.options.outDir ?? 'dist');
    const produced = new Map<string, string[]>();
    let copies = 0;
    for (const stage of stages) {
      const outputs: string[] = [];
      stage.instructions.forEach((instruction, index) => {
        const workdir = workdirAt(stage, index);
        if (instruction.getKeyword() === 'RUN') {
          if (/\bnpm ci\b/.test(shell(instruction))) outputs.push(posix.join(workdir, 'node_modules'));
          if (/\bnpm run build\b/.test(shell(instruction))) outputs.push(posix.join(workdir, outDir));
        }
        if (instruction.getKeyword() !== 'COPY') return;
        const from = dockerfile.getCOPYs().find((c) => c === instruction)?.getFromFlag()?.getValue() ?? null;
        const [dest = '', ...reversed] = words(instruction).reverse();
        for (const source of reversed.reverse()) {
          copies += 1;
          if (from === null) {
            const path = join(repoRoot, source);
            expect(existsSync(path), `${source} is not in the repository`).toBe(true);
            const contextPaths = statSync(path).isDirectory() ? filesUnder(path).map((f) => relative(repoRoot, f)) : [posix.normalize(source)];
            expect(contextPaths.some((p) => !ignored.ignores(p)), `${source} is excluded by .dockerignore`).toBe(true);
          } else {
            expect(stages.slice(0, stages.indexOf(stage)).map((s) => s.name), `--from=${from}`).toContain(from);
            const made = produced.get(from) ?? [];
            expect(made.some((p) => source === p || source.startsWith(`${p}/`)), `${source} is not produced by stage ${from} (${made.join(', ')})`).toBe(true);
          }
          outputs.push(posix.resolve(workdir, dest));
        }
      });
      produced.set(stage.name, outputs);
    }
    expect(copies).toBeGreaterThan(3);
  });

  it('installs from the lockfile, builds, and ships only production dependencies', () => {
    const builder = stages.find((s) => /\bnpm run build\b/.test(runs(s)));
    expect(builder, 'a stage runs npm run build').toBeDefined();
    expect(runs(builder!).indexOf('npm ci')).toBeGreaterThanOrEqual(0);
    expect(runs(builder!).indexOf('npm ci')).toBeLessThan(runs(builder!).indexOf('npm run build'));
    const modulesCopy = dockerfile.getCOPYs().filter((c) => final.instructions.includes(c)).find((c) => words(c).some((w) => w.endsWith('/node_modules')));
    const modulesStage = stages.find((s) => s.name === modulesCopy?.getFromFlag()?.getValue());
    expect(modulesStage, 'node_modules come from an earlier stage').toBeDefined();
    expect(runs(modulesStage!)).toMatch(/npm ci [^\n]*--omit=dev|npm prune [^\n]*--omit=dev/);
    expect(runs(final)).not.toMatch(/npm (ci|install)\b/);
  });

  it('stops with SIGTERM, exposes the data and admin ports, and enters through the switchyard bin', () => {
    expect(of(final, 'STOPSIGNAL').map(shell)).toEqual(['SIGTERM']);
    expect(of(final, 'EXPOSE').flatMap(words).map((p) => p.replace(/\/tcp$/, '')).sort()).toEqual([String(values.server.port), String(values.server.adminPort)].sort());
    expect(execForm(dockerfile.getENTRYPOINTs())).toEqual(['switchyard']);
    expect(execForm(dockerfile.getCMDs())).toEqual(['serve', '--config', '/etc/switchyard/policies']);
    expect(env(final).get('SWITCHYARD_CONFIG')).toBe('/etc/switchyard/policies');
    expect(env(final).get('SWITCHYARD_DATA_DIR')).toBe('/var/lib/switchyard');
    expect(env(final).get('NODE_OPTIONS')).toContain('--max-semi-space-size=64');
  });

  it('links the bin that `npm run build` emits onto PATH and makes it executable', () => {
    const bin = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { bin?: Record<string, string> }).bin?.switchyard ?? '';
    expect(bin).toBe('dist/src/cli.js');
    // tsconfig.build.json must compile src/cli.ts to exactly that file.
    const cliSource = join(repoRoot, 'src/cli.ts');
    expect(buildConfig?.fileNames.map((f) => join(f))).toContain(cliSource);
    expect(ts.getOutputFileNames(buildConfig!, cliSource, false).map((f) => relative(repoRoot, f))).toContain(bin);
    expect(readFileSync(cliSource, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);

    const linkIndex = final.instructions.findIndex((i) => i.getKeyword() === 'RUN' && /ln -s\S* \S+ \/usr\/local\/bin\/switchyard\b/.test(shell(i)));
    expect(linkIndex, 'RUN ln -s <bin> /usr/local/bin/switchyard').toBeGreaterThanOrEqual(0);
    expect(/ln -s\S* (\S+) \/usr\/local\/bin\/switchyard/.exec(shell(final.instructions[linkIndex]!))?.[1]).toBe(posix.join(workdirAt(final, linkIndex), bin));
    // tsc does not set the executable bit; the build stage must, and COPY keeps it.
    expect(runs(stages.find((s) => /\bnpm run build\b/.test(runs(s)))!)).toMatch(new RegExp(`chmod [0-7]*7[0-7]* ${bin}|chmod \\+x ${bin}`));
  });

  it('writes only to the data dir and /tmp: the data dir is created for the runtime user', () => {
    const uid = /^(\d+)/.exec(shell(of(final, 'USER').at(-1)!))?.[1];
    expect(runs(final)).toMatch(/mkdir -p(?: [^\s&;|]+)* \/var\/lib\/switchyard(?=\s|$)/);
    expect(runs(final)).toMatch(new RegExp(`chown ${uid}(:\\d+)? /var/lib/switchyard`));
    expect(of(final, 'VOLUME')).toEqual([]);
  });
});
