import { plainTable } from './table';
import {
  checkLayout,
  defaultCompute,
  DTYPES,
  estimateColocated,
  estimateDisaggregated,
  formatPool,
  getLink,
  getModel,
  parsePool,
  parseStacks,
  resolveDraft,
  stackFor,
  validateSpeculative,
  validateUsableFraction,
  withBands,
  type ColocatedEstimate,
  type DevicePool,
  type DisaggregatedEstimate,
  type Dtype,
  type RequestShape,
  type SpeculativeOptions,
} from '../../lib/core/emulator';
import { parseCount, UsageError } from './errors';

export interface EstimateFlags {
  model: string;
  promptTokens: string;
  outputTokens: string;
  prefill?: string;
  decode?: string;
  colocated?: string;
  link?: string;
  batch: string;
  dtype?: string;
  weightDtype?: string;
  kvDtype?: string;
  memoryFraction?: string;
  stack?: string;
  cachedTokens: string;
  overlap?: boolean;
  speculativeDraft?: string;
  draftTokens?: string;
  acceptance?: string;
  json?: boolean;
}

/** The reference deployment the project is about, used when no pool flag is given. */
export const DEFAULT_POOLS = { prefill: 'trn2x16', decode: 'cs3x4', colocated: 'h100x8' } as const;

type Values<K extends string> = Readonly<Record<K, number>>;
type DisaggKey = 'prefillMs' | 'transferMs' | 'ttftMs' | 'tpotMs' | 'e2eMs' | 'tokensPerSecond';
type ColocatedKey = 'prefillMs' | 'ttftMs' | 'tpotMs' | 'e2eMs' | 'tokensPerSecond';
const DISAGG_KEYS: readonly DisaggKey[] = ['prefillMs', 'transferMs', 'ttftMs', 'tpotMs', 'e2eMs', 'tokensPerSecond'];
const COLOCATED_KEYS: readonly ColocatedKey[] = ['prefillMs', 'ttftMs', 'tpotMs', 'e2eMs', 'tokensPerSecond'];

/** Speculative decoding as the JSON reports it. */
interface SpeculativeJson {
  draft: string;
  draftTokens: number;
  acceptanceRate: number;
  source: string;
}

/**
 * One block of the JSON: the values, then `low` and `high` (the ends of the cross-validated error band;
 * tokens per second is lowest when times are highest), the stacks and the speculative decoding charged.
 */
type Block<K extends string> = Values<K> & {
  low: Values<K>;
  high: Values<K>;
  stacks: Record<string, string>;
  speculative: SpeculativeJson | null;
};

export interface EstimateResult {
  model: string;
  promptTokens: number;
  outputTokens: number;
  weightDtype: Dtype;
  kvDtype: Dtype;
  disaggregated?: Block<DisaggKey>;
  colocated?: Block<ColocatedKey>;
}

function parseDtype(flag: string, value: string): Dtype {
  if ((DTYPES as readonly string[]).includes(value)) return value as Dtype;
  throw new UsageError(`${flag} must be one of ${DTYPES.join(', ')}, got "${value}"`);
}

function parseAcceptance(value: string): number {
  const a = Number(value);
  if (!Number.isFinite(a) || a <= 0 || a >= 1) {
    throw new UsageError(`--acceptance must be a number between 0 and 1 (exclusive), got "${value}"`);
  }
  return a;
}

/** `--speculative-draft`: undefined keeps each stack's provider default; `none` turns it off. */
function parseSpeculative(
  flags: EstimateFlags,
  target: ReturnType<typeof getModel>,
): SpeculativeOptions | null | undefined {
  if (flags.speculativeDraft === undefined) {
    const stray = [
      flags.draftTokens !== undefined && '--draft-tokens',
      flags.acceptance !== undefined && '--acceptance',
    ]
      .filter(Boolean)
      .join(' and ');
    if (stray) throw new UsageError(`${stray} only apply with --speculative-draft M (a draft model, or eagle)`);
    return undefined;
  }
  const draft = resolveDraft(flags.speculativeDraft, target);
  if (draft === null) {
    if (flags.draftTokens !== undefined || flags.acceptance !== undefined) {
      throw new UsageError('--draft-tokens and --acceptance do not apply with --speculative-draft none');
    }
    return null;
  }
  if (flags.draftTokens === undefined || flags.acceptance === undefined) {
    throw new UsageError(`--speculative-draft ${draft.id} needs --draft-tokens K and --acceptance A`);
  }
  const draftTokens = parseCount('--draft-tokens', flags.draftTokens, 1, 16);
  const acceptanceRate = parseAcceptance(flags.acceptance);
  validateSpeculative(draftTokens, acceptanceRate);
  return { draft, draftTokens, acceptanceRate };
}

function parseTokens(flags: EstimateFlags, maxContext: number, modelId: string): { prompt: number; output: number } {
  const prompt = parseCount('--prompt-tokens', flags.promptTokens, 1, maxContext);
  if (prompt >= maxContext) {
    throw new UsageError(
      `--prompt-tokens ${prompt} leaves no room to generate: ${modelId}'s context limit is ${maxContext} tokens (prompt + output)`,
    );
  }
  const output = Number(flags.outputTokens);
  if (!/^\d+$/.test(flags.outputTokens.trim()) || output < 1) {
    throw new UsageError(`--output-tokens must be a whole number of at least 1, got "${flags.outputTokens}"`);
  }
  if (prompt + output > maxContext) {
    throw new UsageError(
      `--prompt-tokens ${prompt} + --output-tokens ${output} exceed ${modelId}'s context limit of ${maxContext} tokens; ` +
        `at most ${maxContext - prompt} output tokens fit after this prompt`,
    );
  }
  return { prompt, output };
}

export function runEstimate(flags: EstimateFlags): {
  result: EstimateResult;
  pools: { prefill?: DevicePool; decode?: DevicePool; colocated?: DevicePool };
} {
  const model = getModel(flags.model);
  const { prompt: promptTokens, output: outputTokens } = parseTokens(flags, model.maxContext, model.id);
  const batch = parseCount('--batch', flags.batch, 1, 4096);
  const cachedPromptTokens = parseCount('--cached-tokens', flags.cachedTokens, 0, promptTokens);
  // --dtype sets both; --weight-dtype and --kv-dtype override it. MXFP4 is a weight format: its KV stays BF16.
  const both = flags.dtype === undefined ? undefined : parseDtype('--dtype', flags.dtype);
  const weightDtype =
    flags.weightDtype !== undefined
      ? parseDtype('--weight-dtype', flags.weightDtype)
      : (both ?? model.nativeWeightDtype);
  const kvDefault = both === undefined || both === 'mxfp4' ? 'bf16' : both;
  const kvDtype = flags.kvDtype !== undefined ? parseDtype('--kv-dtype', flags.kvDtype) : kvDefault;
  if (kvDtype === 'mxfp4') throw new UsageError('--kv-dtype mxfp4 is not a KV format; use bf16, fp16, fp8 or int8');
  const usableFraction =
    flags.memoryFraction === undefined ? undefined : validateUsableFraction(Number(flags.memoryFraction));
  const stacks = parseStacks(flags.stack);
  if ((flags.prefill === undefined) !== (flags.decode === undefined)) {
    throw new UsageError('--prefill and --decode go together: give both pools, e.g. --prefill trn2x16 --decode cs3x4');
  }
  const anyPool = flags.prefill !== undefined || flags.colocated !== undefined;
  const disaggFlags = anyPool ? flags.prefill !== undefined : true;
  const colocatedFlag = anyPool ? flags.colocated : DEFAULT_POOLS.colocated;
  const link = flags.link === undefined ? undefined : getLink(flags.link);
  const speculative = parseSpeculative(flags, model);
  const shape: RequestShape = {
    model,
    promptTokens,
    outputTokens,
    cachedPromptTokens,
    batch,
    compute: defaultCompute(model, { weightDtype, kvDtype, stacks }),
    ...(speculative !== undefined ? { speculative } : {}),
    ...(usableFraction !== undefined ? { usableFraction } : {}),
  };

  const result: EstimateResult = { model: model.id, promptTokens, outputTokens, weightDtype, kvDtype };
  const pools: { prefill?: DevicePool; decode?: DevicePool; colocated?: DevicePool } = {};
  if (disaggFlags) {
    pools.prefill = parsePool(flags.prefill ?? DEFAULT_POOLS.prefill);
    pools.decode = parsePool(flags.decode ?? DEFAULT_POOLS.decode);
    checkLayout(model, pools.prefill);
    checkLayout(model, pools.decode);
    const options = { ...(link ? { link } : {}), overlapTransfer: flags.overlap === true };
    const { prefill, decode } = pools as { prefill: DevicePool; decode: DevicePool };
    const banded = withBands(shape, (s) => estimateDisaggregated(s, prefill, decode, options));
    result.disaggregated = block(banded, DISAGG_KEYS, {
      prefill: stackFor(prefill.device, stacks).id,
      decode: stackFor(decode.device, stacks).id,
    });
  }
  if (colocatedFlag !== undefined) {
    const pool = parsePool(colocatedFlag);
    pools.colocated = pool;
    checkLayout(model, pool);
    const banded = withBands(shape, (s) => estimateColocated(s, pool));
    result.colocated = block(banded, COLOCATED_KEYS, { colocated: stackFor(pool.device, stacks).id });
  }
  return { result, pools };
}

/** Three decimals of a millisecond is already below what the model can claim. */
const round3 = (v: number): number => Number(v.toFixed(3));

function values<K extends string>(estimate: Record<K, number>, keys: readonly K[]): Values<K> {
  const out = {} as Record<K, number>;
  for (const key of keys) out[key] = round3(estimate[key]);
  return out;
}

function block<E extends ColocatedEstimate | DisaggregatedEstimate, K extends string>(
  banded: { mid: E; low: E; high: E },
  keys: readonly K[],
  stacks: Record<string, string>,
): Block<K> {
  const mid = banded.mid as unknown as Record<K, number>;
  // The low end of the band is the fast case: lower times, and so the higher per-user speed.
  const low = values(banded.low as unknown as Record<K, number>, keys) as Record<string, number>;
  const high = values(banded.high as unknown as Record<K, number>, keys) as Record<string, number>;
  if ('tokensPerSecond' in low)
    [low.tokensPerSecond, high.tokensPerSecond] = [high.tokensPerSecond as number, low.tokensPerSecond];
  const spec = banded.mid.speculative;
  return {
    ...values(mid, keys),
    low: low as Values<K>,
    high: high as Values<K>,
    stacks,
    speculative: spec
      ? {
          draft: spec.draft.id,
          draftTokens: spec.draftTokens,
          acceptanceRate: round3(spec.acceptanceRate),
          source: spec.source ?? 'given on the command line',
        }
      : null,
  };
}

const ms = (v: number): string => (v >= 100 ? v.toFixed(0) : v.toFixed(2));
const band = (v: number, lo: number, hi: number, fmt: (x: number) => string): string =>
  `${fmt(v)} (${fmt(lo)}-${fmt(hi)})`;

export function estimateText(
  result: EstimateResult,
  pools: { prefill?: DevicePool; decode?: DevicePool; colocated?: DevicePool },
): string {
  const head = [
    'emulated',
    ...(result.disaggregated ? [`disaggregated ${formatPool(pools.prefill!)} -> ${formatPool(pools.decode!)}`] : []),
  ];
  if (result.colocated) head.push(`colocated ${formatPool(pools.colocated!)}`);
  const table = plainTable(head);
  const d = result.disaggregated;
  const c = result.colocated;
  const cell = <K extends string>(b: Block<K> | undefined, key: K, fmt: (x: number) => string): string | undefined =>
    b && band(b[key], b.low[key], b.high[key], fmt);
  const row = (label: string, dv: string | undefined, cv: string | undefined) =>
    table.push([label, ...(d ? [dv ?? '-'] : []), ...(c ? [cv ?? '-'] : [])]);
  row('prefill ms', cell(d, 'prefillMs', ms), cell(c, 'prefillMs', ms));
  row('KV transfer ms', d && ms(d.transferMs), c && '-');
  row('TTFT ms', cell(d, 'ttftMs', ms), cell(c, 'ttftMs', ms));
  row('TPOT ms', cell(d, 'tpotMs', ms), cell(c, 'tpotMs', ms));
  row('end-to-end ms', cell(d, 'e2eMs', ms), cell(c, 'e2eMs', ms));
  const tps = (x: number): string => x.toFixed(0);
  row('tokens/s per user', cell(d, 'tokensPerSecond', tps), cell(c, 'tokensPerSecond', tps));
  const stacksUsed = [d && `${d.stacks.prefill} -> ${d.stacks.decode}`, c && c.stacks.colocated]
    .filter(Boolean)
    .join('; ');
  const specs = [
    d?.speculative && `disaggregated decode: ${describeSpec(d.speculative)}`,
    c?.speculative && `colocated: ${describeSpec(c.speculative)}`,
  ]
    .filter(Boolean)
    .map((s) => `speculative decoding, ${s}`);
  const title =
    `${result.model}: ${result.promptTokens} prompt tokens, ${result.outputTokens} output tokens, ` +
    `${result.weightDtype.toUpperCase()} weights, ${result.kvDtype.toUpperCase()} KV (emulated device time; ` +
    `ranges are the cross-validated error band)`;
  return [title, table.toString(), `serving stacks: ${stacksUsed}`, ...specs].join('\n');
}

function describeSpec(s: SpeculativeJson): string {
  return `${s.draft} drafting ${s.draftTokens} tokens, acceptance ${s.acceptanceRate} (${s.source}); --speculative-draft none turns it off`;
}
