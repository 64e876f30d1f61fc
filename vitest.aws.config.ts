import { defineConfig } from 'vitest/config';

/**
 * The emulated-AWS tier (`npm run test:aws`): the synthesized stacks run against AWS-protocol servers on
 * 127.0.0.1 (test/aws). Each file synthesizes a stack and starts its own servers; two files run at once.
 */
export default defineConfig({
  test: {
    include: ['test/aws/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 240_000,
    maxWorkers: 2,
  },
});
