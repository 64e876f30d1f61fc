/**
 * Simulator speed: each trace file (`--traces DIR`, default samples/) and a million synthetic requests, loaded
 * and simulated in a fresh Node process (bench/simulator-run.ts), so its peak RSS is that run's alone; median wall time of load + simulate over a few runs, and its CPU time as
 * a ratio to a fixed CPU floor timed in the same process; the simulator must stay within 10% of the baseline's.
 * The baseline is the simulator of commit BASELINE_COMMIT, timed in the same run when git has that commit, each
 * of its fresh processes beside one of this simulator's (after it, then before it, in turn), and compared pair by
 * pair on CPU; else the ratio recorded for it, compared with this simulator's ratio to the floor.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmt, median, ratioRow, type BenchRow } from './results';

const RUNS = 5;
/**
 * Fresh processes per side when the baseline simulator runs beside this one: the two medians are compared
 * within 10%, and one process's CPU floor can differ from the next by a third on a shared machine.
 */
const PAIRED_RUNS = 7;
/** Fresh processes for the million-request input (each takes seconds). */
const MILLION_RUNS = 3;
/** The simulator may get at most this much slower than its baseline. */
const SLOWDOWN_LIMIT = 1.1;
const MEMORY_TARGET_MB = 1024;

/**
 * CPU of load + simulate over the floor's CPU, median of fresh processes, measured on the simulator as it was
 * when this benchmark was rebuilt (BASELINE_NOTE) on the whole published traces, so later changes to the timing
 * model are held to it. The ratio is compared only when the whole trace is what ran (`--traces DIR`).
 */
const AZURE_BASELINE = 11.6;
const MOONCAKE_BASELINE = 11.9;
const BASELINE_NOTE = 'median of 12 fresh processes, 2026-12-01, simulator of commit c5ecc26, load average 7 on 2 CPUs';
/** The simulator the baseline ratios were recorded on; its tree is timed beside this one when git has it. */
const BASELINE_COMMIT = 'c5ecc26';

/**
 * The inputs: the two traces from `--traces DIR` (default the repository's samples/, the first rows of each; a
 * folder with the whole published files runs those), and a million synthetic requests, generated in the run
 * (Poisson, the Azure 2023 conversation trace's lognormal lengths), so the speed figure needs no file.
 */
interface BenchInput {
  readonly name: string;
  /** A file name pattern in the traces folder, or null for the synthetic input. */
  readonly pattern: RegExp | null;
  readonly spec: string;
  readonly targetS: number;
  /** The baseline ratio, for the whole published trace of this many requests. */
  readonly baseline?: { readonly ratio: number; readonly requests: number };
}

/**
 * A million requests took about 7 s before the timing model v2, and about 90 s of CPU after it (before the
 * step memo and the uninterrupted-step fast path); the target keeps it near the first figure.
 */
export const MILLION = 1_000_000;
export const MILLION_TARGET_S = 10;

const INPUTS: readonly BenchInput[] = [
  {
    name: 'Azure conversation',
    pattern: /^azure.*conv.*\.csv$/i,
    spec: 'disagg:trn2x16*2+cs3x8*1',
    targetS: 3,
    baseline: { ratio: AZURE_BASELINE, requests: 19_366 },
  },
  {
    name: 'Mooncake conversation',
    pattern: /^mooncake.*conversation.*\.jsonl$/i,
    spec: 'disagg:trn2x16*7+cs3x8*1',
    targetS: 5,
    baseline: { ratio: MOONCAKE_BASELINE, requests: 12_031 },
  },
  {
    name: 'synthetic, Poisson 5 req/s, lognormal 1000/200 tokens',
    pattern: null,
    spec: 'disagg:trn2x16*2+cs3x8*1',
    targetS: MILLION_TARGET_S,
  },
];

/** The whole published file when the folder has it and a sample, else the sample. */
function traceIn(dir: string, pattern: RegExp): string | null {
  const names = existsSync(dir) ? readdirSync(dir).filter((n) => pattern.test(n)) : [];
  const name = names.find((n) => !n.includes('sample')) ?? names.sort()[0];
  return name === undefined ? null : join(dir, name);
}

interface Run {
  readonly requests: number;
  readonly completed: number;
  readonly loadMs: number;
  readonly simulateMs: number;
  /** CPU ms of load + simulate, and of the floor (the JavaScript CRC-32C over 32 MB, best of three). */
  readonly cpuMs: number;
  readonly floorCpuMs: number;
  readonly maxRssKb: number;
}

/**
 * BASELINE_COMMIT's source tree (its lib/, package.json and tsconfig.json from `git archive`) in a temporary
 * folder, running on this checkout's node_modules; or why it could not be had (no git, or not that commit).
 */
function baselineTree(): { readonly dir: string } | { readonly why: string } {
  const repo = fileURLToPath(new URL('..', import.meta.url));
  const git = (args: readonly string[]) => spawnSync('git', ['-C', repo, ...args], { maxBuffer: 1 << 30 });
  const found = git(['cat-file', '-e', `${BASELINE_COMMIT}^{commit}`]);
  if (found.error || found.status !== 0) {
    return { why: found.error ? 'git is not available' : `this clone has no commit ${BASELINE_COMMIT}` };
  }
  const tar = git(['archive', '--format=tar', BASELINE_COMMIT, 'lib', 'package.json', 'tsconfig.json']);
  if (tar.status !== 0) return { why: `git archive ${BASELINE_COMMIT} failed: ${String(tar.stderr).trim()}` };
  const dir = mkdtempSync(join(tmpdir(), 'disagg-sim-baseline-'));
  const archive = join(dir, 'tree.tar');
  writeFileSync(archive, tar.stdout);
  const untar = spawnSync('tar', ['-xf', archive, '-C', dir]);
  rmSync(archive);
  if (untar.error || untar.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    return { why: `tar could not unpack ${BASELINE_COMMIT}'s tree` };
  }
  symlinkSync(join(repo, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return { dir };
}

export function simulatorBench(
  progress: (line: string) => void,
  quick = false,
  tracesDir = fileURLToPath(new URL('../samples/', import.meta.url)),
): BenchRow[] {
  const runner = fileURLToPath(new URL('simulator-run.ts', import.meta.url));
  const rows: BenchRow[] = [];
  const spawnRun = (file: string, spec: string, root?: string): Run => {
    const res = spawnSync(process.execPath, ['--import', 'tsx', runner, file, spec, ...(root ? [root] : [])], {
      encoding: 'utf8',
      timeout: 600_000,
    });
    if (res.status !== 0) throw new Error(`simulator run failed: ${res.stderr || res.error?.message}`);
    return JSON.parse(res.stdout) as Run;
  };
  // Made only when a whole published trace is there, the one input the baseline is compared on.
  const baseline: { tree?: ReturnType<typeof baselineTree> } = {};
  try {
    for (const trace of INPUTS) {
      rows.push(...inputRows(trace));
    }
  } finally {
    if (baseline.tree && 'dir' in baseline.tree) rmSync(baseline.tree.dir, { recursive: true, force: true });
  }
  return rows;

  function inputRows(trace: BenchInput): BenchRow[] {
    const rows: BenchRow[] = [];
    const file = trace.pattern === null ? `synthetic:${MILLION}:5` : traceIn(tracesDir, trace.pattern);
    if (file === null) {
      progress(`simulator: no ${trace.name} trace in ${tracesDir}; its rows are skipped`);
      return rows;
    }
    let count = quick ? 2 : trace.pattern === null ? MILLION_RUNS : RUNS;
    const runs: Run[] = [spawnRun(file, trace.spec)];
    // The baseline ratio was measured on the whole published trace: compared only when that is what ran.
    const whole = trace.baseline !== undefined && trace.baseline.requests === runs[0]!.requests;
    if (whole) baseline.tree ??= baselineTree();
    const tree = whole ? baseline.tree : undefined;
    const baselineDir = tree && 'dir' in tree ? tree.dir : null;
    if (baselineDir && !quick) count = PAIRED_RUNS;
    progress(
      `simulator: ${trace.name}, ${count} fresh processes${baselineDir ? `, each paired with one of ${BASELINE_COMMIT}'s simulator` : ''}`,
    );
    const baselineRuns: Run[] = [];
    for (let i = 0; i < count; i++) {
      // Interleaved, so a change in the machine's load falls on both sides alike; after the first pair the
      // baseline goes first every other pair (this, baseline; baseline, this; ...), so neither side is always second.
      const baselineFirst = baselineDir !== null && i % 2 === 1;
      if (baselineFirst) baselineRuns.push(spawnRun(file, trace.spec, baselineDir));
      if (i > 0) runs.push(spawnRun(file, trace.spec));
      if (baselineDir && !baselineFirst) baselineRuns.push(spawnRun(file, trace.spec, baselineDir));
    }
    const wallS = median(runs.map((r) => r.loadMs + r.simulateMs)) / 1000;
    const rssMb = Math.max(...runs.map((r) => r.maxRssKb)) / 1024;
    const requests = runs[0]!.requests;
    const section = `simulator (${trace.name}, ${requests.toLocaleString('en-US')} requests)`;
    // The million-request target is on CPU time: on a shared machine another process stretches the wall clock.
    const cpuS = median(runs.map((r) => r.cpuMs)) / 1000;
    const synthetic = trace.pattern === null;
    const timed = synthetic ? cpuS : wallS;
    rows.push({
      section,
      metric: synthetic ? 'CPU time of generate + simulate' : 'load + simulate, whole file',
      value: timed,
      unit: 's',
      target: `< ${trace.targetS} s`,
      pass: timed < trace.targetS,
      note: `${trace.spec}; median of ${count} fresh processes${synthetic ? `, wall ${fmt(wallS)} s` : ''}: load ${median(runs.map((r) => r.loadMs)).toFixed(0)} ms, simulate ${median(runs.map((r) => r.simulateMs)).toFixed(0)} ms; ${runs[0]!.completed} completed`,
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
    const floor = 'the JavaScript CRC-32C over 32 MB, same process';
    const ratioOf = (r: Run): number => r.cpuMs / r.floorCpuMs;
    // The baseline: its simulator in this run when it ran (the verdict is then on the CPU of each pair of runs,
    // which needs no floor: the floor is for comparing across runs), else the ratio recorded for it.
    let compared: { readonly ratio: number; readonly note: string; readonly judged: boolean } | null = null;
    let pairedRow: BenchRow | null = null;
    if (baselineDir) {
      const measured = ratioRow(
        {
          section,
          metric: `CPU time of load + simulate, as a ratio: the baseline simulator (commit ${BASELINE_COMMIT})`,
          floor,
          note: `the same input and system on ${BASELINE_COMMIT}'s lib/ (this checkout's node_modules and floor), its ${count} fresh processes interleaved with this simulator's; recorded earlier: ${fmt(trace.baseline!.ratio)}x (${BASELINE_NOTE}); median CPU ${fmt(median(baselineRuns.map((r) => r.cpuMs)))} ms`,
        },
        baselineRuns.map(ratioOf),
      );
      rows.push(measured);
      // Each run's CPU over the baseline run beside it: the machine's load at that moment cancels, and
      // no floor's noise enters (one process's floor can differ from the next by a third on a shared machine).
      pairedRow = ratioRow(
        {
          section,
          metric: `CPU time of load + simulate over the baseline simulator's (commit ${BASELINE_COMMIT}), run by run`,
          floor: `the CPU of the ${BASELINE_COMMIT} run beside each`,
          note: `${count} pairs of fresh processes back to back (the baseline second, then first, in turn), on the same input and system; as ratios to the floor: ${fmt(median(runs.map(ratioOf)))}x against ${fmt(measured.value)}x`,
        },
        runs.map((r, k) => r.cpuMs / baselineRuns[k]!.cpuMs),
        {
          text: `<= ${fmt(SLOWDOWN_LIMIT)}x (baseline + 10%)`,
          ok: (spread) => spread.median <= SLOWDOWN_LIMIT,
        },
      );
      compared = {
        ratio: measured.value,
        note: `baseline ${fmt(measured.value)}x (commit ${BASELINE_COMMIT}'s simulator, interleaved in this run; judged run by run on CPU, the row below)`,
        judged: false,
      };
    } else if (whole) {
      const why = tree && 'why' in tree ? tree.why : 'not run';
      compared = {
        ratio: trace.baseline!.ratio,
        note: `baseline ${fmt(trace.baseline!.ratio)}x recorded (${BASELINE_NOTE}), since ${BASELINE_COMMIT}'s simulator could not run here: ${why}`,
        judged: true,
      };
    }
    rows.push(
      ratioRow(
        {
          section,
          metric: `CPU time of ${synthetic ? 'generate' : 'load'} + simulate, as a ratio`,
          floor,
          note: `${compared === null ? 'no baseline for this input' : compared.note}; median CPU ${fmt(median(runs.map((r) => r.cpuMs)))} ms`,
        },
        runs.map(ratioOf),
        compared === null || !compared.judged
          ? undefined
          : {
              text: `<= ${fmt(compared.ratio * SLOWDOWN_LIMIT)}x (baseline + 10%)`,
              ok: (s) => s.median <= compared.ratio * SLOWDOWN_LIMIT,
            },
      ),
    );
    if (pairedRow) rows.push(pairedRow);
    return rows;
  }
}
