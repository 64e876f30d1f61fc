import { plainTable } from './table';
import {
  DTYPE_BYTES,
  estimateColocated,
  FITTED_EFFICIENCY,
  estimateDisaggregated,
  formatPool,
  getLink,
  getModel,
  parsePool,
  type ColocatedEstimate,
  type DevicePool,
  type DisaggregatedEstimate,
  type Dtype,
  type RequestShape,
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
  dtype: string;
  cachedTokens: string;
  overlap?: boolean;
  speculativeDraft?: string;
  draftTokens?: string;
  acceptance?: string;
  json?: boolean;
}

/** The reference deployment the project is about, used when no pool flag is given. */
export const DEFAULT_POOLS = { prefill: 'trn2x16', decode: 'cs3x4', colocated: 'h100x8' } as const;

export interface EstimateResult {
  model: string;
  promptTokens: number;
  outputTokens: number;
  disaggregated?: Pick<
    DisaggregatedEstimate,
    'prefillMs' | 'transferMs' | 'ttftMs' | 'tpotMs' | 'e2eMs' | 'tokensPerSecond'
  >;
  colocated?: Pick<ColocatedEstimate, 'prefillMs' | 'ttftMs' | 'tpotMs' | 'e2eMs' | 'tokensPerSecond'>;
}

function parseDtype(value: string): Dtype {
  if (value in DTYPE_BYTES) return value as Dtype;
  throw new UsageError(`--dtype must be one of ${Object.keys(DTYPE_BYTES).join(', ')}, got "${value}"`);
}

function parseAcceptance(value: string | undefined): number {
  const a = Number(value);
  if (value === undefined || !Number.isFinite(a) || a <= 0 || a >= 1) {
    throw new UsageError(`--acceptance must be a number between 0 and 1 (exclusive), got "${value ?? ''}"`);
  }
  return a;
}

export function runEstimate(flags: EstimateFlags): {
  result: EstimateResult;
  pools: { prefill?: DevicePool; decode?: DevicePool; colocated?: DevicePool };
} {
  const model = getModel(flags.model);
  const promptTokens = parseCount('--prompt-tokens', flags.promptTokens, 1, model.maxContext);
  const outputTokens = parseCount('--output-tokens', flags.outputTokens, 1, model.maxContext - promptTokens);
  const batch = parseCount('--batch', flags.batch, 1, 4096);
  const cachedPromptTokens = parseCount('--cached-tokens', flags.cachedTokens, 0, promptTokens);
  const dtype = parseDtype(flags.dtype);
  if ((flags.prefill === undefined) !== (flags.decode === undefined)) {
    throw new UsageError('--prefill and --decode go together: give both pools, e.g. --prefill trn2x16 --decode cs3x4');
  }
  const anyPool = flags.prefill !== undefined || flags.colocated !== undefined;
  const disaggFlags = anyPool ? flags.prefill !== undefined : true;
  const colocatedFlag = anyPool ? flags.colocated : DEFAULT_POOLS.colocated;
  const link = flags.link === undefined ? undefined : getLink(flags.link);
  let speculative: RequestShape['speculative'];
  if (flags.speculativeDraft !== undefined) {
    if (flags.draftTokens === undefined)
      throw new UsageError('--speculative-draft needs --draft-tokens K and --acceptance A');
    speculative = {
      draftModel: getModel(flags.speculativeDraft),
      draftTokens: parseCount('--draft-tokens', flags.draftTokens, 1, 64),
      acceptanceRate: parseAcceptance(flags.acceptance),
    };
  }
  const shape: RequestShape = {
    model,
    promptTokens,
    outputTokens,
    cachedPromptTokens,
    batch,
    // MXFP4 is a weight format; its KV cache stays BF16.
    compute: { weightDtype: dtype, kvDtype: dtype === 'mxfp4' ? 'bf16' : dtype, efficiency: FITTED_EFFICIENCY },
    ...(speculative ? { speculative } : {}),
  };

  const result: EstimateResult = { model: model.id, promptTokens, outputTokens };
  const pools: { prefill?: DevicePool; decode?: DevicePool; colocated?: DevicePool } = {};
  if (disaggFlags) {
    pools.prefill = parsePool(flags.prefill ?? DEFAULT_POOLS.prefill);
    pools.decode = parsePool(flags.decode ?? DEFAULT_POOLS.decode);
    const d = estimateDisaggregated(shape, pools.prefill, pools.decode, {
      ...(link ? { link } : {}),
      overlapTransfer: flags.overlap === true,
    });
    result.disaggregated = pick(d, ['prefillMs', 'transferMs', 'ttftMs', 'tpotMs', 'e2eMs', 'tokensPerSecond']);
  }
  if (colocatedFlag !== undefined) {
    pools.colocated = parsePool(colocatedFlag);
    const c = estimateColocated(shape, pools.colocated);
    result.colocated = pick(c, ['prefillMs', 'ttftMs', 'tpotMs', 'e2eMs', 'tokensPerSecond']);
  }
  return { result, pools };
}

function pick<T extends object, K extends keyof T>(obj: T, keys: readonly K[]): Pick<T, K> {
  const out = {} as Pick<T, K>;
  // Three decimals of a millisecond is already below what the model can claim.
  for (const key of keys)
    out[key] = (typeof obj[key] === 'number' ? Number((obj[key] as number).toFixed(3)) : obj[key]) as T[K];
  return out;
}

const ms = (v: number): string => (v >= 100 ? v.toFixed(0) : v.toFixed(2));

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
  const row = (label: string, dv: string | undefined, cv: string | undefined) =>
    table.push([label, ...(d ? [dv ?? '-'] : []), ...(c ? [cv ?? '-'] : [])]);
  row('prefill ms', d && ms(d.prefillMs), c && ms(c.prefillMs));
  row('KV transfer ms', d && ms(d.transferMs), c && '-');
  row('TTFT ms', d && ms(d.ttftMs), c && ms(c.ttftMs));
  row('TPOT ms', d && ms(d.tpotMs), c && ms(c.tpotMs));
  row('end-to-end ms', d && ms(d.e2eMs), c && ms(c.e2eMs));
  row('tokens/s per user', d && d.tokensPerSecond.toFixed(0), c && c.tokensPerSecond.toFixed(0));
  const title = `${result.model}: ${result.promptTokens} prompt tokens, ${result.outputTokens} output tokens (emulated device time)`;
  return `${title}\n${table.toString()}`;
}
