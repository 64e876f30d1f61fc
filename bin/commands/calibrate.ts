import { plainTable } from './table';
import {
  CALIBRATION_TOLERANCE,
  calibrationTable,
  describeFreeFactors,
  fitEfficiency,
  FITTED_EFFICIENCY,
  formatPool,
  type CalibrationRow,
} from '../../lib/core/emulator';

const value = (v: number): string => (v >= 1000 ? v.toFixed(0) : v >= 100 ? v.toFixed(1) : v.toFixed(2));
const unit: Record<string, string> = { ttftMs: 'ms', prefillMs: 'ms', decodeStepMs: 'ms', tokensPerSecond: 'tok/s' };

export function calibrationJson(rows: readonly CalibrationRow[]): unknown {
  return {
    tolerance: CALIBRATION_TOLERANCE,
    points: rows.map((r) => ({
      id: r.point.id,
      point: r.point.label,
      pool: formatPool(r.point.pool),
      source: r.point.source,
      metric: r.point.metric,
      role: r.point.role,
      measured: r.point.measured,
      emulated: Number(r.emulated.toFixed(3)),
      errorPercent: Number((r.error * 100).toFixed(2)),
    })),
    factors: describeFreeFactors(FITTED_EFFICIENCY),
  };
}

/** The calibration table as markdown, for the README and docs (same rows as the terminal table). */
export function calibrationMarkdown(rows: readonly CalibrationRow[]): string {
  const lines = ['| point | source | measured | emulated | error | role |', '| --- | --- | ---: | ---: | ---: | --- |'];
  for (const r of rows) {
    const u = unit[r.point.metric];
    lines.push(
      `| ${r.point.label} | ${r.point.source} | ${value(r.point.measured)} ${u} | ${value(r.emulated)} ${u} | ${(r.error * 100).toFixed(1)}% | ${r.point.role} |`,
    );
  }
  return lines.join('\n');
}

export function calibrationText(rows: readonly CalibrationRow[]): string {
  const table = plainTable(['point', 'source', 'measured', 'emulated', 'error %', 'role'], {
    colWidths: [44, 48, 12, 12, 9, 7],
    wordWrap: true,
  });
  for (const r of rows) {
    const u = unit[r.point.metric];
    table.push([
      r.point.label,
      r.point.source,
      `${value(r.point.measured)} ${u}`,
      `${value(r.emulated)} ${u}`,
      (r.error * 100).toFixed(1),
      r.point.role,
    ]);
  }
  const worst = Math.max(...rows.map((r) => Math.abs(r.error)));
  const verdict = worst <= CALIBRATION_TOLERANCE ? 'all within' : 'NOT all within';
  return `${table.toString()}\nWorst error ${(worst * 100).toFixed(1)}%: ${verdict} ${CALIBRATION_TOLERANCE * 100}%.`;
}

export function refitText(): string {
  const { efficiency, loss } = fitEfficiency();
  const lines = describeFreeFactors(efficiency).map((f) => `  ${f.name.padEnd(36)} ${f.value.toPrecision(4)}`);
  return [
    `Refitted factors (sum of squared log errors ${loss.toExponential(2)}):`,
    ...lines,
    '',
    calibrationText(calibrationTable(efficiency)),
  ].join('\n');
}

export { calibrationTable };
