/**
 * `disagg plan`: the cheapest system of each family that meets the SLOs on a workload, the cost against p99
 * end-to-end frontier, CS-3 alone and Trainium alone against the split, and whether the answer holds at both ends
 * of the timing model's error band. The search is lib/core/sim/planner.ts; the workload flags are simulate's.
 */
import { performance } from 'node:perf_hooks';
import {
  DEFAULT_ATTAINMENT,
  DEFAULT_FAMILIES,
  jsonSafe,
  parseFamilies,
  REJECTED,
  type PlanEntry,
  type PlanResult,
  type Workload,
} from '../../lib/core/sim';
import { UsageError } from './errors';
import { planInThreads } from './plan-threads';
import {
  baseWorkload,
  checkReportPath,
  progressBar,
  systemsFromFlags,
  transformWorkload,
  type SimulateFlags,
} from './simulate';
import { plainTable } from './table';

export interface PlanFlags extends SimulateFlags {
  families?: string;
  attainment?: string;
}

export interface PlanRun {
  readonly workload: Workload;
  readonly result: PlanResult;
  /** Measured wall time of the search, seconds (not emulated time). */
  readonly wallSeconds: number;
}

function attainmentOf(value: string | undefined): number {
  if (value === undefined) return DEFAULT_ATTAINMENT;
  const n = Number(value);
  if (value.trim() === '' || !(n > 0 && n <= 1)) {
    throw new UsageError(`--attainment must be a fraction in (0, 1], e.g. 0.9, got "${value}"`);
  }
  return n;
}

export async function runPlan(flags: PlanFlags): Promise<PlanRun> {
  if (flags.system !== undefined || flags.compare !== undefined) {
    throw new UsageError(
      'plan searches the systems itself: choose what it considers with --families, not --system or --compare',
    );
  }
  const attainment = attainmentOf(flags.attainment);
  await checkReportPath(flags.report);
  const families = parseFamilies(flags.families ?? DEFAULT_FAMILIES);
  const { options } = systemsFromFlags(flags);
  const workload = transformWorkload(await baseWorkload(flags), flags);
  // The bar counts simulations; the planned total grows when a search needs more replicas than its first bound.
  const bar = flags.json ? null : progressBar('planning', 'simulations');
  const started = performance.now();
  try {
    const result = await planInThreads(workload, {
      sim: options,
      families,
      attainment,
      ...(bar ? { onProgress: (done: number, planned: number) => bar.update(done, planned) } : {}),
    });
    return { workload, result, wallSeconds: (performance.now() - started) / 1000 };
  } finally {
    bar?.stop();
  }
}

/** The `--json` document: {"cheapest": [...], "frontier": [...]} first, then the rest of the plan. */
export function planJson(run: PlanRun): Record<string, unknown> {
  const r = run.result;
  return jsonSafe({
    cheapest: r.cheapest,
    frontier: r.frontier,
    verdict: r.verdict,
    model: r.model,
    workload: { source: run.workload.source, requests: run.workload.requests.length },
    slo: r.slo,
    attainment: r.attainment,
    rankedBy: r.rankedBy,
    infeasible: r.infeasible,
    bands: r.bands,
    verdictFlipsInBand: r.verdictFlipsInBand,
    cs3BreakEven: r.cs3BreakEven,
    alternatives: r.alternatives,
    simulations: r.simulations,
    wallSeconds: Math.round(run.wallSeconds * 10) / 10,
    notes: r.notes,
  });
}

const ms = (v: number | null): string =>
  v === null ? '-' : v === Infinity ? REJECTED : v >= 100 ? v.toFixed(0) : v.toFixed(2);
const two = (p: { p50: number | null; p99: number | null }): string => `${ms(p.p50)} / ${ms(p.p99)}`;
export const dollars = (e: PlanEntry): string =>
  e.dollarsPerHour !== null
    ? `$${e.dollarsPerHour.toFixed(2)}`
    : `${e.cs3Systems} CS-3${e.otherDollarsPerHour > 0 ? ` + $${e.otherDollarsPerHour.toFixed(2)}` : ''} (no CS-3 price)`;

/** The tables stdout prints (the report shows the same). */
export function planTables(r: PlanResult): {
  cheapest: { header: string[]; rows: string[][] };
  frontier: { header: string[]; rows: string[][] };
} {
  const header = [
    'family',
    'system (disagg simulate --system)',
    'USD/h',
    'SLO attainment',
    'TTFT ms p50 / p99',
    'TPOT ms p50 / p99',
    'e2e ms p50 / p99',
    'rejected',
  ];
  const row = (e: PlanEntry): string[] => [
    e.family,
    e.spec,
    dollars(e),
    `${(e.sloAttainment * 100).toFixed(1)}%`,
    two(e.ttftMs),
    two(e.tpotMs),
    two(e.e2eMs),
    String(e.rejected),
  ];
  return {
    cheapest: {
      header,
      rows: [
        ...r.cheapest.map(row),
        ...r.infeasible.map((m) => [m.family, 'none meets the SLO', '-', '-', '-', '-', '-', '-']),
      ],
    },
    frontier: {
      header: ['system', 'USD/h', 'e2e ms p99', 'SLO attainment'],
      rows: r.frontier.map((e) => [e.spec, dollars(e), ms(e.e2eMs.p99), `${(e.sloAttainment * 100).toFixed(1)}%`]),
    },
  };
}

/** The lines about the error band: each end's winner, and whether the verdict flips inside the band. */
export function bandLines(r: PlanResult): string[] {
  if (r.bands.length === 0) return ['error band: not run (a --band other than mid was given)'];
  const lines = r.bands.map(
    (b) =>
      `at the ${b.band} end of the error band: cheapest priced ${b.winner ?? 'none'}; ` +
      b.cheapest.map((c) => `${c.family} ${c.spec ?? 'none'} (${c.rankKey})`).join(', '),
  );
  lines.push(
    r.verdictFlipsInBand
      ? 'the verdict FLIPS inside the error band: the cheapest family depends on where in the band the devices really are'
      : 'the verdict holds at both ends of the error band',
  );
  return lines;
}

export function planText(run: PlanRun): string {
  const r = run.result;
  const { cheapest, frontier } = planTables(r);
  const render = (t: { header: string[]; rows: string[][] }): string => {
    const table = plainTable(t.header);
    for (const row of t.rows) table.push(row);
    return table.toString();
  };
  const title =
    `${r.model}, ${run.workload.requests.length} requests (${run.workload.source}); virtual time, emulated devices\n` +
    `target: ${(r.attainment * 100).toFixed(0)}% of requests with TTFT <= ${r.slo.ttftMs} ms and TPOT <= ${r.slo.tpotMs} ms (rejections count as misses)`;
  return [
    title,
    r.verdict,
    'cheapest system of each family meeting the target:',
    render(cheapest),
    ...r.infeasible.map((m) => `${m.family}: ${m.reason}`),
    ...r.alternatives.map((a) => `${a.family} (single device): ${a.reason}`),
    ...bandLines(r),
    'cost against p99 end-to-end: systems meeting the target that no cheaper one beats on p99 e2e:',
    frontier.rows.length > 0 ? render(frontier) : '(no priced system meets the target)',
    ...r.notes,
    `${r.simulations} simulations in ${run.wallSeconds.toFixed(1)} s measured wall time (ranked by ${r.rankedBy})`,
  ].join('\n');
}
