/**
 * `disagg simulate`: replay a workload through one or more systems on a virtual clock and compare
 * them. The workload and system flags are shared with `disagg sweep`.
 */
import { DEFAULT_COMPARE, DEFAULT_SYSTEM } from './constants';
import { SingleBar } from 'cli-progress';
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { loadTraceFile } from '../../lib/adapters/trace-files';
import { getLink, getModel } from '../../lib/core/emulator';
import { ENGINE_DEFAULTS } from '../../lib/core/engine/config';
import { isQueueDiscipline, QUEUE_DISCIPLINES, type QueueDiscipline } from '../../lib/core/engine/routing';
import {
  agentWorkload,
  DEFAULT_OUTPUT_SIGMA,
  DEFAULT_PROMPT_SIGMA,
  DEFAULT_SLO,
  jsonSafe,
  limit,
  MAX_AGENT_REQUESTS,
  MAX_DECODE_BATCH,
  parseSystemSpec,
  rateScale,
  REJECTED,
  simulate,
  syntheticWorkload,
  TraceError,
  WorkloadError,
  type LengthDistribution,
  type SimOptions,
  type SimResult,
  type SystemMetrics,
  type SystemSpec,
  type Workload,
} from '../../lib/core/sim';
import { computeFromFlags, type ComputeFlags } from './compute-flags';
import { parseCount, UsageError } from './errors';
import { plainTable } from './table';

/** Flags as commander hands them over (strings; booleans for switches). */
export interface WorkloadFlags {
  trace?: string;
  skipBadLines?: boolean;
  synthetic?: string | boolean;
  rate?: string;
  promptMean?: string;
  outputMean?: string;
  requests?: string;
  durationS?: string;
  lognormal?: boolean;
  promptSigma?: string;
  outputSigma?: string;
  agents?: string;
  turns?: string;
  toolTokens?: string;
  thinkMs?: string;
  rateScale?: string;
  limit?: string;
  seed: string;
}

export interface SystemFlags extends ComputeFlags {
  model: string;
  /** Default DEFAULT_SYSTEM, compared with DEFAULT_COMPARE. */
  system?: string;
  compare?: string[];
  link?: string;
  prefixCache: boolean;
  colocateBelow?: string;
  decodeBatch?: string;
  maxDecodeBatch?: string;
  routing?: string;
  chunkTokens?: string;
  maxTokens?: string;
  maxPrefillQueue?: string;
  maxDecodeQueue?: string;
  fitContext?: string;
  cs3PricePerHour?: string;
  sloTtftMs?: string;
  sloTpotMs?: string;
}

export interface SimulateFlags extends WorkloadFlags, SystemFlags {
  json?: boolean;
  /** Also write an HTML report to this file. */
  report?: string;
}

/** Synthetic defaults: the Azure 2023 conversation trace's averages (about 1k-token prompts, 200-token answers). */
export const SYNTHETIC_DEFAULTS = { promptMean: 1000, outputMean: 200, requests: 2000 } as const;
/** Agent defaults: a coding-agent-like loop (a 2k-token system prompt and task, 300-token tool results). */
export const AGENT_DEFAULTS = { turns: 10, toolTokens: 300, thinkMs: 2000, promptMean: 2000, outputMean: 200 } as const;

function positiveNumber(flag: string, value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) {
    throw new UsageError(`${flag} must be a positive number, got "${value}"`);
  }
  return n;
}

function nonNegativeNumber(flag: string, value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) {
    throw new UsageError(`${flag} must be a number of at least 0, got "${value}"`);
  }
  return n;
}

/** What kind of workload the flags ask for; exactly one of --trace, --synthetic, --agents. */
export function workloadKind(flags: WorkloadFlags): 'trace' | 'synthetic' | 'agents' {
  const kinds = [
    flags.trace !== undefined && 'trace',
    flags.synthetic !== undefined && 'synthetic',
    flags.agents !== undefined && 'agents',
  ].filter((k): k is 'trace' | 'synthetic' | 'agents' => k !== false);
  if (kinds.length !== 1) {
    throw new UsageError('give exactly one workload: --trace FILE, --synthetic [RATE[:PROMPT[:OUTPUT]]] or --agents N');
  }
  return kinds[0] as 'trace' | 'synthetic' | 'agents';
}

function lengths(flags: WorkloadFlags, defaults: { promptMean: number; outputMean: number }, shorthand: string[]) {
  const promptMean = flags.promptMean ?? shorthand[1];
  const outputMean = flags.outputMean ?? shorthand[2];
  const prompt =
    promptMean === undefined ? defaults.promptMean : parseCount('--prompt-mean', promptMean, 1, 10_000_000);
  const output =
    outputMean === undefined ? defaults.outputMean : parseCount('--output-mean', outputMean, 1, 10_000_000);
  const dist = (mean: number, sigmaFlag: string | undefined, fallback: number, flag: string): LengthDistribution =>
    flags.lognormal
      ? { kind: 'lognormal', mean, sigma: sigmaFlag === undefined ? fallback : nonNegativeNumber(flag, sigmaFlag) }
      : { kind: 'fixed', tokens: mean };
  return {
    prompt: dist(prompt, flags.promptSigma, DEFAULT_PROMPT_SIGMA, '--prompt-sigma'),
    output: dist(output, flags.outputSigma, DEFAULT_OUTPUT_SIGMA, '--output-sigma'),
  };
}

/** Builds the workload, before --rate-scale and --limit. `rateOverride` is a sweep step's rate. */
export async function baseWorkload(flags: WorkloadFlags, rateOverride?: number): Promise<Workload> {
  const seed = parseCount('--seed', flags.seed, 0, 2 ** 32 - 1);
  const kind = workloadKind(flags);
  try {
    if (kind === 'trace') {
      const parsed = await loadTraceFile(flags.trace as string, { skipBadLines: flags.skipBadLines === true });
      if (parsed.skippedCount > 0) {
        const listed = parsed.skipped.map((p) => `\n  line ${p.line}: ${p.reason}`).join('');
        process.stderr.write(`disagg: skipped ${parsed.skippedCount} malformed lines in ${flags.trace}${listed}\n`);
      }
      return parsed.workload;
    }
    if (kind === 'synthetic') {
      const shorthand = typeof flags.synthetic === 'string' ? flags.synthetic.split(':') : [];
      const rateText = flags.rate ?? shorthand[0];
      if (rateOverride === undefined && rateText === undefined) {
        throw new UsageError('--synthetic needs a rate: --synthetic 5 or --synthetic --rate 5 (requests per second)');
      }
      const { prompt, output } = lengths(flags, SYNTHETIC_DEFAULTS, shorthand);
      const requests =
        flags.durationS === undefined
          ? parseCount('--requests', flags.requests ?? String(SYNTHETIC_DEFAULTS.requests), 1, 10_000_000)
          : undefined;
      return syntheticWorkload({
        ratePerSecond: rateOverride ?? positiveNumber('--rate', rateText as string),
        promptTokens: prompt,
        outputTokens: output,
        ...(requests !== undefined ? { requests } : {}),
        ...(flags.durationS !== undefined
          ? { durationMs: positiveNumber('--duration-s', flags.durationS) * 1000 }
          : {}),
        seed,
      });
    }
    const { prompt, output } = lengths(flags, AGENT_DEFAULTS, []);
    return agentWorkload({
      agents: parseCount('--agents', flags.agents as string, 1, MAX_AGENT_REQUESTS),
      turns: parseCount('--turns', flags.turns ?? String(AGENT_DEFAULTS.turns), 1, 100_000),
      initialPromptTokens: prompt,
      outputTokens: output,
      toolTokens: parseCount('--tool-tokens', flags.toolTokens ?? String(AGENT_DEFAULTS.toolTokens), 0, 10_000_000),
      thinkMs: nonNegativeNumber('--think-ms', flags.thinkMs ?? String(AGENT_DEFAULTS.thinkMs)),
      seed,
    });
  } catch (err) {
    if (err instanceof TraceError || err instanceof WorkloadError) throw new UsageError(err.message);
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EISDIR' || code === 'EACCES') {
      throw new UsageError(`cannot read trace ${flags.trace}: ${(err as Error).message}`);
    }
    throw err;
  }
}

/**
 * Checks that --report can be written, before any simulation runs: its folder exists and is writable, and
 * the path is not a folder nor a file that cannot be replaced. Throws a UsageError (exit 2) naming the path.
 */
export async function checkReportPath(file: string | undefined): Promise<void> {
  if (file === undefined) return;
  const fail = (why: string): never => {
    throw new UsageError(`cannot write the report to ${file}: ${why}`);
  };
  if (file.trim() === '') fail('the path is empty');
  const target = resolve(file);
  const existing = await stat(target).catch(() => null);
  if (existing?.isDirectory()) fail('it is a folder; give a file name such as report.html');
  const dir = dirname(target);
  const folder = await stat(dir).catch(() => null);
  if (!folder) fail(`the folder ${dirname(file)} does not exist`);
  if (!folder!.isDirectory()) fail(`${dirname(file)} is not a folder`);
  await access(existing ? target : dir, constants.W_OK).catch(() =>
    fail(existing ? 'the file is not writable' : `the folder ${dirname(file)} is not writable`),
  );
}

/** Applies --rate-scale (times `extraScale`, a sweep step) and --limit. */
export function transformWorkload(workload: Workload, flags: WorkloadFlags, extraScale = 1): Workload {
  const scale = (flags.rateScale === undefined ? 1 : positiveNumber('--rate-scale', flags.rateScale)) * extraScale;
  let out = rateScale(workload, scale);
  if (flags.limit !== undefined) out = limit(out, parseCount('--limit', flags.limit, 1, 100_000_000));
  return out;
}

export { DEFAULT_COMPARE, DEFAULT_SYSTEM };

export function systemsFromFlags(flags: SystemFlags): { specs: SystemSpec[]; options: SimOptions } {
  const compare = flags.compare ?? (flags.system === undefined ? DEFAULT_COMPARE : []);
  const specs = [flags.system ?? DEFAULT_SYSTEM, ...compare].map(parseSystemSpec);
  const model = getModel(flags.model);
  const count = (flag: string, value: string | undefined, min: number, max: number): number | undefined =>
    value === undefined ? undefined : parseCount(flag, value, min, max);
  const maxPrefillQueue = count('--max-prefill-queue', flags.maxPrefillQueue, 1, 1_000_000);
  const maxDecodeQueue = count('--max-decode-queue', flags.maxDecodeQueue, 1, 1_000_000);
  if (
    flags.decodeBatch !== undefined &&
    flags.maxDecodeBatch !== undefined &&
    flags.decodeBatch !== flags.maxDecodeBatch
  ) {
    throw new UsageError('--decode-batch and --max-decode-batch are the same setting: give one');
  }
  const decodeBatchMax =
    count('--max-decode-batch', flags.maxDecodeBatch, 1, MAX_DECODE_BATCH) ??
    count('--decode-batch', flags.decodeBatch, 1, MAX_DECODE_BATCH);
  if (flags.routing !== undefined && !isQueueDiscipline(flags.routing)) {
    throw new UsageError(`--routing must be one of ${QUEUE_DISCIPLINES.join(', ')}, got "${flags.routing}"`);
  }
  const chunkTokens = count('--chunk-tokens', flags.chunkTokens, 0, 1_000_000);
  const maxTokens = count('--max-tokens', flags.maxTokens, 1, model.maxContext - 1);
  const colocateAtOrBelowTokens = count('--colocate-below', flags.colocateBelow, 0, 10_000_000);
  const fitContextTokens = count('--fit-context', flags.fitContext, 1, model.maxContext);
  const compute = computeFromFlags(flags);
  const options: SimOptions = {
    model,
    ...(compute !== undefined ? { compute } : {}),
    prefixCache: flags.prefixCache,
    ...(flags.routing !== undefined ? { routing: flags.routing as QueueDiscipline } : {}),
    ...(chunkTokens !== undefined ? { chunkTokens } : {}),
    ...(maxTokens !== undefined ? { maxTokens } : {}),
    ...(flags.link !== undefined ? { link: getLink(flags.link) } : {}),
    ...(decodeBatchMax !== undefined ? { decodeBatchMax } : {}),
    ...(colocateAtOrBelowTokens !== undefined ? { colocateAtOrBelowTokens } : {}),
    ...(fitContextTokens !== undefined ? { fitContextTokens } : {}),
    ...(maxPrefillQueue !== undefined || maxDecodeQueue !== undefined
      ? {
          admission: {
            maxPrefillQueue: maxPrefillQueue ?? ENGINE_DEFAULTS.maxPrefillQueue,
            maxDecodeQueue: maxDecodeQueue ?? ENGINE_DEFAULTS.maxDecodeQueue,
          },
        }
      : {}),
    ...(flags.cs3PricePerHour !== undefined
      ? { cs3PricePerHour: positiveNumber('--cs3-price-per-hour', flags.cs3PricePerHour) }
      : {}),
    slo: {
      ttftMs: flags.sloTtftMs === undefined ? DEFAULT_SLO.ttftMs : positiveNumber('--slo-ttft-ms', flags.sloTtftMs),
      tpotMs: flags.sloTpotMs === undefined ? DEFAULT_SLO.tpotMs : positiveNumber('--slo-tpot-ms', flags.sloTpotMs),
    },
  };
  return { specs, options };
}

/** A progress bar on stderr, only when stderr is a terminal (CI logs stay clean). */
export function progressBar(
  label: string,
  unit = 'requests',
): { update: (done: number, total: number) => void; stop: () => void } {
  if (!process.stderr.isTTY) return { update: () => undefined, stop: () => undefined };
  const bar = new SingleBar({
    format: `${label} [{bar}] {percentage}% | {value}/{total} ${unit}`,
    stream: process.stderr,
    clearOnComplete: true,
    hideCursor: true,
  });
  let started = false;
  return {
    update(done, total) {
      if (!started) {
        bar.start(total, 0);
        started = true;
      }
      bar.update(done);
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

export function runSystems(workload: Workload, specs: readonly SystemSpec[], options: SimOptions): SimResult[] {
  return specs.map((spec) => {
    const progress = progressBar(`simulating ${spec.kind === 'colocated' ? 'colocated' : 'disaggregated'}`);
    try {
      return simulate(workload, spec, options, progress.update);
    } finally {
      progress.stop();
    }
  });
}

export async function runSimulate(flags: SimulateFlags): Promise<{ workload: Workload; results: SimResult[] }> {
  const { specs, options } = systemsFromFlags(flags);
  const workload = transformWorkload(await baseWorkload(flags), flags);
  return { workload, results: runSystems(workload, specs, options) };
}

/** The `--json` document: {"systems": [...]}, each system's contract keys first. */
export function simulateJson(results: readonly SimResult[]): { systems: SystemMetrics[] } {
  // A percentile among the rejected is Infinity: "rejected" in JSON.
  return jsonSafe({ systems: results.map((r) => r.metrics) });
}

const fmtMs = (v: number | null): string =>
  v === null ? '-' : v === Infinity ? REJECTED : v >= 100 ? v.toFixed(0) : v.toFixed(2);
const pct = (v: number): string => `${(v * 100).toFixed(1)}%`;

/** The comparison table's header and rows, as stdout prints them (the HTML report shows the same). */
export function simulateTable(results: readonly SimResult[]): { header: string[]; rows: string[][] } {
  const m = results.map((r) => r.metrics);
  const rows: string[][] = [];
  const row = (label: string, cell: (s: SystemMetrics) => string): void => void rows.push([label, ...m.map(cell)]);
  const ptile = (p: { p50: number | null; p90: number | null; p99: number | null }): string =>
    `${fmtMs(p.p50)} / ${fmtMs(p.p90)} / ${fmtMs(p.p99)}`;
  row('requests', (s) => String(s.requests));
  row('completed', (s) => String(s.completed));
  row('rejected', (s) =>
    s.rejected === 0 ? '0' : `${s.rejected} (${pct(s.rejectedShare)}, counted in every percentile)`,
  );
  row('TTFT ms p50 / p90 / p99', (s) => ptile(s.ttftMs));
  row('TPOT ms p50 / p90 / p99', (s) => ptile(s.tpotMs));
  row('end-to-end ms p50 / p90 / p99', (s) => ptile(s.e2eMs));
  row('output tokens/s', (s) => s.outputTokensPerSecond.toFixed(0));
  row('goodput req/s', (s) => s.goodputRps.toFixed(3));
  row('SLO attainment', (s) => pct(s.sloAttainment));
  row('utilisation', (s) =>
    Object.entries(s.utilisation)
      .map(([role, u]) => `${role} ${pct(u)}`)
      .join(', '),
  );
  row('prefill queue ms p50 / p99', (s) => `${fmtMs(s.queueWaitMs.prefill.p50)} / ${fmtMs(s.queueWaitMs.prefill.p99)}`);
  row('decode queue ms p50 / p99', (s) =>
    s.queueWaitMs.decode ? `${fmtMs(s.queueWaitMs.decode.p50)} / ${fmtMs(s.queueWaitMs.decode.p99)}` : '-',
  );
  row('decode batch mean / max', (s) => `${s.decodeBatch.mean.toFixed(1)} / ${s.decodeBatch.max}`);
  row('decode batch cap', (s) => String(s.decodeBatch.cap));
  row('prefill batch mean (prompts per pass)', (s) => (s.prefillBatch ? s.prefillBatch.mean.toFixed(2) : '-'));
  row('tokens per step (chunked prefill)', (s) => (s.chunkTokens === 0 ? 'off' : String(s.chunkTokens)));
  row('KV moved GB', (s) => (s.kvBytesMoved / 1e9).toFixed(1));
  row('prefix-cache hit rate', (s) => pct(s.prefixCacheHitRate));
  row('USD per 1M output tokens', (s) =>
    s.costPerMillionOutputTokens === null ? 'n/a (see note)' : s.costPerMillionOutputTokens.toFixed(2),
  );
  return { header: ['', ...m.map((s) => s.spec)], rows };
}

/** The title lines above the table: model, workload, SLOs and fit context. */
export function simulateTitle(workload: Workload, first: SimResult): string {
  const { slo, fit } = { slo: first.metrics.slo, fit: first.fit };
  return (
    `${first.options.model.id}, ${workload.requests.length} requests (${workload.source}); virtual time, emulated devices\n` +
    `SLO: TTFT <= ${slo.ttftMs} ms and TPOT <= ${slo.tpotMs} ms; fit checked for one request of ${fit.contextTokens} tokens ` +
    `(${fit.contextFromWorkload ? "the workload's median" : '--fit-context'}); decode batches admit while their KV fits\n` +
    `queues: ${first.options.routing}; each request reserves prompt + max_tokens ${first.limits.maxTokens} of KV` +
    `${first.limits.maxTokensFromWorkload ? " (the workload's longest answer)" : ''}; admission for the whole system: ` +
    `${first.limits.maxPrefillQueue} waiting for prefill, ${first.limits.maxDecodeQueue} for decode`
  );
}

/** Cost notes and rejection reasons printed under the table. */
export function simulateNotes(results: readonly SimResult[]): string[] {
  const m = results.map((r) => r.metrics);
  return m
    .filter((s) => s.costNote !== null)
    .map((s) => `cost of ${s.spec}: ${s.costNote}`)
    .concat(
      m.flatMap((s) =>
        Object.entries(s.rejectedReasons).map(([reason, n]) => `rejected by ${s.spec}: ${n} x ${reason}`),
      ),
    );
}

export function simulateText(workload: Workload, results: readonly SimResult[]): string {
  const first = results[0];
  if (!first) return 'no systems';
  const { header, rows } = simulateTable(results);
  const table = plainTable(header);
  for (const r of rows) table.push(r);
  return [simulateTitle(workload, first), table.toString(), ...simulateNotes(results)].join('\n');
}
