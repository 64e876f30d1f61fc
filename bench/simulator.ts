/**
 * Simulator speed: each whole trace loaded and simulated in a fresh Node process (bench/simulator-run.ts), so
 * its peak RSS is that run's alone; median wall time of load + simulate over a few runs.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { median, type BenchRow } from './results';

const RUNS = 3;
const MEMORY_TARGET_MB = 1024;

/** The shared traces sit beside the repository (see DESIGN.md); the systems are the findings' cost-matched ones. */
const TRACES = [
  {
    name: 'Azure conversation',
    file: '../../shared/traces/azure-llm-2023-conv.csv',
    spec: 'disagg:trn2x16*2+cs3x8*1',
    targetS: 3,
  },
  {
    name: 'Mooncake conversation',
    file: '../../shared/traces/mooncake-fast25-conversation.jsonl',
    spec: 'disagg:trn2x16*7+cs3x8*1',
    targetS: 5,
  },
] as const;

interface Run {
  readonly requests: number;
  readonly completed: number;
  readonly loadMs: number;
  readonly simulateMs: number;
  readonly maxRssKb: number;
}

export function simulatorBench(progress: (line: string) => void): BenchRow[] {
  const runner = fileURLToPath(new URL('simulator-run.ts', import.meta.url));
  const rows: BenchRow[] = [];
  for (const trace of TRACES) {
    const file = fileURLToPath(new URL(trace.file, import.meta.url));
    if (!existsSync(file)) {
      progress(`simulator: ${trace.name} trace not found beside the repository; its rows are skipped`);
      continue;
    }
    progress(`simulator: ${trace.name} trace, ${RUNS} fresh processes`);
    const runs: Run[] = [];
    for (let i = 0; i < RUNS; i++) {
      const res = spawnSync(process.execPath, ['--import', 'tsx', runner, file, trace.spec], {
        encoding: 'utf8',
        timeout: 120_000,
      });
      if (res.status !== 0) throw new Error(`simulator run failed: ${res.stderr || res.error?.message}`);
      runs.push(JSON.parse(res.stdout) as Run);
    }
    const wallS = median(runs.map((r) => r.loadMs + r.simulateMs)) / 1000;
    const rssMb = Math.max(...runs.map((r) => r.maxRssKb)) / 1024;
    const section = `simulator (${trace.name}, ${runs[0]!.requests.toLocaleString('en-US')} requests)`;
    rows.push({
      section,
      metric: 'load + simulate, whole trace',
      value: wallS,
      unit: 's',
      target: `< ${trace.targetS} s`,
      pass: wallS < trace.targetS,
      note: `${trace.spec}; median of ${RUNS} fresh processes: load ${median(runs.map((r) => r.loadMs)).toFixed(0)} ms, simulate ${median(runs.map((r) => r.simulateMs)).toFixed(0)} ms; ${runs[0]!.completed} completed`,
    });
    rows.push({
      section,
      metric: 'peak RSS',
      value: rssMb,
      unit: 'MiB',
      target: `< ${MEMORY_TARGET_MB} MiB`,
      pass: rssMb < MEMORY_TARGET_MB,
      note: 'the whole process (VmHWM: Node and the tsx loader included), highest of the runs',
    });
  }
  return rows;
}
