// Test tiers mirror the tree: unit (pure code), integration (real Temporal dev server + emulator over
// HTTP, one shared server per run from globalSetup), e2e (the CLI binary as a user runs it).
import { defineConfig } from 'vitest/config';

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
    ],
  },
});
