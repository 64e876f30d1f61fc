/**
 * Workloads for the simulator: a list of requests with arrival times and lengths, from a trace,
 * a synthetic Poisson process, or agent sessions that re-send a growing context.
 */
import { mulberry32 } from '../random';

/** Tokens per prefix-cache block: Mooncake's hash ids name 512-token blocks, and the simulator follows. */
export const BLOCK_TOKENS = 512;

export interface SimRequest {
  readonly id: string;
  /** When the request arrives, ms from the workload's start (ignored for a session follow-up, see thinkMs). */
  readonly arrivalMs: number;
  readonly promptTokens: number;
  readonly outputTokens: number;
  /** One id per 512-token prompt block; equal leading ids in two prompts mean a reusable KV prefix. */
  readonly blockHashes?: readonly number[];
  readonly sessionId?: string;
  /**
   * Closed loop: the request is the next turn of its session and arrives this long after the
   * session's previous request (the one before it in the workload) completes.
   */
  readonly thinkMs?: number;
}

export interface Workload {
  /** Where the requests came from, for reports. */
  readonly source: string;
  readonly requests: readonly SimRequest[];
}

/** A user-facing error about a workload's parameters (the CLI exits 2 with it). */
export class WorkloadError extends Error {
  override readonly name = 'WorkloadError';
}

// The shared seedable PRNG; re-exported for the simulator's callers.
export { mulberry32 };

/** A token-length distribution: a fixed value, or lognormal with a given mean. */
export type LengthDistribution =
  | { readonly kind: 'fixed'; readonly tokens: number }
  | { readonly kind: 'lognormal'; readonly mean: number; readonly sigma: number };

/**
 * Default lognormal shape (sigma of ln(tokens)): the Azure LLM inference trace 2023 (conversation)
 * has a log-length standard deviation of 0.99 for prompts and 0.86 for outputs.
 */
export const DEFAULT_PROMPT_SIGMA = 0.99;
export const DEFAULT_OUTPUT_SIGMA = 0.86;

function standardNormal(random: () => number): number {
  // Box-Muller; 1 - u keeps the log argument in (0, 1].
  const u = 1 - random();
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

export function sampleLength(dist: LengthDistribution, random: () => number): number {
  if (dist.kind === 'fixed') return dist.tokens;
  // ln X ~ N(mu, sigma^2) has mean exp(mu + sigma^2 / 2): pick mu so the mean is as asked.
  const mu = Math.log(dist.mean) - (dist.sigma * dist.sigma) / 2;
  return Math.max(1, Math.round(Math.exp(mu + dist.sigma * standardNormal(random))));
}

function checkDistribution(name: string, dist: LengthDistribution): void {
  const value = dist.kind === 'fixed' ? dist.tokens : dist.mean;
  if (!Number.isFinite(value) || value < 1) throw new WorkloadError(`${name} must be at least 1 token, got ${value}`);
  if (dist.kind === 'lognormal' && !(dist.sigma >= 0 && dist.sigma <= 5)) {
    throw new WorkloadError(`${name} sigma must be from 0 to 5, got ${dist.sigma}`);
  }
}

export interface SyntheticOptions {
  /** Mean arrival rate, requests per second (Poisson arrivals). */
  readonly ratePerSecond: number;
  readonly promptTokens: LengthDistribution;
  readonly outputTokens: LengthDistribution;
  /** Stop after this many requests, or at this much arrival time; one of the two is required. */
  readonly requests?: number;
  readonly durationMs?: number;
  readonly seed: number;
}

/** Poisson arrivals (exponential gaps) with independent prompt and output lengths. */
export function syntheticWorkload(opts: SyntheticOptions): Workload {
  if (!(opts.ratePerSecond > 0) || !Number.isFinite(opts.ratePerSecond)) {
    throw new WorkloadError(
      `the synthetic rate must be a positive number of requests per second, got ${opts.ratePerSecond}`,
    );
  }
  checkDistribution('the prompt length', opts.promptTokens);
  checkDistribution('the output length', opts.outputTokens);
  if (opts.requests === undefined && opts.durationMs === undefined) {
    throw new WorkloadError('a synthetic workload needs a number of requests or a duration');
  }
  const random = mulberry32(opts.seed);
  const maxRequests = opts.requests ?? Number.POSITIVE_INFINITY;
  const endMs = opts.durationMs ?? Number.POSITIVE_INFINITY;
  const meanGapMs = 1000 / opts.ratePerSecond;
  const requests: SimRequest[] = [];
  let t = 0;
  while (requests.length < maxRequests) {
    t += -Math.log(1 - random()) * meanGapMs;
    if (t > endMs) break;
    requests.push({
      id: `syn-${requests.length}`,
      arrivalMs: t,
      promptTokens: sampleLength(opts.promptTokens, random),
      outputTokens: sampleLength(opts.outputTokens, random),
    });
  }
  const shape = (d: LengthDistribution): string =>
    d.kind === 'fixed' ? `${d.tokens}` : `lognormal(mean ${d.mean}, sigma ${d.sigma})`;
  return {
    source: `synthetic: Poisson ${opts.ratePerSecond} req/s, prompt ${shape(opts.promptTokens)}, output ${shape(opts.outputTokens)}, seed ${opts.seed}`,
    requests,
  };
}

/**
 * Most requests an agent workload may have (agents x turns). Each turn is held with its block hashes,
 * which grow with the context; a million turns of a 10-turn session take a few hundred MB.
 */
export const MAX_AGENT_REQUESTS = 1_000_000;

export interface AgentOptions {
  readonly agents: number;
  readonly turns: number;
  /** The first turn's prompt (system prompt and task). */
  readonly initialPromptTokens: LengthDistribution;
  /** The model's output each turn. */
  readonly outputTokens: LengthDistribution;
  /** Tool result appended to the context after each turn. */
  readonly toolTokens: number;
  /** Pause between a turn's answer and the next turn (tool run and agent logic). */
  readonly thinkMs: number;
  /** Agents start at uniformly random times in [0, startSpreadMs); default thinkMs. */
  readonly startSpreadMs?: number;
  readonly seed: number;
}

/**
 * Agent sessions: each agent runs `turns` turns; turn t+1 re-sends turn t's prompt plus its
 * output plus a tool result, `thinkMs` after turn t completes (closed loop). Block hashes follow
 * the growing prefix: a block keeps its id once it is full, so later turns reuse earlier KV.
 */
export function agentWorkload(opts: AgentOptions): Workload {
  for (const [name, value, min] of [
    ['agents', opts.agents, 1],
    ['turns', opts.turns, 1],
    ['tool tokens', opts.toolTokens, 0],
    ['think time', opts.thinkMs, 0],
  ] as const) {
    if (!Number.isFinite(value) || value < min)
      throw new WorkloadError(`${name} must be at least ${min}, got ${value}`);
  }
  // Every turn is a request held in memory with its block hashes: refuse before building, not by running out.
  const total = opts.agents * opts.turns;
  if (total > MAX_AGENT_REQUESTS) {
    throw new WorkloadError(
      `agents x turns is ${total.toLocaleString('en-US')} requests; the limit is ${MAX_AGENT_REQUESTS.toLocaleString('en-US')} ` +
        '(each turn is a request held in memory): use fewer agents or turns, or --rate-scale to raise the load',
    );
  }
  checkDistribution('the first prompt length', opts.initialPromptTokens);
  checkDistribution('the output length', opts.outputTokens);
  const random = mulberry32(opts.seed);
  const spread = opts.startSpreadMs ?? opts.thinkMs;
  const requests: SimRequest[] = [];
  let nextHash = 0;
  for (let a = 0; a < opts.agents; a++) {
    const startMs = random() * spread;
    const fullBlocks: number[] = [];
    let context = sampleLength(opts.initialPromptTokens, random);
    for (let t = 0; t < opts.turns; t++) {
      const full = Math.floor(context / BLOCK_TOKENS);
      while (fullBlocks.length < full) fullBlocks.push(nextHash++);
      // A partial last block changes as the context grows, so it never matches a later turn's.
      const blockHashes = context % BLOCK_TOKENS === 0 ? fullBlocks.slice() : [...fullBlocks, nextHash++];
      const outputTokens = sampleLength(opts.outputTokens, random);
      requests.push({
        id: `agent-${a}-turn-${t}`,
        arrivalMs: startMs,
        promptTokens: context,
        outputTokens,
        blockHashes,
        sessionId: `agent-${a}`,
        ...(t > 0 ? { thinkMs: opts.thinkMs } : {}),
      });
      context += outputTokens + opts.toolTokens;
    }
  }
  return {
    source: `agents: ${opts.agents} x ${opts.turns} turns, ${opts.toolTokens} tool tokens, ${opts.thinkMs} ms think time, seed ${opts.seed}`,
    requests,
  };
}

/** Multiplies arrival times (and think times) by 1/x: x > 1 compresses the workload into a higher rate. */
export function rateScale(workload: Workload, x: number): Workload {
  if (!(x > 0) || !Number.isFinite(x)) throw new WorkloadError(`rate scale must be a positive number, got ${x}`);
  if (x === 1) return workload;
  return {
    source: `${workload.source}, rate x${x}`,
    requests: workload.requests.map((r) => ({
      ...r,
      arrivalMs: r.arrivalMs / x,
      ...(r.thinkMs !== undefined ? { thinkMs: r.thinkMs / x } : {}),
    })),
  };
}

/** The first `n` requests. */
export function limit(workload: Workload, n: number): Workload {
  if (!Number.isInteger(n) || n < 1) throw new WorkloadError(`limit must be a whole number of at least 1, got ${n}`);
  if (n >= workload.requests.length) return workload;
  return { source: `${workload.source}, first ${n}`, requests: workload.requests.slice(0, n) };
}

/** The q-quantile (nearest rank) of prompt + output tokens: the context a fit check should hold. */
export function contextQuantile(workload: Workload, q: number): number {
  const n = workload.requests.length;
  if (n === 0) return 0;
  const contexts = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const r = workload.requests[i] as SimRequest;
    contexts[i] = r.promptTokens + r.outputTokens;
  }
  contexts.sort();
  return contexts[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))] as number;
}

/** Mean arrival rate over the open-loop arrivals, requests per second (for reports and sweeps). */
export function meanArrivalRate(workload: Workload): number {
  let n = 0;
  let first = Infinity;
  let last = -Infinity;
  for (const r of workload.requests) {
    if (r.thinkMs !== undefined) continue;
    n += 1;
    first = Math.min(first, r.arrivalMs);
    last = Math.max(last, r.arrivalMs);
  }
  return n > 1 && last > first ? ((n - 1) * 1000) / (last - first) : 0;
}
