#!/usr/bin/env node
// The `disagg` CLI entry: registers tsx so the TypeScript sources run as they are, without a build step.
// `--version` is answered before that: loading tsx alone takes longer than the whole answer should.
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  process.stdout.write(`${version}\n`);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./cli.ts');
}
