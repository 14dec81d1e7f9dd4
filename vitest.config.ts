// Three groups of test files, run one group after the other (sequence.groupOrder):
//  unit   no services, no processes: in parallel, one worker per core.
//  light  integration files that use only the shared test Postgres and a server on port 0
//         (or a `ladder --help`): two at a time.
//  heavy  everything else: whole topologies (Postgres, replicas, Redis, HAProxy, web servers)
//         under load, the bench, processes killed and restarted, timing-sensitive fault
//         injection, the browser. One at a time: two of them at once on two cores starved
//         each other into timeouts.
// A new integration file goes to heavy unless it is as light as those listed here.
import { defineConfig } from 'vitest/config';

const LIGHT = ['api', 'bad-input', 'cli', 'edge-vcl', 'hostile-input', 'links-api', 'ops', 'security'].map(
  (n) => `test/integration/${n}.test.ts`,
);
const GLOBAL_SETUP = ['test/support/global-setup.ts']; // fresh dist/ and the shared Postgres

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'], sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        test: {
          name: 'light',
          include: LIGHT,
          globalSetup: GLOBAL_SETUP,
          maxWorkers: 2,
          sequence: { groupOrder: 1 },
        },
      },
      {
        extends: true,
        test: {
          name: 'heavy',
          include: ['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts'],
          exclude: LIGHT,
          globalSetup: GLOBAL_SETUP,
          maxWorkers: 1,
          fileParallelism: false,
          sequence: { groupOrder: 2 },
        },
      },
    ],
  },
});
