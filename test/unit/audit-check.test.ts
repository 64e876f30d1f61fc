import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/** Runs scripts/audit-check.mjs with an `npm` on PATH that prints `report` as its audit JSON. */
function auditWith(report: unknown): { code: number | null; out: string } {
  const dir = mkdtempSync(join(tmpdir(), 'disagg-audit-'));
  const fakeNpm = join(dir, 'npm');
  writeFileSync(fakeNpm, `#!/bin/sh\ncat <<'JSON'\n${JSON.stringify(report)}\nJSON\n`);
  chmodSync(fakeNpm, 0o755);
  try {
    const run = spawnSync('node', ['scripts/audit-check.mjs'], {
      encoding: 'utf8',
      env: { ...process.env, PATH: `${dir}:${process.env.PATH}` },
    });
    return { code: run.status, out: run.stdout };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const counts = (high: number, critical: number) => ({
  metadata: { vulnerabilities: { info: 0, low: 2, moderate: 1, high, critical } },
  vulnerabilities: high + critical > 0 ? { badpkg: { severity: critical ? 'critical' : 'high', range: '<1.2.3' } } : {},
});

describe('the CI audit gate', () => {
  it('fails on a high or critical advisory in runtime dependencies, naming the package', () => {
    const r = auditWith(counts(1, 0));
    expect(r.code).toBe(1);
    expect(r.out).toContain('high: badpkg');
  });

  it('passes with only moderate and low advisories', () => {
    expect(auditWith(counts(0, 0)).code).toBe(0);
  });

  it('says plainly that it did not run when the advisory endpoint is unreachable', () => {
    const r = auditWith({ statusCode: 405, message: '405 Method Not Allowed' });
    expect(r.code).toBe(0);
    expect(r.out).toContain('NOT RUN');
  });
});
