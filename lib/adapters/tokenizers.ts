/**
 * Prompt tokenizers per model family, each the family's real vocabulary (a data file shipped with the code, read on
 * first use; no download at run time) under one implementation per algorithm: byte-level BPE for Llama 3, Qwen3
 * and gpt-oss (tokenizer-byte-level.ts), SentencePiece BPE for Llama 2 and Mistral (llama-tokenizer-js); and each
 * family's published chat template.
 *
 * A bundle can carry one family only: esbuild's `define` replaces `process.env.DISAGG_TOKENIZER_FAMILY` with a
 * string literal, which turns the other families' dynamic imports into dead code it does not bundle.
 */
import { MODELS, TOKENIZER_FAMILIES, type ModelId, type TokenizerFamily } from '../core/emulator/models';
import type { ChatMessage, Tokenizer } from '../core/ports';
import { pipelineMessages, type ConversationMessage, type ParsedCompletionRequest } from '../core/api/request';
import { renderChat, renderedIds } from './chat-template';
import { ByteLevelTokenizer } from './tokenizer-byte-level';
import { completionPromptIds as llama3CompletionPromptIds, loadLlama3Tokenizer } from './tokenizer-llama3';
import { readVocabulary } from './tokenizer-vocabulary';

export { TOKENIZER_FAMILIES, type TokenizerFamily };

/**
 * Build-time setting (esbuild `define`), next to the run-time DEPLOYMENT_ENV names: the one family a bundle
 * carries. Unset, every family can load and the served model's family is used.
 */
export const TOKENIZER_FAMILY_ENV = 'DISAGG_TOKENIZER_FAMILY';

/** The tokenizer family that counts a model's prompt tokens. */
export function tokenizerFamily(modelId: ModelId): TokenizerFamily {
  return MODELS[modelId].tokenizer;
}

/** Special-token ids the templates use, from each family's published tokenizer. */
export const SPECIAL_IDS = {
  llama2: { bos: 1, eos: 2 },
  mistral: { bos: 1, eos: 2 },
  qwen3: { endOfText: 151643, imStart: 151644, imEnd: 151645 },
  'gpt-oss': { endOfText: 199999, channel: 200005, start: 200006, end: 200007, message: 200008 },
} as const;

/** llama-tokenizer-js's SentencePiece BPE (Llama 1/2, and Mistral v1 with Mistral's vocabulary). */
interface SentencePiecePackage {
  vocabById: string[];
  encode(prompt: string, addBos?: boolean, addPrecedingSpace?: boolean): number[] | undefined;
  decode(ids: number[], addBos?: boolean, addPrecedingSpace?: boolean): string;
}

function checkIds(family: TokenizerFamily, ids: readonly number[], size: number): void {
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || id >= size) {
      throw new RangeError(`${family} tokenizer: token id ${id} is outside the vocabulary (0..${size - 1})`);
    }
  }
}

/** SentencePiece's escape for a space. */
const SPACE_PIECE = '\u2581';

/**
 * SentencePiece semantics: `encode` is one sentence, with the dummy-prefix space SentencePiece adds and no BOS.
 * The package builds tokens from characters and merges only, so "</s>" in text stays text. Spaces are escaped
 * here, and ids decoded here, because the package spells the escape with Llama 2's id for it (29871), which is
 * another token in Mistral's vocabulary.
 */
function sentencePieceTokenizer(name: TokenizerFamily, impl: SentencePiecePackage): Tokenizer {
  const bytesOf = new TextEncoder();
  return {
    name,
    encode: (text) => impl.encode(SPACE_PIECE + text.replaceAll(' ', SPACE_PIECE), false, false) ?? [],
    decode(ids) {
      checkIds(name, ids, impl.vocabById.length);
      const bytes: number[] = [];
      for (const id of ids) {
        const piece = impl.vocabById[id]!;
        // Byte-fallback pieces (<0x0A>) are one byte each; every other piece is its UTF-8 spelling.
        if (piece.length === 6 && piece.startsWith('<0x') && piece.endsWith('>'))
          bytes.push(parseInt(piece.slice(3, 5), 16));
        else for (const b of bytesOf.encode(piece)) bytes.push(b);
      }
      const text = new TextDecoder().decode(Uint8Array.from(bytes)).replaceAll(SPACE_PIECE, ' ');
      // Only the dummy-prefix space goes.
      return text.startsWith(' ') ? text.slice(1) : text;
    },
  };
}

/** Qwen3's pre-tokenizer split (its tokenizer.json; single digits, the case-insensitive contractions spelled out). */
export const QWEN3_SPLIT =
  /(?:'([sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD]))|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;

// Every family's vocabulary takes a while to build, so each loads once per process, on first use.
const loading = new Map<TokenizerFamily, Promise<Tokenizer>>();

/** The family's tokenizer, loaded through a dynamic import on first use and shared afterwards. */
export function loadTokenizer(family: TokenizerFamily): Promise<Tokenizer> {
  let tokenizer = loading.get(family);
  if (!tokenizer) {
    tokenizer = importTokenizer(family);
    loading.set(family, tokenizer);
    // A failed load is retried by the next caller rather than cached.
    tokenizer.catch(() => loading.delete(family));
  }
  return tokenizer;
}

// Each branch names process.env.DISAGG_TOKENIZER_FAMILY literally: esbuild's define substitutes the expression
// only where it is written out, and folds the comparison so the branches of the other families are dropped.
async function importTokenizer(family: TokenizerFamily): Promise<Tokenizer> {
  const bundled = process.env.DISAGG_TOKENIZER_FAMILY;
  if (bundled !== undefined && bundled !== family) {
    throw new Error(
      `this build carries the ${bundled} tokenizer only (${TOKENIZER_FAMILY_ENV} at bundle time), not ${family}: ` +
        `bundle with ${TOKENIZER_FAMILY_ENV}="${family}" for this model`,
    );
  }
  if (
    family === 'llama2' &&
    (process.env.DISAGG_TOKENIZER_FAMILY === undefined || process.env.DISAGG_TOKENIZER_FAMILY === 'llama2')
  ) {
    const mod = await import('llama-tokenizer-js');
    return sentencePieceTokenizer('llama2', mod.default as SentencePiecePackage);
  }
  if (
    family === 'mistral' &&
    (process.env.DISAGG_TOKENIZER_FAMILY === undefined || process.env.DISAGG_TOKENIZER_FAMILY === 'mistral')
  ) {
    const { LlamaTokenizer } = await import('llama-tokenizer-js');
    const { vocab, merges } = readVocabulary('mistral');
    return sentencePieceTokenizer('mistral', new LlamaTokenizer(vocab, merges) as SentencePiecePackage);
  }
  if (
    family === 'qwen3' &&
    (process.env.DISAGG_TOKENIZER_FAMILY === undefined || process.env.DISAGG_TOKENIZER_FAMILY === 'qwen3')
  ) {
    return new ByteLevelTokenizer('qwen3', readVocabulary('qwen3'), {
      split: QWEN3_SPLIT,
      normalize: (text) => text.normalize('NFC'),
    });
  }
  if (
    family === 'gpt-oss' &&
    (process.env.DISAGG_TOKENIZER_FAMILY === undefined || process.env.DISAGG_TOKENIZER_FAMILY === 'gpt-oss')
  ) {
    const { O200K_TOKEN_SPLIT_REGEX } = await import('gpt-tokenizer/encodingParams/constants');
    return new ByteLevelTokenizer('gpt-oss', readVocabulary('gpt-oss'), { split: O200K_TOKEN_SPLIT_REGEX });
  }
  // Llama 3 is always available: the reference backend needs it for its word table whatever model is served.
  if (family === 'llama3') return loadLlama3Tokenizer();
  throw new Error(`unknown tokenizer family "${String(family)}"`);
}

/** Prompt ids for a chat or a plain completion under the family's published template. */
export function promptIdsFor(
  tokenizer: Tokenizer,
  family: TokenizerFamily,
  kind: 'chat',
  messages: readonly ConversationMessage[],
): number[];
export function promptIdsFor(
  tokenizer: Tokenizer,
  family: TokenizerFamily,
  kind: 'completion',
  prompt: string,
): number[];
export function promptIdsFor(
  tokenizer: Tokenizer,
  family: TokenizerFamily,
  kind: 'chat' | 'completion',
  messagesOrPrompt: readonly ConversationMessage[] | string,
): number[];
export function promptIdsFor(
  tokenizer: Tokenizer,
  family: TokenizerFamily,
  kind: 'chat' | 'completion',
  messagesOrPrompt: readonly ConversationMessage[] | string,
): number[] {
  if (tokenizer.name !== family) {
    throw new Error(`promptIdsFor: the ${family} template needs the ${family} tokenizer, got ${tokenizer.name}`);
  }
  if (kind === 'completion') {
    if (typeof messagesOrPrompt !== 'string') throw new TypeError('promptIdsFor: a completion takes a prompt string');
    return completionIds(tokenizer, family, messagesOrPrompt);
  }
  if (typeof messagesOrPrompt === 'string') throw new TypeError('promptIdsFor: a chat takes messages');
  return chatIds(tokenizer, family, messagesOrPrompt);
}

/** A conversation's prompt ids under the family's published template; stops soon after `budget` ids. */
function chatIds(
  tokenizer: Tokenizer,
  family: TokenizerFamily,
  conversation: readonly ConversationMessage[],
  budget = Infinity,
): number[] {
  if (family === 'gpt-oss') return harmonyChatIds(tokenizer, pipelineMessages(conversation));
  return renderedIds(family, renderChat(family, conversation), (text) => tokenizer.encode(text), budget);
}

function completionIds(tokenizer: Tokenizer, family: TokenizerFamily, prompt: string): number[] {
  switch (family) {
    case 'llama3':
      return llama3CompletionPromptIds(tokenizer, prompt);
    case 'llama2':
    case 'mistral':
      return [SPECIAL_IDS[family].bos, ...tokenizer.encode(prompt)];
    case 'qwen3':
    case 'gpt-oss': {
      // No BOS in these vocabularies; an empty prompt is the document separator, as OpenAI's completions API does.
      const ids = tokenizer.encode(prompt);
      return ids.length > 0 ? ids : [SPECIAL_IDS[family].endOfText];
    }
  }
}

/**
 * The date in gpt-oss's system message, pinned so a request's prompt ids (and the reference model's reply) do not
 * change from day to day; every YYYY-MM-DD date is the same number of o200k tokens.
 */
export const HARMONY_SYSTEM_DATE = '2025-06-28';

/** The system message gpt-oss's published template always renders, at the default reasoning effort. */
const HARMONY_SYSTEM =
  'You are ChatGPT, a large language model trained by OpenAI.\n' +
  'Knowledge cutoff: 2024-06\n' +
  `Current date: ${HARMONY_SYSTEM_DATE}\n\n` +
  'Reasoning: medium\n\n' +
  '# Valid channels: analysis, commentary, final. Channel must be included for every message.';

/**
 * gpt-oss's harmony format: <|start|>{role}<|message|>{content}<|end|> per message, then <|start|>assistant.
 * The model's system message comes first; a request's system message becomes the developer's "# Instructions";
 * past assistant replies are on the final channel. ChatMessage has no function name, so a tool result is "tool".
 */
function harmonyChatIds(tokenizer: Tokenizer, messages: readonly ChatMessage[]): number[] {
  const { start, message: messageId, end, channel } = SPECIAL_IDS['gpt-oss'];
  const ids: number[] = [];
  const emit = (header: string, content: string, channelName?: string): void => {
    ids.push(start);
    append(ids, tokenizer.encode(header));
    if (channelName !== undefined) {
      ids.push(channel);
      append(ids, tokenizer.encode(channelName));
    }
    ids.push(messageId);
    append(ids, tokenizer.encode(content));
    ids.push(end);
  };
  emit('system', HARMONY_SYSTEM);
  for (const message of messages) {
    if (message.role === 'system') emit('developer', `# Instructions\n\n${message.content}`);
    else if (message.role === 'assistant') emit('assistant', message.content, 'final');
    else emit(message.role, message.content);
  }
  ids.push(start);
  append(ids, tokenizer.encode('assistant'));
  return ids;
}

// A loop, not push(...more): spreading a long document's ids can overflow the call stack.
function append(target: number[], more: readonly number[]): void {
  for (const id of more) target.push(id);
}

/** The HTTP application's prompt counter: a request's prompt ids under the served family's template. */
export function promptCounter(
  tokenizer: Tokenizer,
  family: TokenizerFamily,
): (request: ParsedCompletionRequest, budget: number) => Promise<readonly number[]> {
  return (request, budget) =>
    Promise.resolve(
      request.kind === 'completion'
        ? completionIds(tokenizer, family, request.prompt ?? '')
        : chatIds(tokenizer, family, request.conversation, budget),
    );
}
