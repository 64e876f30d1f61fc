/**
 * The pure parts of `npm run findings` (scripts/findings.ts): matching colocated systems to the
 * disaggregated one's hourly price, latency and goodput ratios, and the markdown they are written as.
 */
import type { SystemMetrics } from './metrics';

/**
 * Replicas of a system priced `perReplicaPerHour` whose total is closest to `targetPerHour` (ties go
 * to the cheaper count); at least one.
 */
export function closestReplicas(targetPerHour: number, perReplicaPerHour: number): number {
  if (!(targetPerHour > 0) || !(perReplicaPerHour > 0)) {
    throw new RangeError(`prices must be positive, got ${targetPerHour} and ${perReplicaPerHour}`);
  }
  const below = Math.max(1, Math.floor(targetPerHour / perReplicaPerHour));
  const above = below + 1;
  return Math.abs(above * perReplicaPerHour - targetPerHour) < Math.abs(targetPerHour - below * perReplicaPerHour)
    ? above
    : below;
}

/**
 * Prefill replicas that keep their utilisation at or below `target` given the prefill work (busy ms
 * on one replica) arriving over `spanMs`; at least one.
 */
export function replicasForUtilisation(busyMs: number, spanMs: number, target: number): number {
  if (!(spanMs > 0) || !(target > 0 && target <= 1) || !(busyMs >= 0)) {
    throw new RangeError(`need busyMs >= 0, spanMs > 0 and target in (0, 1], got ${busyMs}, ${spanMs}, ${target}`);
  }
  return Math.max(1, Math.ceil(busyMs / (spanMs * target) - 1e-9));
}

/** a / b, or null when either is missing or b is 0. */
export function ratio(a: number | null, b: number | null): number | null {
  if (a === null || b === null || b === 0 || !Number.isFinite(a) || !Number.isFinite(b)) return null;
  return a / b;
}

/** The metrics the ratios use. */
export type RatioMetrics = Pick<SystemMetrics, 'ttftMs' | 'tpotMs' | 'e2eMs' | 'goodputRps'>;

/** Disaggregated over colocated: below 1 is faster for latencies, above 1 is more goodput. */
export interface Ratios {
  readonly ttftP50: number | null;
  readonly tpotP50: number | null;
  readonly e2eP50: number | null;
  readonly e2eP99: number | null;
  readonly goodput: number | null;
}

export function ratios(disagg: RatioMetrics, colocated: RatioMetrics): Ratios {
  return {
    ttftP50: ratio(disagg.ttftMs.p50, colocated.ttftMs.p50),
    tpotP50: ratio(disagg.tpotMs.p50, colocated.tpotMs.p50),
    e2eP50: ratio(disagg.e2eMs.p50, colocated.e2eMs.p50),
    e2eP99: ratio(disagg.e2eMs.p99, colocated.e2eMs.p99),
    goodput: ratio(disagg.goodputRps, colocated.goodputRps),
  };
}

/** The claimed speedup the findings test: "about 5x faster inference". */
export const CLAIMED_SPEEDUP = 5;

/** Latency metrics (median) on which disaggregation is at least `factor` times faster. */
export function speedupsHeld(r: Ratios, factor = CLAIMED_SPEEDUP): string[] {
  const held: string[] = [];
  for (const [name, value] of [
    ['TTFT', r.ttftP50],
    ['TPOT', r.tpotP50],
    ['e2e', r.e2eP50],
  ] as const) {
    if (value !== null && value > 0 && 1 / value >= factor) held.push(name);
  }
  return held;
}

/** "0.18 (5.6x faster)" for a latency ratio; "1.02" for goodput; "-" when unknown. */
export function formatRatio(value: number | null, kind: 'latency' | 'goodput'): string {
  if (value === null) return '-';
  const r = value.toFixed(2);
  if (kind === 'goodput' || value <= 0) return r;
  return value < 1 ? `${r} (${(1 / value).toFixed(1)}x faster)` : `${r} (${value.toFixed(1)}x slower)`;
}

/** A GitHub-flavoured markdown table; pipes in cells are escaped. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const cell = (s: string): string => s.replace(/\|/g, '\\|');
  const line = (cells: readonly string[]): string => `| ${cells.map(cell).join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

export const RATIO_HEADER = [
  'workload',
  'colocated system',
  'TTFT p50',
  'TPOT p50',
  'e2e p50',
  'e2e p99',
  'goodput',
  `>= ${CLAIMED_SPEEDUP}x on`,
] as const;

/** One row of the ratio table (disaggregated / colocated). */
export function ratioRow(workload: string, colocated: string, r: Ratios): string[] {
  const held = speedupsHeld(r);
  return [
    workload,
    colocated,
    formatRatio(r.ttftP50, 'latency'),
    formatRatio(r.tpotP50, 'latency'),
    formatRatio(r.e2eP50, 'latency'),
    formatRatio(r.e2eP99, 'latency'),
    formatRatio(r.goodput, 'goodput'),
    held.length > 0 ? held.join(', ') : 'none',
  ];
}
