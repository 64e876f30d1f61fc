#!/usr/bin/env node
// `npm audit --omit=dev`: fails on any high or critical advisory in runtime dependencies.
// Where the registry's advisory endpoint cannot be reached (some mirrors allow only GET), it says
// so and does not pretend the audit passed.
import { spawnSync } from 'node:child_process';

const run = spawnSync('npm', ['audit', '--omit=dev', '--json'], { encoding: 'utf8', timeout: 120_000 });
let report;
try {
  report = JSON.parse(run.stdout || '{}');
} catch {
  report = {};
}
const unreachable = report.statusCode !== undefined || report.error !== undefined || report.message !== undefined;
if (unreachable || !report.metadata) {
  const why = report.statusCode
    ? `HTTP ${report.statusCode}`
    : (report.error?.summary ?? report.message ?? 'no report');
  console.log(`npm audit: NOT RUN - the registry's advisory endpoint is unreachable from here (${why}).`);
  process.exit(0);
}
const v = report.metadata.vulnerabilities;
console.log(
  `npm audit (runtime dependencies): critical ${v.critical}, high ${v.high}, moderate ${v.moderate}, low ${v.low}`,
);
if (v.critical + v.high > 0) {
  for (const [name, entry] of Object.entries(report.vulnerabilities ?? {})) {
    if (entry.severity === 'high' || entry.severity === 'critical')
      console.log(`  ${entry.severity}: ${name} (${entry.range})`);
  }
  process.exit(1);
}
