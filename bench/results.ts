/**
 * Benchmark results: one row per figure. A row measured against a floor carries the ratio per
 * interleaved block (median, min, max), so its spread is in the table beside it; its target, when it
 * has one, is checked on the figure it names (the median, or every block).
 */

export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** How many blocks (or fresh processes, or rounds) the spread is over. */
  readonly n: number;
}

export interface BenchRow {
  readonly section: string;
  readonly metric: string;
  /** The figure (for ratio rows, the median ratio). */
  readonly value: number;
  readonly unit: string;
  /** Per-block spread of `value`, when it was measured in blocks. */
  readonly spread?: Spread;
  /** What `value` is a ratio to, e.g. "bare node:http JSON round trip, CPU per request". */
  readonly floor?: string;
  /** Human-readable target, e.g. "<= 10x"; empty when there is none. */
  readonly target: string;
  /** null when the row has no target. */
  readonly pass: boolean | null;
  readonly note?: string;
}

export interface BenchResults {
  readonly startedAt: string;
  readonly durationS?: number;
  /** Wall seconds per section, measured. */
  readonly sectionsS?: Readonly<Record<string, number>>;
  readonly machine: {
    readonly cpus: number;
    readonly model: string;
    readonly node: string;
    readonly platform: string;
    readonly arch?: string;
    /** os.loadavg() (1, 5, 15 min): the machine may be shared, and load inflates every wall time here. */
    readonly loadAverageAtStart?: number[];
    loadAverageAtEnd?: number[];
  };
  /** What the run could not measure here, and why (a missing redis-server, the traces not beside the clone). */
  readonly skipped?: string[];
  readonly rows: BenchRow[];
}

/** Figures to three significant digits (integers past 100), so tables stay readable. */
export const fmt = (v: number): string =>
  !Number.isFinite(v)
    ? String(v)
    : Math.abs(v) >= 100
      ? v.toFixed(0)
      : Math.abs(v) >= 10
        ? v.toFixed(1)
        : Math.abs(v) >= 1
          ? v.toFixed(2)
          : v.toPrecision(3);

export function markdownTable(results: BenchResults): string {
  const m = results.machine;
  const lines = [
    `Measured ${results.startedAt} on ${m.cpus} x ${m.model} (${m.platform} ${m.arch ?? ''}), Node ${m.node}` +
      `${results.durationS ? `, in ${results.durationS.toFixed(0)} s` : ''}. Wall-clock (measured) time; ` +
      'ratios are to floors measured in the same run, as median [min, max] over interleaved blocks.' +
      loadNote(m),
    '',
    '| section | metric | value | ratio to floor, median [min, max] | target | result | note |',
    '| --- | --- | ---: | --- | --- | --- | --- |',
  ];
  for (const r of results.rows) {
    const result = r.pass === null ? '' : r.pass ? 'met' : '**missed**';
    const spread = r.spread ? `${fmt(r.spread.median)} [${fmt(r.spread.min)}, ${fmt(r.spread.max)}] (n ${r.spread.n})` : '';
    const ratio = r.floor ? `${spread} to ${r.floor}` : spread;
    lines.push(
      `| ${r.section} | ${r.metric} | ${fmt(r.value)} ${r.unit} | ${ratio} | ${r.target} | ${result} | ${r.note ?? ''} |`,
    );
  }
  if (results.skipped && results.skipped.length > 0) {
    lines.push('', `Not measured in this run: ${results.skipped.join('; ')}.`);
  }
  return lines.join('\n');
}

/**
 * The rows that carry a target, as the README quotes them: figure, spread, target, result. The full
 * table, notes included, is bench/results.md.
 */
export function targetsTable(results: BenchResults): string {
  const lines = [
    '| figure | value, median [min, max] | target | result |',
    '| --- | --- | --- | --- |',
  ];
  for (const r of results.rows) {
    if (r.target === '') continue;
    const result = r.pass === null ? 'not judged' : r.pass ? 'met' : '**missed**';
    const spread = r.spread ? ` [${fmt(r.spread.min)}, ${fmt(r.spread.max)}]` : '';
    const floor = r.floor ? ` of ${r.floor}` : '';
    lines.push(`| ${r.section}: ${r.metric} | ${fmt(r.value)} ${r.unit}${spread}${floor} | ${r.target} | ${result} |`);
  }
  const m = results.machine;
  lines.push(
    '',
    `From the run of ${results.startedAt.slice(0, 10)} on ${m.cpus} x ${m.model}, load average ` +
      `${m.loadAverageAtStart?.[0] ?? '?'} at the start and ${m.loadAverageAtEnd?.[0] ?? '?'} at the end.`,
  );
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

export function spreadOf(samples: readonly number[]): Spread {
  return { median: median(samples), min: Math.min(...samples), max: Math.max(...samples), n: samples.length };
}

/** A row whose figure is the median of per-block ratios, with their spread. */
export function ratioRow(
  base: Omit<BenchRow, 'value' | 'unit' | 'spread' | 'pass' | 'target'>,
  ratios: readonly number[],
  target?: { readonly text: string; readonly ok: (s: Spread) => boolean },
): BenchRow {
  const spread = spreadOf(ratios);
  return {
    ...base,
    value: spread.median,
    unit: 'x',
    spread,
    target: target?.text ?? '',
    pass: target ? target.ok(spread) : null,
  };
}
