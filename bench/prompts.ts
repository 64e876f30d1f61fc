/**
 * Realistic benchmark prompts of a given token count in the served model's vocabulary and template: a
 * chat (system prompt, then turns of English prose taken from this repository's README) and a code
 * completion (TypeScript from this repository). Real text exercises the tokenizer as users do; a
 * repeated word would flatter any BPE.
 */
import { readFileSync } from 'node:fs';
import { loadTokenizer, promptIdsFor, tokenizerFamily } from '../lib/adapters/tokenizers';
import type { ModelId } from '../lib/core/emulator';
import type { ChatMessage } from '../lib/core/ports';

export interface BenchPrompt {
  readonly name: 'chat' | 'code';
  readonly path: '/v1/chat/completions' | '/v1/completions';
  /**
   * Request bodies without max_tokens / stream (added per row): several different texts of the same token
   * count, sent in turn, so no cache of the tokenizer's or the server's sees one prompt over and over.
   */
  readonly bodies: readonly Record<string, unknown>[];
  /** Prompt tokens the server counts for each body (template included). */
  readonly tokens: readonly number[];
  /** What the text is, for the table. */
  readonly description: string;
}

/** Different prompts of each kind, sent in turn. */
export const PROMPT_VARIANTS = 8;

/** Sources of the code prompts: the repository's own TypeScript, each file opening a variant. */
const CODE_FILES = [
  'lib/core/engine/decode-stage.ts',
  'lib/core/handoff/kv-blob.ts',
  'lib/core/handoff/descriptor.ts',
  'lib/core/engine/prefill-stage.ts',
  'lib/core/engine/config.ts',
  'lib/local/stage-threads.ts',
  'lib/core/sim/engine.ts',
  'lib/core/api/app.ts',
];

const read = (path: string): string => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8');

/** README prose: paragraphs that are not tables, code or headings. */
function prose(): string[] {
  return read('README.md')
    .split(/\n\s*\n/)
    .map((p) => p.trim())
    .filter((p) => p.length > 200 && !/^(#|\||```|<|- |\d+\.)/.test(p))
    .map((p) => p.replace(/\s*\n\s*/g, ' '));
}

/** The longest prefix length (in characters) of `text` whose token count is at most `target`. */
function fit(text: string, count: (chars: number) => number, target: number): number {
  let lo = 0;
  let hi = text.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (count(mid) <= target) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

export async function benchPrompts(model: ModelId, targetTokens: number): Promise<BenchPrompt[]> {
  const family = tokenizerFamily(model);
  const tokenizer = await loadTokenizer(family);
  const chatIds = (messages: readonly ChatMessage[]): number[] => promptIdsFor(tokenizer, family, 'chat', messages);
  const codeIds = (prompt: string): number[] => promptIdsFor(tokenizer, family, 'completion', prompt);

  const paragraphs = prose();
  const chats = Array.from({ length: PROMPT_VARIANTS }, (_, v) => {
    // Each variant opens at another paragraph and runs on, wrapping round, so the texts differ throughout.
    const from = (v * 5) % paragraphs.length;
    const ring = [...paragraphs.slice(from), ...paragraphs.slice(0, from)];
    const turns: ChatMessage[] = [
      { role: 'system', content: 'You are a concise assistant for platform engineers. Answer from the notes given.' },
      { role: 'user', content: `Here are my notes on the design:\n\n${ring.slice(0, 3).join('\n\n')}` },
      { role: 'assistant', content: ring[3] ?? '' },
    ];
    const question = `And these:\n\n${ring.slice(4).join('\n\n')}`;
    const chatOf = (chars: number): ChatMessage[] => [...turns, { role: 'user', content: question.slice(0, chars) }];
    return chatOf(fit(question, (chars) => chatIds(chatOf(chars)).length, targetTokens));
  });

  const sources = CODE_FILES.map(read);
  const codes = sources.map((_, v) => {
    const code = [...sources.slice(v), ...sources.slice(0, v)].join('\n');
    return code.slice(
      0,
      fit(code, (chars) => codeIds(code.slice(0, chars)).length, targetTokens),
    );
  });

  return [
    {
      name: 'chat',
      path: '/v1/chat/completions',
      bodies: chats.map((messages) => ({ model, messages, temperature: 0 })),
      tokens: chats.map((messages) => chatIds(messages).length),
      description: `${PROMPT_VARIANTS} different 4-turn chats of README prose`,
    },
    {
      name: 'code',
      path: '/v1/completions',
      bodies: codes.map((prompt) => ({ model, prompt, temperature: 0 })),
      tokens: codes.map((prompt) => codeIds(prompt).length),
      description: `${PROMPT_VARIANTS} different stretches of TypeScript source, as completions`,
    },
  ];
}
