// The install is clean on the supported Node versions (README, "Quick start"), and the pinned cookie works under fastify's inject.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Fastify from 'fastify';
import semver from 'semver';
import { describe, expect, it } from 'vitest';
import { repoRoot } from './chart.js';

interface LockPackage { version?: string; dev?: boolean; optional?: boolean; engines?: { node?: string } | string[] }
const lock = JSON.parse(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockPackage> };
const manifest = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { engines: { node: string } };

/** Packages of the lockfile whose declared Node range excludes `version` (what npm ci reports as EBADENGINE). */
function refusing(version: string, dev: boolean): string[] {
  return Object.entries(lock.packages)
    .filter(([name, p]) => name !== '' && (p.dev === true) === dev && !Array.isArray(p.engines) && typeof p.engines?.node === 'string')
    // Platform bindings (optional, for other systems) are not installed here and are left to npm.
    .filter(([, p]) => !(p.optional === true && p.dev === true))
    .filter(([, p]) => !semver.satisfies(version, (p.engines as { node: string }).node))
    .map(([name, p]) => `${name.replace(/^.*node_modules\//, '')}@${p.version ?? '?'} wants ${(p.engines as { node: string }).node}`);
}

describe('install', () => {
  it('every production dependency runs on the oldest Node package.json admits and on the image\'s Node 22', () => {
    const oldest = semver.minVersion(manifest.engines.node)!.version;
    expect(oldest).toBe('20.18.1');
    const image = /node:(\d+\.\d+\.\d+)/.exec(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8'))?.[1] ?? '';
    expect(semver.major(image)).toBe(22);
    for (const version of [oldest, image, process.versions.node]) expect(refusing(version, false), `Node ${version}`).toEqual([]);
  });

  it('every development dependency accepts Node 20.19+ and 22.13+ (building and testing)', () => {
    for (const version of ['20.19.0', '22.13.0', process.versions.node]) expect(refusing(version, true), `Node ${version}`).toEqual([]);
  });

  it('fastify inject sends cookies through the cookie version the overrides pin (it declares Node >= 18)', async () => {
    const pinned = lock.packages['node_modules/light-my-request/node_modules/cookie'] ?? lock.packages['node_modules/cookie'];
    expect(pinned?.engines).toEqual({ node: '>=18' });
    const app = Fastify();
    app.get('/echo', async (request) => ({ cookie: request.headers.cookie ?? null }));
    try {
      const res = await app.inject({ method: 'GET', url: '/echo', cookies: { user: 'alice', grass: 'àìùòlé' } });
      expect(res.json()).toEqual({ cookie: `user=alice; grass=${encodeURIComponent('àìùòlé')}` });
    } finally {
      await app.close();
    }
  });
});
