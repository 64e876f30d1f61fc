import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The emulated-AWS tier has its own config and command (vitest.aws.config.ts, `npm run test:aws`).
    exclude: ['test/aws/**', 'node_modules/**'],
    // Gives the run a Redis key root and, after it, fails the run on KV blobs or records tests leaked.
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
