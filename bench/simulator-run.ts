/**
 * One simulator timing, run by bench/simulator.ts in a fresh process so peak RSS is this run's: loads a trace
 * file, simulates it on one system, then times a fixed CPU floor in the same process (the JavaScript CRC-32C
 * over 32 MB), so the simulator's speed can be compared across runs and machines as a ratio. Prints JSON.
 * Usage: simulator-run.ts <trace file | synthetic:REQUESTS:RATE> <system spec>; `synthetic:1000000:5` is a
 * million Poisson arrivals at 5 req/s with the Azure 2023 conversation trace's lognormal lengths (seed 1).
 */
import { readFileSync } from 'node:fs';
import { crc32c } from '../lib/core/handoff/checksum';
import { loadTraceFile } from '../lib/adapters/trace-files';
import { getModel } from '../lib/core/emulator';
import {
  DEFAULT_OUTPUT_SIGMA,
  DEFAULT_PROMPT_SIGMA,
  parseSystemSpec,
  simulate,
  syntheticWorkload,
  type Workload,
} from '../lib/core/sim';

const [file, spec] = process.argv.slice(2);
if (!file || !spec) throw new Error('usage: simulator-run.ts <trace file | synthetic:REQUESTS:RATE> <system spec>');
const cpu = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const t0 = performance.now();
const c0 = cpu();
const synthetic = /^synthetic:(\d+):([\d.]+)$/.exec(file);
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
