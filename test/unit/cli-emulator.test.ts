import { execFile } from 'node:child_process';
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
    expect(Object.keys(out)).toEqual(['model', 'promptTokens', 'outputTokens', 'disaggregated', 'colocated']);
    expect(out).toMatchObject({ model: 'llama-3.3-70b', promptTokens: 2000, outputTokens: 300 });
    expect(Object.keys(out.disaggregated)).toEqual([
      'prefillMs',
      'transferMs',
      'ttftMs',
      'tpotMs',
      'e2eMs',
      'tokensPerSecond',
    ]);
    expect(Object.keys(out.colocated)).toEqual(['prefillMs', 'ttftMs', 'tpotMs', 'e2eMs', 'tokensPerSecond']);
    expect(out.disaggregated.ttftMs).toBeGreaterThan(out.disaggregated.prefillMs);
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
    expect(out.devices.every((d: { sources: string[] }) => d.sources.length > 0)).toBe(true);
  });

  it('calibrate prints the table with every point within tolerance', async () => {
    const { code, stdout } = await run('calibrate', '--json');
    expect(code).toBe(0);
    const out = JSON.parse(stdout);
    expect(out.points.length).toBeGreaterThanOrEqual(7);
    for (const p of out.points) expect(Math.abs(p.errorPercent)).toBeLessThanOrEqual(15);
  });
});
