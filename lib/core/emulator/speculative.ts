/**
 * Speculative decoding as an explicit part of the model: a draft proposes `draftTokens` tokens, the target
 * verifies them in one pass, and on average (1 - a^(k+1)) / (1 - a) tokens are kept per verification
 * (Leviathan, Kalman, Matias, "Fast Inference from Transformers via Speculative Decoding", ICML 2023).
 *
 * The draft is either a small model of the target's family (`llama-3.2-1b` for Llama 3.x) or a draft head
 * (`eagle`: one decoder layer at the target's width on top of its hidden state, sharing its output head,
 * as EAGLE does). It is replicated on every device of the pool and runs without tensor-parallel
 * collectives, fused into the target's step (as NxD Inference's fused speculation and Cerebras do), and its
 * weights count in the memory fit.
 */
import { getModel, ProfileError } from './pool';
import { MODELS, parameterCounts, type ModelId, type ModelProfile } from './models';
import type { StackId } from './stacks';

/** A draft head's id on the command line. */
export const DRAFT_HEAD_ID = 'eagle';

export interface DraftSpec {
  /** `model`: a listed model; `head`: an EAGLE-style head derived from the target. */
  readonly kind: 'model' | 'head';
  /** `llama-3.2-1b`, or `eagle`. */
  readonly id: string;
  /** The network that runs per draft token. */
  readonly model: ModelProfile;
}

export interface SpeculativeOptions {
  readonly draft: DraftSpec;
  readonly draftTokens: number;
  /** Probability each drafted token is accepted (i.i.d., as in Leviathan et al. 2023). */
  readonly acceptanceRate: number;
  /** Where the numbers come from when they are a provider's default, not the user's. */
  readonly source?: string;
}

/**
 * Expected tokens per verification step with draft length k and acceptance a: (1 - a^(k+1)) / (1 - a).
 */
export function expectedTokensPerStep(draftTokens: number, acceptanceRate: number): number {
  if (acceptanceRate >= 1) return draftTokens + 1;
  return (1 - Math.pow(acceptanceRate, draftTokens + 1)) / (1 - acceptanceRate);
}

/** An EAGLE-style draft head for `target`: one dense decoder layer at its width, sharing its output head. */
export function draftHead(target: ModelProfile): ModelProfile {
  return {
    ...target,
    name: `draft head of ${target.name}`,
    layers: 1,
    moe: null,
    attentionWindow: null,
    // A head over a mixture-of-experts target is dense: one expert-sized MLP (as the published EAGLE-3 heads are).
    intermediateSize: target.moe
      ? Math.max(target.moe.expertIntermediate, target.intermediateSize)
      : target.intermediateSize,
    publishedParams: 0,
    sources: ["EAGLE (Li et al., ICML 2024): a one-layer draft head on the target's features, sharing its output head"],
  };
}

/** Weight parameters a draft adds to the memory fit (a head shares the target's embeddings and output head). */
export function draftParams(draft: DraftSpec): number {
  const p = parameterCounts(draft.model);
  if (draft.kind === 'model') return p.total;
  // A head's own fc layer (2h x h) joins the target's hidden state with the token embedding.
  return p.total - p.embedding - p.outputHead + 2 * draft.model.hiddenSize * draft.model.hiddenSize;
}

/** Resolves `--speculative-draft`: a listed model, `eagle`, or `none` (null). Incompatible drafts are refused. */
export function resolveDraft(id: string, target: ModelProfile): DraftSpec | null {
  const key = id.trim().toLowerCase();
  if (key === 'none' || key === '') return null;
  if (key === DRAFT_HEAD_ID) return { kind: 'head', id: DRAFT_HEAD_ID, model: draftHead(target) };
  const model = getModel(key);
  if (model.id === target.id) {
    throw new ProfileError(`--speculative-draft ${model.id} is the target model itself; choose a smaller draft`);
  }
  if (model.tokenizer !== target.tokenizer || model.vocabSize !== target.vocabSize) {
    throw new ProfileError(
      `--speculative-draft ${model.id} cannot draft for ${target.id}: its tokenizer (${model.tokenizer}, ` +
        `${model.vocabSize} tokens) differs from the target's (${target.tokenizer}, ${target.vocabSize}); ` +
        `drafts must share the target's vocabulary`,
    );
  }
  const draftActive = parameterCounts(model).active;
  const targetActive = parameterCounts(target).active;
  if (draftActive >= targetActive) {
    throw new ProfileError(
      `--speculative-draft ${model.id} (${(draftActive / 1e9).toFixed(1)}B active parameters) is not smaller than ` +
        `${target.id} (${(targetActive / 1e9).toFixed(1)}B active); a draft must be cheaper than its target`,
    );
  }
  return { kind: 'model', id: model.id, model };
}

export function validateSpeculative(draftTokens: number, acceptanceRate: number): void {
  if (!Number.isSafeInteger(draftTokens) || draftTokens < 1 || draftTokens > 16) {
    throw new ProfileError(`--draft-tokens must be a whole number from 1 to 16 (got ${draftTokens})`);
  }
  if (!(acceptanceRate > 0 && acceptanceRate < 1)) {
    throw new ProfileError(`--acceptance must be above 0 and below 1 (got ${acceptanceRate})`);
  }
}

/**
 * Speculative decoding that a provider's published speed includes, per stack and target model: the stack's
 * default for that model applies it, so an estimate reproduces what the provider serves.
 */
interface ProviderSpeculation {
  readonly stack: StackId;
  readonly models: readonly ModelId[];
  readonly draft: ModelId;
  readonly draftTokens: number;
  /** Key into the fitted acceptance rates (factors.ts FITTED_ACCEPTANCE). */
  readonly acceptanceKey: string;
  readonly source: string;
}

export const PROVIDER_SPECULATION: readonly ProviderSpeculation[] = [
  {
    stack: 'cerebras-2025',
    models: ['llama-3.1-70b', 'llama-3.3-70b'],
    draft: 'llama-3.2-1b',
    draftTokens: 4,
    acceptanceKey: 'cerebras:llama-3.2-1b>llama-70b',
    source:
      'Cerebras "Inference now 3x faster" (Oct 2024): the release implements speculative decoding for Llama 3.1 70B. ' +
      'Cerebras names neither the draft nor its length: Llama 3.2 1B with 4 draft tokens is assumed, and the ' +
      "acceptance rate is fitted to Cerebras's published Llama 70B speeds",
  },
];

/** The speculative decoding a stack's published speed for `target` includes, or null. */
export function providerSpeculation(
  stack: StackId,
  target: ModelProfile,
  acceptance: Readonly<Record<string, number>>,
): SpeculativeOptions | null {
  const entry = PROVIDER_SPECULATION.find((e) => e.stack === stack && e.models.includes(target.id));
  if (!entry) return null;
  const rate = acceptance[entry.acceptanceKey];
  if (rate === undefined) throw new ProfileError(`no fitted acceptance rate "${entry.acceptanceKey}"`);
  return {
    draft: { kind: 'model', id: entry.draft, model: MODELS[entry.draft] },
    draftTokens: entry.draftTokens,
    acceptanceRate: rate,
    source: entry.source,
  };
}
