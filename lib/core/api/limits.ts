/**
 * The API's limits on a request, checked before any work: the prompt's characters before tokenizing, its tokens
 * before admission. Each refusal names the limit and the field.
 */
import { badRequest } from './errors';
import { groupDigits } from './describe';

export interface ApiLimits {
  maxOutputTokens: number;
  maxPromptTokens: number;
  defaultMaxTokens: number;
}

/**
 * Prompt text allowed per token of the prompt-token limit, checked before tokenizing so an oversized
 * prompt costs no tokenizer work. English averages about 4 characters per BPE token and code fewer, so
 * a prompt above 8 per token cannot fit the token limit unless it is degenerate (long runs of one
 * character), and those are not worth tokenizing megabytes for.
 */
export const MAX_PROMPT_CHARS_PER_TOKEN = 8;

/** The character limit on a request's total prompt text (all message contents, or the prompt). */
export function maxPromptChars(limits: ApiLimits): number {
  return limits.maxPromptTokens * MAX_PROMPT_CHARS_PER_TOKEN;
}

/** Longest string accepted in message content or prompt: 4 Mi characters, well past any model context. */
export const MAX_CONTENT_CHARS = 4 * 1024 * 1024;
export const MAX_MESSAGES = 2048;
export const MAX_STOP_SEQUENCES = 4;
export const MAX_STOP_CHARS = 1024;
export const MAX_MODEL_CHARS = 256;
export const MAX_USER_CHARS = 1024;

/** Rejects prompt text beyond maxPromptChars(limits), before any tokenizer sees it. */
export function assertPromptChars(chars: number, limits: ApiLimits, param: string): void {
  const limit = maxPromptChars(limits);
  if (chars <= limit) return;
  throw badRequest(
    `prompt text is ${groupDigits(chars)} characters; this server accepts at most ${groupDigits(limits.maxPromptTokens)} prompt tokens, ` +
      `so at most ${groupDigits(limit)} characters of prompt text (${MAX_PROMPT_CHARS_PER_TOKEN} per token, checked before tokenizing)`,
    param,
    'context_length_exceeded',
  );
}

/**
 * Checked by the caller once the prompt is tokenized. The bound is the smaller of the server's
 * prompt limit and what the model context leaves after reserving max_tokens for the output.
 */
export function assertPromptFits(
  promptTokens: number,
  limits: ApiLimits,
  modelContext: number,
  maxTokens: number,
  param: string = 'messages',
): void {
  const contextRoom = Math.max(0, modelContext - maxTokens);
  const limit = Math.min(limits.maxPromptTokens, contextRoom);
  if (promptTokens <= limit) return;
  const context = `model context ${groupDigits(modelContext)} minus max_tokens ${groupDigits(maxTokens)}`;
  const why =
    contextRoom <= limits.maxPromptTokens
      ? `(${context}); shorten the prompt or lower max_tokens`
      : `(the server's prompt limit; ${context} would allow ${groupDigits(contextRoom)})`;
  throw badRequest(
    `prompt is ${groupDigits(promptTokens)} tokens; this server accepts at most ${groupDigits(limit)} prompt tokens ${why}`,
    param,
    'context_length_exceeded',
  );
}

/** The longest prompt, in tokens, a request with this max_tokens can have (for a tokenizer that stops early). */
export function promptTokenBudget(limits: ApiLimits, modelContext: number, maxTokens: number): number {
  return Math.min(limits.maxPromptTokens, Math.max(0, modelContext - maxTokens));
}
