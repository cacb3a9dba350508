// Vitest configuration: unit and fault suites run without services; integration suites share one real Unleash server.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts', 'test/contracts/**/*.test.ts', 'test/conformance/**/*.test.ts', 'test/deploy/**/*.test.ts'] } },
      // Fault injection: real sockets, processes and data dirs against misbehaving servers and disks.
      { extends: true, test: { name: 'faults', include: ['test/faults/**/*.test.ts'] } },
      // The status page in a real headless Chromium (playwright-core driving Debian's chromium); needs `npm run build`.
      { extends: true, test: { name: 'browser', include: ['test/browser/**/*.test.ts'] } },
      { extends: true, test: { name: 'integration', include: ['test/integration/**/*.test.ts'], globalSetup: ['test/helpers/unleash-global-setup.ts'] } },
    ],
  },
});
