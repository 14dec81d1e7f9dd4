import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // One file at a time: the topology tests run whole stacks (Postgres, replicas, Redis,
    // HAProxy, web servers) under load and assert zero failed requests; two of them at once
    // on two cores starved each other into timeouts. The suite stays around 5 minutes.
    maxWorkers: 1,
    fileParallelism: false,
  },
});
