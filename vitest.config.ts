// Test tiers mirror the tree: unit (pure code), integration (real Temporal dev server + emulator over
// HTTP, one shared server per run from globalSetup), e2e (the CLI binary as a user runs it).
import { defineConfig, type TestProjectInlineConfiguration } from 'vitest/config';

// Survival suites (`npm run test:reliability`, about 7 minutes): workers SIGKILLed, the
// Temporal server and the provider restarted, provider weather, a broken disk. Too slow for every
// `npm test`, so the project exists only when asked for: `--project reliability`, a path under
// test/reliability, or BATCHPILOT_RELIABILITY=1 (to run it with everything else). Its files mostly
// wait (outages, stuck batches, backoff), so two run at once; its own group keeps that apart from
// the other projects' worker count.
const withReliability =
  process.env.BATCHPILOT_RELIABILITY === '1' ||
  process.argv.some(
    (a) => a === 'reliability' || a === '--project=reliability' || a.includes('test/reliability'),
  );
const reliability: TestProjectInlineConfiguration = {
  extends: true,
  test: {
    name: 'reliability',
    include: ['test/reliability/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 900_000,
    hookTimeout: 300_000,
    maxWorkers: 2,
    sequence: { groupOrder: 1 },
  },
};

// The fleet tier: docker-compose.yml's topology as processes (PostgreSQL, the Temporal server built
// from source, `batchpilot worker` processes). It needs `BATCHPILOT_FLEET=1 bash scripts/setup.sh`
// once, so it exists only when asked for: `--project fleet`, a path under test/fleet, or
// BATCHPILOT_FLEET=1. It starts its own servers, no dev server.
const withFleet =
  process.env.BATCHPILOT_FLEET === '1' ||
  process.argv.some((a) => a === 'fleet' || a === '--project=fleet' || a.includes('test/fleet'));
const fleet: TestProjectInlineConfiguration = {
  extends: true,
  test: {
    name: 'fleet',
    include: ['test/fleet/**/*.test.ts'],
    testTimeout: 900_000,
    hookTimeout: 300_000,
    maxWorkers: 1,
    // Alone, after the other projects: its PostgreSQL and Temporal server want the two cores.
    sequence: { groupOrder: 2 },
  },
};

export default defineConfig({
  test: {
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 180_000,
    projects: [
      {
        extends: true,
        // No Temporal server needed: pure code, the emulator over HTTP, the planner on files.
        test: {
          name: 'unit',
          include: [
            'test/unit/**/*.test.ts',
            'test/emulator/**/*.test.ts',
            'test/planner/**/*.test.ts',
            'test/replay/**/*.test.ts',
          ],
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts'],
          globalSetup: ['test/support/global-setup.ts'],
        },
      },
      ...(withReliability ? [reliability] : []),
      ...(withFleet ? [fleet] : []),
    ],
  },
});
