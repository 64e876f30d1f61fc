import { execFile } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { planInThreads } from '../../bin/commands/plan-threads';
import { loadTraceFile } from '../../lib/adapters/trace-files';
import { getModel } from '../../lib/core/emulator';
import {
  costFrontier,
  DEFAULT_FAMILIES,
  familyId,
  limit,
  parseFamilies,
  rateScale,
  parseSystemSpec,
  plan,
  simulate,
  SystemSpecError,
  type PlanEntry,
  type PlanResult,
  type SimOptions,
  type SystemSpec,
  type Workload,
} from '../../lib/core/sim';

const sim: SimOptions = { model: getModel('llama-3.3-70b'), cs3PricePerHour: 100, slo: { ttftMs: 2000, tpotMs: 40 } };
let workload: Workload;
let result: PlanResult;

beforeAll(async () => {
  // The first 600 requests of the shipped Azure sample: big enough to need more than one replica of small pools.
  workload = limit((await loadTraceFile('samples/azure-llm-2023-conv-sample.csv')).workload, 600);
  result = plan(workload, { sim, families: parseFamilies('trn2+cs3,h100,cs3,trn2') });
}, 120_000);

describe('parseFamilies', () => {
  it('reads the default: the split and five colocated devices', () => {
    expect(parseFamilies(DEFAULT_FAMILIES).map(familyId)).toEqual(['trn2+cs3', 'h100', 'h200', 'b200', 'cs3', 'trn2']);
  });

  it('accepts the system-spec prefixes and drops duplicates', () => {
    expect(parseFamilies('disagg:trn2+cs3, colocated:h100, h100,trn2>cs3').map(familyId)).toEqual(['trn2+cs3', 'h100']);
  });

  it('names the bad device and the valid ones', () => {
    expect(() => parseFamilies('h100,tpu')).toThrow(SystemSpecError);
    expect(() => parseFamilies('h100,tpu')).toThrow(/unknown device "tpu".*valid devices: trn1/);
    expect(() => parseFamilies(' , ')).toThrow(/--families is empty/);
  });
});

describe('plan', () => {
  it('finds a system for every family that meets the target, and says which family wins', () => {
    expect(result.cheapest.map((e) => e.family)).toEqual([
      'disagg trn2 -> cs3',
      'colocated h100',
      'colocated cs3',
      'colocated trn2',
    ]);
    for (const e of result.cheapest) expect(e.sloAttainment).toBeGreaterThanOrEqual(0.9);
    const cheapest = [...result.cheapest].sort((a, b) => a.dollarsPerHour! - b.dollarsPerHour!)[0]!;
    expect(result.verdict).toContain(cheapest.spec);
  });

  it('simulating a cheapest spec on the same workload reproduces its attainment and latencies', () => {
    for (const e of result.cheapest) {
      const again = simulate(workload, parseSystemSpec(e.spec), sim).metrics;
      expect(again.spec).toBe(e.spec);
      expect(again.sloAttainment).toBe(e.sloAttainment);
      expect(again.e2eMs).toEqual(e.e2eMs);
    }
  });

  it('is minimal in replicas: one replica fewer of any pool misses the target', () => {
    // Three times the recorded rate, so the cheapest systems need several replicas.
    const heavy = rateScale(workload, 3);
    const heavyPlan = plan(heavy, { sim, families: parseFamilies('trn2+cs3,h100,trn2'), bands: false });
    let checked = 0;
    for (const e of heavyPlan.cheapest) {
      const spec = parseSystemSpec(e.spec);
      const fewer: SystemSpec[] =
        spec.kind === 'colocated'
          ? [{ ...spec, colocated: { ...spec.colocated, replicas: spec.colocated.replicas - 1 } }]
          : [
              { ...spec, prefill: { ...spec.prefill, replicas: spec.prefill.replicas - 1 } },
              { ...spec, decode: { ...spec.decode, replicas: spec.decode.replicas - 1 } },
            ];
      for (const f of fewer) {
        const replicas = f.kind === 'colocated' ? [f.colocated.replicas] : [f.prefill.replicas, f.decode.replicas];
        if (replicas.some((r) => r < 1)) continue;
        expect(simulate(heavy, f, sim).metrics.sloAttainment).toBeLessThan(0.9);
        checked += 1;
      }
    }
    expect(checked).toBeGreaterThan(0);
  }, 120_000);

  it('prices systems: the cheapest spec costs what its devices cost', () => {
    const h100 = result.cheapest.find((e) => e.family === 'colocated h100')!;
    const spec = parseSystemSpec(h100.spec);
    if (spec.kind !== 'colocated') throw new Error('expected a colocated system');
    expect(h100.dollarsPerHour).toBeCloseTo((55.04 / 8) * spec.colocated.pool.count * spec.colocated.replicas, 2);
  });

  it('returns a frontier that only meets the target and falls in p99 as cost rises', () => {
    expect(result.frontier.length).toBeGreaterThan(0);
    for (let k = 0; k < result.frontier.length; k++) {
      const e = result.frontier[k]!;
      expect(e.sloAttainment).toBeGreaterThanOrEqual(0.9);
      if (k === 0) continue;
      const prev = result.frontier[k - 1]!;
      expect(e.dollarsPerHour!).toBeGreaterThan(prev.dollarsPerHour!);
      expect(e.e2eMs.p99!).toBeLessThan(prev.e2eMs.p99!);
    }
  });

  it('runs both ends of the error band and reports whether the winner changes', () => {
    expect(result.bands.map((b) => b.band)).toEqual(['low', 'high']);
    const mid = [...result.cheapest].sort((a, b) => a.dollarsPerHour! - b.dollarsPerHour!)[0]!.family;
    expect(result.verdictFlipsInBand).toBe(result.bands.some((b) => b.winner !== mid));
  });

  it('explains CS-3 alone and Trainium alone against the split', () => {
    expect(result.alternatives.map((a) => a.family)).toEqual(['colocated cs3', 'colocated trn2']);
    expect(result.alternatives[0]!.reason).toMatch(/wafer also prefills/);
    expect(result.alternatives[1]!.reason).toMatch(/bandwidth-bound/);
  });

  it('without a CS-3 price ranks CS-3 systems by count, leaves them off the frontier and says so', () => {
    const unpriced = plan(workload, {
      sim: { ...sim, cs3PricePerHour: undefined } as SimOptions,
      families: parseFamilies('trn2+cs3,h100,cs3'),
      bands: false,
    });
    expect(unpriced.rankedBy).toBe('dollars, CS-3 systems by count');
    expect(unpriced.notes.join(' ')).toMatch(/CS-3 has no public price/);
    const cs3 = unpriced.cheapest.filter((e) => e.cs3Systems > 0);
    expect(cs3.length).toBe(2);
    for (const e of cs3) expect(e.dollarsPerHour).toBeNull();
    expect(unpriced.frontier.every((e) => e.cs3Systems === 0)).toBe(true);
    expect(unpriced.cs3BreakEven.map((b) => b.family)).toEqual(['disagg trn2 -> cs3', 'colocated cs3']);
  });

  it('says why a family cannot meet an SLO no replica count reaches', () => {
    const tight = plan(workload, {
      sim: { ...sim, slo: { ttftMs: 2000, tpotMs: 5 } },
      families: parseFamilies('trn2'),
      bands: false,
    });
    expect(tight.cheapest).toEqual([]);
    expect(tight.infeasible[0]!.reason).toMatch(/TPOT 5 ms/);
    expect(tight.simulations).toBe(0);
  });
});

describe('planInThreads', () => {
  it('gives the same plan from two worker threads as inline, and counts progress to the end', async () => {
    const small = limit(workload, 200);
    const options = { sim, families: parseFamilies('h100,trn2+cs3,cs3'), bands: false };
    const seen: number[] = [];
    const threaded = await planInThreads(small, { ...options, onProgress: (done) => seen.push(done) }, 2);
    const inline = plan(small, options);
    const strip = (r: PlanResult) => ({ ...r, cheapestRuns: r.cheapestRuns.map((x) => x.metrics) });
    expect(strip(threaded)).toEqual(strip(inline));
    expect(Math.max(...seen)).toBe(inline.simulations);
  }, 120_000);
});

describe('costFrontier', () => {
  const entry = (spec: string, dollars: number | null, p99: number): PlanEntry =>
    ({ spec, dollarsPerHour: dollars, e2eMs: { p50: 1, p90: 1, p99 } }) as PlanEntry;
  it('keeps the systems no cheaper one beats on p99, and skips unpriced ones', () => {
    const out = costFrontier([entry('a', 10, 900), entry('b', 20, 950), entry('c', 30, 400), entry('d', null, 1)]);
    expect(out.map((e) => e.spec)).toEqual(['a', 'c']);
  });
});

describe('disagg plan (CLI)', () => {
  const run = async (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
    try {
      const { stdout, stderr } = await promisify(execFile)('node', ['bin/disagg.mjs', ...args], { timeout: 120_000 });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };
  const args = ['--trace', 'samples/azure-llm-2023-conv-sample.csv', '--limit', '300', '--families', 'trn2+cs3,h100'];

  it('--json starts with cheapest and frontier, entries with the contract keys, and writes a report', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'disagg-plan-'));
    const report = join(dir, 'plan.html');
    const { code, stdout } = await run('plan', ...args, '--cs3-price-per-hour', '80', '--json', '--report', report);
    expect(code).toBe(0);
    const out = JSON.parse(stdout);
    expect(Object.keys(out).slice(0, 2)).toEqual(['cheapest', 'frontier']);
    expect(out.cheapest).toHaveLength(2);
    for (const e of out.cheapest) {
      expect(Object.keys(e).slice(0, 7)).toEqual([
        'family',
        'spec',
        'dollarsPerHour',
        'sloAttainment',
        'ttftMs',
        'tpotMs',
        'e2eMs',
      ]);
      expect(Object.keys(e.e2eMs)).toEqual(['p50', 'p90', 'p99']);
    }
    // The CLI's own round trip: each cheapest spec, simulated with the same flags, gives the same attainment.
    for (const e of out.cheapest) {
      const sim = await run(
        'simulate',
        ...args.slice(0, 4),
        '--cs3-price-per-hour',
        '80',
        '--system',
        e.spec,
        '--json',
      );
      expect(sim.code).toBe(0);
      expect(JSON.parse(sim.stdout).systems[0].sloAttainment).toBe(e.sloAttainment);
    }
    const html = await readFile(report, 'utf8');
    expect(html).toContain(out.verdict.replace(/&/g, '&amp;').slice(0, 40));
    expect(html).toContain('Assumptions');
    expect(html).toContain('$80.00 per system-hour');
    expect(html).not.toContain(dir);
  }, 120_000);

  it('simulate --band charges device time at either end of the error band; --stack picks the serving stack', async () => {
    const base = [
      'simulate',
      '--synthetic',
      '2:500:50',
      '--requests',
      '100',
      '--system',
      'disagg:trn2x16+cs3x8',
      '--json',
    ];
    const tpot = async (...extra: string[]): Promise<number> => {
      const out = await run(...base, ...extra);
      expect(out.code).toBe(0);
      return JSON.parse(out.stdout).systems[0].tpotMs.p50 as number;
    };
    const [low, mid, high, launch] = await Promise.all([
      tpot('--band', 'low'),
      tpot(),
      tpot('--band', 'high'),
      tpot('--stack', 'cerebras-2024-08'),
    ]);
    expect(low).toBeLessThan(mid);
    expect(high).toBeGreaterThan(mid);
    // The August 2024 launch stack is slower than today's and runs no speculative decoding.
    expect(launch).toBeGreaterThan(mid);
    const bad = await run(...base, '--stack', 'cerebras-1999');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown serving stack "cerebras-1999"/);
  }, 60_000);

  it('refuses --system, a bad attainment and a bad band before any work', async () => {
    const system = await run('plan', ...args, '--system', 'colocated:h100x8');
    expect(system.code).toBe(2);
    expect(system.stderr).toMatch(/--families, not --system/);
    const attainment = await run('plan', ...args, '--attainment', '1.5');
    expect(attainment.code).toBe(2);
    expect(attainment.stderr).toMatch(/--attainment must be a fraction/);
    const band = await run('plan', ...args, '--band', 'wide');
    expect(band.code).toBe(2);
    expect(band.stderr).toMatch(/Allowed choices are low, mid, high/);
  }, 60_000);
});
