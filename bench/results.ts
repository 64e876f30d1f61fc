/** Benchmark results: one row per measurement, written to bench/results.json and a markdown table. */

export interface BenchRow {
  readonly section: string;
  readonly metric: string;
  readonly value: number;
  readonly unit: string;
  /** Human-readable target, e.g. "<= 2 ms"; empty when there is none. */
  readonly target: string;
  /** null when the row has no target. */
  readonly pass: boolean | null;
  readonly note?: string;
}

export interface BenchResults {
  readonly startedAt: string;
  readonly machine: {
    readonly cpus: number;
    readonly model: string;
    readonly node: string;
    readonly platform: string;
    /** os.loadavg() (1, 5, 15 min): the machine may be shared, and load inflates every wall time here. */
    readonly loadAverageAtStart?: number[];
    loadAverageAtEnd?: number[];
  };
  readonly rows: BenchRow[];
}

const fmt = (v: number): string =>
  Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3);

export function markdownTable(results: BenchResults): string {
  const lines = [
    `Measured ${results.startedAt} on ${results.machine.cpus} x ${results.machine.model}, Node ${results.machine.node}. Wall-clock (measured) time; ratios are from this one run.` +
      loadNote(results.machine),
    '',
    '| section | metric | value | target | result | note |',
    '| --- | --- | ---: | --- | --- | --- |',
  ];
  for (const r of results.rows) {
    const result = r.pass === null ? '' : r.pass ? 'met' : '**missed**';
    lines.push(`| ${r.section} | ${r.metric} | ${fmt(r.value)} ${r.unit} | ${r.target} | ${result} | ${r.note ?? ''} |`);
  }
  return lines.join('\n');
}

function loadNote(machine: BenchResults['machine']): string {
  const fmtLoad = (l: number[] | undefined): string => (l ? l.join(' / ') : '?');
  return machine.loadAverageAtStart
    ? ` Load average (1 / 5 / 15 min) ${fmtLoad(machine.loadAverageAtStart)} at the start, ${fmtLoad(machine.loadAverageAtEnd)} at the end, on ${machine.cpus} CPUs.`
    : '';
}

/** p-th percentile (0..100) of samples, nearest rank. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export function median(samples: readonly number[]): number {
  return percentile(samples, 50);
}
