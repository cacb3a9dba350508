// Vitest globalSetup: starts ONE real Unleash for the whole run and provides its coordinates to every test file.
import type { TestProject } from 'vitest/node';
import { externalUnleashFromEnv, startUnleashServer, toInfo, UNLEASH_PROVIDE_KEY } from './unleash-server.js';

/**
 * Runs once in the vitest main process before any worker starts. Suites read the server with
 * `getSharedUnleashServer()`. When SWY_UNLEASH_URL / _ADMIN_TOKEN / _CLIENT_TOKEN are set, that server is used instead.
 * @returns the teardown vitest calls after the run: stops the server and drops its database.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const external = externalUnleashFromEnv();
  if (external !== undefined) {
    project.provide(UNLEASH_PROVIDE_KEY, external);
    return async () => {};
  }
  const server = await startUnleashServer();
  project.provide(UNLEASH_PROVIDE_KEY, toInfo(server));
  return () => server.stop();
}
