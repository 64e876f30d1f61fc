import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = async (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
  try {
    const { stdout, stderr } = await promisify(execFile)('node', ['bin/disagg.mjs', ...args], { timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
};

const CONTRACT = [
  'spec',
  'requests',
  'completed',
  'rejected',
  'ttftMs',
  'tpotMs',
  'e2eMs',
  'outputTokensPerSecond',
  'goodputRps',
  'sloAttainment',
  'costPerMillionOutputTokens',
];
const synthetic = ['--synthetic', '2:500:50', '--requests', '200'];

describe('disagg simulate (contract)', () => {
  it('--json prints {"systems": [...]} with the contract keys first, in order, for every system', async () => {
    const { code, stdout } = await run(
      'simulate',
      ...synthetic,
      '--system',
      'disagg:trn2x16+cs3x8',
      '--compare',
      'colocated:h100x8*2',
      '--json',
    );
    expect(code).toBe(0);
    const out = JSON.parse(stdout);
    expect(Object.keys(out)).toEqual(['systems']);
    expect(out.systems.map((s: { spec: string }) => s.spec)).toEqual([
      'disagg:trn2x16*1+cs3x8*1',
      'colocated:h100x8*2',
    ]);
    for (const system of out.systems) {
      expect(Object.keys(system).slice(0, CONTRACT.length)).toEqual(CONTRACT);
      for (const key of ['ttftMs', 'tpotMs', 'e2eMs']) expect(Object.keys(system[key])).toEqual(['p50', 'p90', 'p99']);
      expect(system.requests).toBe(200);
      expect(system.completed + system.rejected).toBe(200);
    }
    expect(out.systems[0].costPerMillionOutputTokens).toBeNull();
    expect(out.systems[1].costPerMillionOutputTokens).toBeGreaterThan(0);
  });

  it('prints a table comparing the systems, with the cost note for a missing CS-3 price', async () => {
    const { code, stdout, stderr } = await run(
      'simulate',
      ...synthetic,
      '--system',
      'disagg:trn2x16+cs3x8',
      '--compare',
      'colocated:h100x8',
    );
    expect(code).toBe(0);
    expect(stdout).toContain('disagg:trn2x16*1+cs3x8*1');
    expect(stdout).toContain('TTFT ms p50 / p90 / p99');
    expect(stdout).toMatch(/cost of disagg:trn2x16\*1\+cs3x8\*1: CS-3 has no public price/);
    // No progress bar when stderr is not a terminal.
    expect(stderr).toBe('');
  });

  it.each([
    ['an unknown model', ['--model', 'gpt-5'], /unknown model "gpt-5"/],
    ['an unknown device', ['--system', 'colocated:tpu9x8'], /unknown device "tpu9"/],
    ['a bad system spec', ['--system', 'h100x8'], /bad system "h100x8"/],
    ['a system that does not fit', ['--system', 'disagg:trn2x16+cs3x1'], /does not fit: .*cs3x1/],
    ['a bad number', ['--decode-batch', 'lots'], /--decode-batch must be a whole number/],
    ['two workloads', ['--agents', '3'], /exactly one workload/],
    ['an unknown queue discipline', ['--routing', 'random'], /--routing must be one of shared, jsq-tokens/],
    [
      'a report in a folder that does not exist',
      ['--report', 'no-such-folder/r.html'],
      /cannot write the report to no-such-folder\/r\.html: the folder no-such-folder does not exist/,
    ],
    ['a report path that is a folder', ['--report', 'samples'], /cannot write the report to samples: it is a folder/],
    ['two batch caps that disagree', ['--decode-batch', '8', '--max-decode-batch', '16'], /the same setting/],
  ])('%s exits 2 with the reason', async (_, extra, message) => {
    const args = ['simulate', ...synthetic, '--system', 'colocated:h100x8', ...extra];
    const { code, stderr } = await run(...args);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
  });

  it('too many agent turns exit 2 at once with the limit, not after running out of memory', async () => {
    const { code, stderr } = await run(
      'simulate',
      '--agents',
      '100000',
      '--turns',
      '1000',
      '--system',
      'colocated:h100x8',
    );
    expect(code).toBe(2);
    expect(stderr).toMatch(/agents x turns is 100,000,000 requests; the limit is 1,000,000/);
  });

  it('an unwritable report path exits 2 before any simulation, for sweep too', async () => {
    const { code, stderr, stdout } = await run(
      'sweep',
      ...synthetic,
      '--rates',
      '1,2',
      '--system',
      'colocated:h100x8',
      '--report',
      'no-such-folder/r.html',
    );
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/cannot write the report to no-such-folder\/r\.html/);
  });

  it('a malformed trace exits 2 naming the bad lines; --skip-bad-lines runs it with a warning', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'disagg-sim-'));
    const file = join(dir, 'trace.csv');
    await writeFile(
      file,
      'TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.0,100,10\nbroken\n2023-11-16 18:15:47.0,200,20\n',
    );
    const bad = await run('simulate', '--trace', file, '--system', 'colocated:h100x8');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/1 malformed line .*\n\s+line 3: expected 3 comma-separated fields/);
    const skipped = await run(
      'simulate',
      '--trace',
      file,
      '--skip-bad-lines',
      '--system',
      'colocated:h100x8',
      '--json',
    );
    expect(skipped.code).toBe(0);
    expect(skipped.stderr).toMatch(/skipped 1 malformed lines/);
    expect(JSON.parse(skipped.stdout).systems[0].completed).toBe(2);
    const missing = await run('simulate', '--trace', join(dir, 'nope.csv'), '--system', 'colocated:h100x8');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read trace/);
  });
});

describe('disagg sweep (contract)', () => {
  it('reports per system the highest rate keeping SLO attainment at or above the target', async () => {
    const { code, stdout } = await run(
      'sweep',
      '--synthetic',
      '--prompt-mean',
      '2000',
      '--output-mean',
      '100',
      '--requests',
      '300',
      '--rates',
      '1,4,40',
      '--system',
      'colocated:h100x8',
      '--json',
    );
    expect(code).toBe(0);
    const out = JSON.parse(stdout);
    expect(out).toMatchObject({ variable: 'rate', target: 0.9 });
    const [system] = out.systems;
    expect(system.steps.map((s: { value: number }) => s.value)).toEqual([1, 4, 40]);
    const passing = system.steps.filter((s: { sloAttainment: number }) => s.sloAttainment >= 0.9);
    expect(system.maxSustained).toBe(passing.at(-1)?.value ?? null);
    expect(system.steps.at(-1).sloAttainment).toBeLessThan(0.9);
    // Which objective or rejection failed it, at the first step that missed the target.
    const failed = system.steps.find((s: { sloAttainment: number }) => s.sloAttainment < 0.9);
    expect(system.failedBy).toMatch(
      new RegExp(`(TTFT over 2000 ms|TPOT over 100 ms|rejected).* at ${failed.value} \\(`),
    );
    const m = failed.misses;
    expect(1 - failed.sloAttainment).toBeLessThanOrEqual(m.ttft + m.tpot + m.rejected + 1e-6);
    expect(1 - failed.sloAttainment).toBeGreaterThanOrEqual(Math.max(m.ttft, m.tpot, m.rejected) - 1e-6);
  });

  it('without load steps exits 2 and says how to give them', async () => {
    const { code, stderr } = await run('sweep', '--synthetic', '1', '--system', 'colocated:h100x8');
    expect(code).toBe(2);
    expect(stderr).toMatch(/--rates a,b,c or --from A --to B/);
  });
});
