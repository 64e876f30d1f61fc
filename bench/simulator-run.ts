/**
 * One simulator timing, run by bench/simulator.ts in a fresh process so peak RSS is this run's: loads a trace
 * file, simulates it on one system, then times a fixed CPU floor in the same process (the JavaScript CRC-32C
 * over 32 MB), so the simulator's speed can be compared across runs and machines as a ratio. Prints JSON.
 * Usage: simulator-run.ts <trace file | synthetic:REQUESTS:RATE> <system spec> [SOURCE ROOT]; `synthetic:1000000:5`
 * is a million Poisson arrivals at 5 req/s with the Azure 2023 conversation trace's lognormal lengths (seed 1).
 * SOURCE ROOT (default this checkout) is a source tree whose lib/ simulates: bench/simulator.ts passes an
 * earlier commit's tree there to time the baseline simulator beside this one; the floor is always this
 * checkout's, so both ratios share it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { crc32c } from '../lib/core/handoff/checksum';
import type * as TraceFiles from '../lib/adapters/trace-files';
import type * as Emulator from '../lib/core/emulator';
import type * as Sim from '../lib/core/sim';
import type { Workload } from '../lib/core/sim';

const [file, spec, sourceRoot] = process.argv.slice(2);
if (!file || !spec) {
  throw new Error('usage: simulator-run.ts <trace file | synthetic:REQUESTS:RATE> <system spec> [source root]');
}
const root = sourceRoot ?? fileURLToPath(new URL('..', import.meta.url));
// The same entry points in every tree since the baseline: a trace loader, a model, a spec parser, simulate.
const from = (path: string): string => pathToFileURL(join(root, path)).href;
const { loadTraceFile } = (await import(from('lib/adapters/trace-files.ts'))) as typeof TraceFiles;
const { getModel } = (await import(from('lib/core/emulator/index.ts'))) as typeof Emulator;
const { DEFAULT_OUTPUT_SIGMA, DEFAULT_PROMPT_SIGMA, parseSystemSpec, simulate, syntheticWorkload } = (await import(
  from('lib/core/sim/index.ts')
)) as typeof Sim;
const cpu = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const t0 = performance.now();
const c0 = cpu();
const synthetic = /^synthetic:(\d+):([\d.]+)$/.exec(file);
if (synthetic && typeof syntheticWorkload !== 'function') throw new Error(`${root} has no synthetic workload`);
const workload: Workload = synthetic
  ? syntheticWorkload({
      ratePerSecond: Number(synthetic[2]),
      promptTokens: { kind: 'lognormal', mean: 1000, sigma: DEFAULT_PROMPT_SIGMA },
      outputTokens: { kind: 'lognormal', mean: 200, sigma: DEFAULT_OUTPUT_SIGMA },
      requests: Number(synthetic[1]),
      seed: 1,
    })
  : (await loadTraceFile(file)).workload;
const t1 = performance.now();
// The findings' assumption for the CS-3's unpublished price; it only scales the cost metrics.
const result = simulate(workload, parseSystemSpec(spec), { model: getModel('llama-3.3-70b'), cs3PricePerHour: 100 });
const t2 = performance.now();
const c2 = cpu();
const floorBytes = new Uint8Array(32 * 1024 * 1024).fill(7);
// CPU time, not wall time, on both sides: another process taking the core slows the wall clock, not this.
let floorCpuMs = Infinity;
for (let i = 0; i < 3; i++) {
  const c = cpu();
  crc32c(floorBytes);
  floorCpuMs = Math.min(floorCpuMs, cpu() - c);
}
process.stdout.write(
  JSON.stringify({
    requests: workload.requests.length,
    completed: result.metrics.completed,
    loadMs: t1 - t0,
    simulateMs: t2 - t1,
    cpuMs: c2 - c0,
    floorCpuMs,
    maxRssKb: peakRssKb(),
  }),
);

/**
 * This process's own peak RSS: Linux's VmHWM, since getrusage's maxRSS can carry the spawning parent's peak
 * across fork and exec; elsewhere maxRSS.
 */
function peakRssKb(): number {
  try {
    const hwm = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (hwm) return Number(hwm[1]);
  } catch {
    // Not Linux.
  }
  return process.resourceUsage().maxRSS;
}
