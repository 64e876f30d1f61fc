import { Template } from '@huggingface/jinja';
import { describe, expect, it } from 'vitest';
import type { ConversationMessage } from '../../lib/core/api/request';
import {
  alternatingTurns,
  renderChat,
  TEMPLATE_VOCABULARIES,
  type TemplatedFamily,
} from '../../lib/adapters/chat-template';
import { CHAT_TEMPLATES } from '../../lib/adapters/chat-templates';

const FAMILIES = Object.keys(CHAT_TEMPLATES) as TemplatedFamily[];

/** The published template rendered by the engine on every call, as renderChat did before it kept plans. */
function engineRender(family: TemplatedFamily, conversation: readonly ConversationMessage[]): string {
  const vocabulary = TEMPLATE_VOCABULARIES[family];
  const turns = vocabulary.alternating ? alternatingTurns(conversation) : conversation;
  return new Template(CHAT_TEMPLATES[family]).render({
    messages: turns.map((m) => ({ role: m.role === 'developer' ? 'system' : m.role, content: m.content })),
    bos_token: vocabulary.bos,
    eos_token: vocabulary.eos,
    add_generation_prompt: true,
  });
}

/** A deterministic generator, so a failure names a conversation that can be rendered again. */
function random(seed: number): () => number {
  let s = seed;
  return () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 2 ** 32;
  };
}

// Contents with the whitespace templates trim or strip at either end (no special-token spellings, so the client
// text escaping changes nothing and the engine's render of the raw text is the reference).
const CONTENTS = [
  '',
  'Hello.',
  '  padded both sides \n',
  '\nleading newline',
  'trailing newline\n\n',
  '\t tab\t',
  'a\n\nb',
];

function conversation(next: () => number): ConversationMessage[] {
  const roles = ['system', 'user', 'assistant', 'user', 'assistant', 'user'] as const;
  const start = next() < 0.5 ? 0 : 1;
  const length = 1 + Math.floor(next() * (roles.length - start));
  return roles.slice(start, start + length).map((role) => ({
    role,
    content: CONTENTS[Math.floor(next() * CONTENTS.length)]!,
  }));
}

describe('chat template plans (one engine render per conversation structure)', () => {
  it('render exactly what the engine renders for each request, in every family', () => {
    const next = random(7);
    for (let i = 0; i < 400; i++) {
      const messages = conversation(next);
      for (const family of FAMILIES) {
        // Three times: a structure is planned the second time it is seen, and the plan used from then on.
        expect(renderChat(family, messages), `${family} ${JSON.stringify(messages)}`).toBe(
          engineRender(family, messages),
        );
        expect(renderChat(family, messages)).toBe(engineRender(family, messages));
        expect(renderChat(family, messages)).toBe(engineRender(family, messages));
      }
    }
  });

  it('keep contents apart from the template text, whatever characters they hold', () => {
    const odd = ['\uE001a0\uE002', '{{ bos_token }}', '{% if true %}x{% endif %}', '$& $1 $$'];
    for (const family of FAMILIES) {
      const messages: ConversationMessage[] = [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: odd.join(' ') },
        { role: 'assistant', content: odd[0]! },
        { role: 'user', content: odd[3]! },
      ];
      renderChat(family, messages);
      renderChat(family, messages);
      expect(renderChat(family, messages)).toBe(engineRender(family, messages));
    }
  });

  it('leave to the engine what no plan reproduces: Llama 3 renders a tool result as JSON', () => {
    const tool: ConversationMessage[] = [
      { role: 'user', content: 'weather?' },
      { role: 'tool', content: ' 21 C \n', toolCallId: 'call_1' },
    ];
    expect(renderChat('llama3', tool)).toContain('" 21 C \\n"');
  });
});
