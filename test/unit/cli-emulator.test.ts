import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { DEVICE_IDS, LINK_IDS, MODEL_IDS } from '../../lib/core/emulator';

const run = async (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
  try {
    const { stdout, stderr } = await promisify(execFile)('node', ['bin/disagg.mjs', ...args], { timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
};

describe('disagg CLI (contract)', () => {
  it('estimate --json prints exactly the documented fields for both configurations', async () => {
    const { code, stdout } = await run(
      'estimate',
      '--model',
      'llama-3.3-70b',
      '--prompt-tokens',
      '2000',
      '--output-tokens',
      '300',
      '--prefill',
      'trn2x16',
      '--decode',
      'cs3x4',
      '--colocated',
      'h100x8',
      '--json',
    );
    expect(code).toBe(0);
    const out = JSON.parse(stdout);
    // The contract's fields keep their names and order; new ones (dtypes, bands, stacks) come after them.
    expect(Object.keys(out).slice(0, 3)).toEqual(['model', 'promptTokens', 'outputTokens']);
    expect(Object.keys(out)).toEqual(expect.arrayContaining(['disaggregated', 'colocated']));
    expect(out).toMatchObject({ model: 'llama-3.3-70b', promptTokens: 2000, outputTokens: 300 });
    const disaggKeys = ['prefillMs', 'transferMs', 'ttftMs', 'tpotMs', 'e2eMs', 'tokensPerSecond'];
    const colocatedKeys = ['prefillMs', 'ttftMs', 'tpotMs', 'e2eMs', 'tokensPerSecond'];
    expect(Object.keys(out.disaggregated).slice(0, 6)).toEqual(disaggKeys);
    expect(Object.keys(out.colocated).slice(0, 5)).toEqual(colocatedKeys);
    // TTFT is the prefill: the first token leaves with it.
    expect(out.disaggregated.ttftMs).toBe(out.disaggregated.prefillMs);
    // Every value has the ends of its error band beside it, low below high (per-user speed inverted).
    for (const [block, keys] of [
      [out.disaggregated, disaggKeys],
      [out.colocated, colocatedKeys],
    ] as const) {
      for (const key of keys) {
        expect(block.low[key]).toBeLessThanOrEqual(block[key]);
        expect(block.high[key]).toBeGreaterThanOrEqual(block[key]);
      }
      expect(block.low.ttftMs).toBeLessThan(block.high.ttftMs);
    }
    expect(out.disaggregated.stacks).toEqual({ prefill: 'nxdi', decode: 'cerebras-2025' });
    expect(out.disaggregated.speculative.draft).toBe('llama-3.2-1b');
    expect(out.colocated.speculative).toBeNull();
  });

  it('--stack selects an older serving stack; --speculative-draft none removes a provider default', async () => {
    const base = [
      'estimate',
      '--model',
      'llama-3.1-70b',
      '--prompt-tokens',
      '1000',
      '--output-tokens',
      '500',
      '--colocated',
      'cs3x4',
      '--json',
    ];
    const today = JSON.parse((await run(...base)).stdout).colocated;
    const launch = JSON.parse((await run(...base, '--stack', 'cerebras-2024-08')).stdout).colocated;
    const plain = JSON.parse((await run(...base, '--speculative-draft', 'none')).stdout).colocated;
    expect(launch.tokensPerSecond).toBeGreaterThan(400);
    expect(launch.tokensPerSecond).toBeLessThan(500);
    expect(today.tokensPerSecond).toBeGreaterThan(3 * launch.tokensPerSecond);
    expect(plain.speculative).toBeNull();
    expect(plain.tokensPerSecond).toBeLessThan(today.tokensPerSecond);
  });

  it('estimate without token counts runs the 1,000 in / 1,000 out workload, as `estimate --model M --colocated P`', async () => {
    const bare = await run('estimate', '--model', 'llama-3.3-70b', '--colocated', 'cs3x4', '--json');
    expect(bare.code).toBe(0);
    const given = await run(
      ...['estimate', '--model', 'llama-3.3-70b', '--colocated', 'cs3x4', '--json'],
      ...['--prompt-tokens', '1000', '--output-tokens', '1000'],
    );
    const out = JSON.parse(bare.stdout);
    expect(out).toEqual(JSON.parse(given.stdout));
    // Cerebras serves Llama 3.3 70B at over 2,000 tokens/s per user, with its speculative decoding on by default.
    expect(out.colocated.speculative.draft).toBe('llama-3.2-1b');
    expect(out.colocated.tokensPerSecond).toBeGreaterThan(2000);
    const other = JSON.parse(
      (await run('estimate', '--model', 'llama-3.3-70b', '--colocated', 'cs3x4', '--json', '--output-tokens', '10'))
        .stdout,
    );
    expect(other.colocated.ttftMs).toBe(out.colocated.ttftMs);
    expect(other.colocated.e2eMs).toBeLessThan(out.colocated.e2eMs);
  });

  it('--weight-dtype and --kv-dtype set the precisions apart; --dtype sets both', async () => {
    const base = [
      'estimate',
      '--model',
      'llama-3.1-70b',
      '--prompt-tokens',
      '1000',
      '--output-tokens',
      '10',
      '--colocated',
      'h100x2',
      '--json',
    ];
    const fp8 = JSON.parse((await run(...base, '--weight-dtype', 'fp8')).stdout);
    expect([fp8.weightDtype, fp8.kvDtype]).toEqual(['fp8', 'bf16']);
    const both = JSON.parse((await run(...base, '--dtype', 'fp8')).stdout);
    expect([both.weightDtype, both.kvDtype]).toEqual(['fp8', 'fp8']);
  });

  it.each([
    [['--prompt-tokens', '131072', '--output-tokens', '1'], /context limit is 131072/],
    [['--prompt-tokens', '131000', '--output-tokens', '500'], /at most 72 output tokens fit/],
    [['--prompt-tokens', '100', '--output-tokens', '5', '--draft-tokens', '4'], /only apply with --speculative-draft/],
    [
      ['--prompt-tokens', '100', '--output-tokens', '5', '--speculative-draft', 'eagle'],
      /needs --draft-tokens K and --acceptance A/,
    ],
    [
      [
        '--prompt-tokens',
        '100',
        '--output-tokens',
        '5',
        '--speculative-draft',
        'qwen3-32b',
        '--draft-tokens',
        '4',
        '--acceptance',
        '0.7',
      ],
      /tokenizer/,
    ],
    [['--prompt-tokens', '100', '--output-tokens', '5', '--colocated', 'h100x12'], /use h100x8 or h100x16/],
    [
      ['--prompt-tokens', '100', '--output-tokens', '5', '--colocated', 'h100x3'],
      /does not divide llama-3.1-70b's 64 attention heads/,
    ],
    [['--prompt-tokens', '100', '--output-tokens', '5', '--stack', 'gpu-2025,splitwise-2023'], /choose one/],
  ])('refuses %j with a clear reason (exit 2)', async (args, message) => {
    const { code, stderr } = await run('estimate', '--model', 'llama-3.1-70b', ...args);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
  });

  it('estimate prints only the block whose flags were given', async () => {
    const { stdout } = await run(
      'estimate',
      '--model',
      'llama-3.1-8b',
      '--prompt-tokens',
      '500',
      '--output-tokens',
      '50',
      '--colocated',
      'h100x1',
      '--json',
    );
    const out = JSON.parse(stdout);
    expect(out.colocated).toBeDefined();
    expect(out.disaggregated).toBeUndefined();
  });

  it('an unknown model exits 2 and lists the valid ids', async () => {
    const { code, stderr } = await run('estimate', '--model', 'gpt-5', '--prompt-tokens', '1', '--output-tokens', '1');
    expect(code).toBe(2);
    for (const id of MODEL_IDS) expect(stderr).toContain(id);
  });

  it('an unknown device or link exits 2 and lists the valid ids', async () => {
    const device = await run(
      'estimate',
      '--model',
      'llama-3.1-8b',
      '--prompt-tokens',
      '1',
      '--output-tokens',
      '1',
      '--colocated',
      'tpu5x8',
    );
    expect(device.code).toBe(2);
    for (const id of DEVICE_IDS) expect(device.stderr).toContain(id);
    const link = await run(
      'estimate',
      '--model',
      'llama-3.1-8b',
      '--prompt-tokens',
      '1',
      '--output-tokens',
      '1',
      '--prefill',
      'trn2',
      '--decode',
      'cs3',
      '--link',
      'carrier-pigeon',
    );
    expect(link.code).toBe(2);
    for (const id of LINK_IDS) expect(link.stderr).toContain(id);
  });

  it('a config that does not fit exits 2 with the fit message', async () => {
    const { code, stderr } = await run(
      'estimate',
      '--model',
      'llama-3.1-405b',
      '--prompt-tokens',
      '1000',
      '--output-tokens',
      '10',
      '--colocated',
      'h100x8',
    );
    expect(code).toBe(2);
    expect(stderr).toMatch(/needs [\d.]+ GB.*h100x8 holds [\d.]+ GB.*it would take \d+ h100/);
  });

  it('bad numbers exit 2 naming the flag', async () => {
    const { code, stderr } = await run(
      'estimate',
      '--model',
      'llama-3.1-8b',
      '--prompt-tokens',
      '-5',
      '--output-tokens',
      '1',
    );
    expect(code).toBe(2);
    expect(stderr).toContain('--prompt-tokens');
  });

  it('profiles --json lists every device, link and model with sources', async () => {
    const { code, stdout } = await run('profiles', '--json');
    expect(code).toBe(0);
    const out = JSON.parse(stdout);
    expect(out.devices.map((d: { id: string }) => d.id)).toEqual([...DEVICE_IDS]);
    expect(out.links.map((l: { id: string }) => l.id)).toEqual([...LINK_IDS]);
    expect(out.models.map((m: { id: string }) => m.id)).toEqual([...MODEL_IDS]);
    expect(out.stacks.filter((s: { default: boolean }) => s.default).map((s: { id: string }) => s.id)).toEqual([
      'gpu-2025',
      'nxdi',
      'cerebras-2025',
    ]);
    expect(out.stacks.every((s: { sources: string[] }) => s.sources.length > 0)).toBe(true);
    expect(out.devices.every((d: { sources: string[] }) => d.sources.length > 0)).toBe(true);
  });

  it('calibrate --json gives every point with its source and the cross-validation within its limit', async () => {
    const { code, stdout } = await run('calibrate', '--json');
    expect(code).toBe(0);
    const out = JSON.parse(stdout);
    expect(out.points.length).toBeGreaterThan(300);
    for (const p of out.points) expect(p.source.length).toBeGreaterThan(20);
    expect(out.crossValidation.overallMedianError).toBeLessThanOrEqual(out.crossValidation.limit);
    expect(out.crossValidation.groups.length).toBeGreaterThan(20);
    // Every stack's fit says what it may move and what it keeps fixed; every prior carries its reason.
    expect(out.assumptions.map((a: { stack: string }) => a.stack)).toContain('nxdi');
    const priors = out.assumptions.flatMap((a: { priors: { reason: string; value: number }[] }) => a.priors);
    expect(priors.length).toBeGreaterThan(0);
    for (const p of priors) {
      expect(p.value).toBeGreaterThan(0);
      expect(p.reason.length).toBeGreaterThan(20);
    }
  });

  it('calibrate --report writes an offline page of every serving point, and refuses a folder that is not there', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'disagg-calibration-'));
    try {
      const file = join(dir, 'calibration.html');
      const ok = await run('calibrate', '--report', file);
      expect(ok.code).toBe(0);
      expect(ok.stdout).toContain(`wrote ${file}`);
      const html = readFileSync(file, 'utf8');
      expect(html).toContain('id="calibration-data"');
      expect(html).toContain('trn2x16 llama-3.1-405b TPOT');
      expect(html).not.toMatch(/<script[^>]+src=/);
      const missing = await run('calibrate', '--report', join(dir, 'no-such-folder', 'x.html'));
      expect(missing.code).toBe(2);
      expect(missing.stderr).toMatch(/does not exist/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("calibrate prints each fit's priors and fixed values beside the tables", async () => {
    const { code, stdout } = await run('calibrate');
    expect(code).toBe(0);
    expect(stdout).toMatch(/nxdi: \d+ free factors\n {4}prior trn2\.bandwidthEfficiency = 0\.\d+: /);
    expect(stdout).toContain('fixed: kernel floor 8 us per matrix multiply');
  });
});
