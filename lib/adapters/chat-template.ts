/**
 * A conversation as the served model sees it: its family's published chat template (chat-templates.ts) rendered
 * by a template engine, then tokenized with the template's special tokens as single ids and everything the client
 * wrote as plain text, so "<|eot_id|>" typed in a message cannot forge a turn.
 */
import { Template } from '@huggingface/jinja';
import type { ConversationMessage } from '../core/api/request';
import { badRequest } from '../core/api/errors';
import { CHAT_TEMPLATES } from './chat-templates';

export type TemplatedFamily = keyof typeof CHAT_TEMPLATES;

export interface TemplateVocabulary {
  /** Special and added tokens the template may emit, spelling → id. */
  readonly specials: Readonly<Record<string, number>>;
  readonly bos: string;
  readonly eos: string;
  /** Templates that only know alternating user/assistant turns (and an optional first system message). */
  readonly alternating: boolean;
}

/** From each family's published tokenizer_config.json (added_tokens_decoder). */
export const TEMPLATE_VOCABULARIES: Record<TemplatedFamily, TemplateVocabulary> = {
  llama3: {
    specials: {
      '<|begin_of_text|>': 128000,
      '<|end_of_text|>': 128001,
      '<|start_header_id|>': 128006,
      '<|end_header_id|>': 128007,
      '<|eom_id|>': 128008,
      '<|eot_id|>': 128009,
      '<|python_tag|>': 128010,
    },
    bos: '<|begin_of_text|>',
    eos: '<|eot_id|>',
    alternating: false,
  },
  llama2: { specials: { '<s>': 1, '</s>': 2 }, bos: '<s>', eos: '</s>', alternating: true },
  mistral: { specials: { '<s>': 1, '</s>': 2 }, bos: '<s>', eos: '</s>', alternating: true },
  qwen3: {
    specials: {
      '<|endoftext|>': 151643,
      '<|im_start|>': 151644,
      '<|im_end|>': 151645,
      '<tool_call>': 151657,
      '</tool_call>': 151658,
      '<tool_response>': 151665,
      '</tool_response>': 151666,
      '<think>': 151667,
      '</think>': 151668,
    },
    bos: '',
    eos: '<|im_end|>',
    alternating: false,
  },
};

/** Marks a special-token spelling in client text as text (and itself, doubled): private use, never in a vocabulary's specials. */
const MARK = '\uE000';

const compiled = new Map<
  TemplatedFamily,
  { template: Template; split: RegExp; escape: RegExp; unset: Readonly<Record<string, undefined>> }
>();

/** What renderChat itself passes to every template. */
const RENDER_ITEMS = ['messages', 'bos_token', 'eos_token', 'add_generation_prompt'];

/**
 * Every name the template reads that neither the render nor the engine's globals define (`tools`, `date_string`,
 * ...), to pass as undefined: a read of an undeclared name costs the engine a thrown and caught Error, six per
 * Llama 3 render, while an undefined one reads the same (`is defined` false, renders empty) without the throw.
 */
function unsetNames(template: Template): Record<string, undefined> {
  const names = new Set<string>();
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) for (const child of node) walk(child);
    else if (node !== null && typeof node === 'object') {
      const n = node as { type?: unknown; value?: unknown };
      if (n.type === 'Identifier' && typeof n.value === 'string') names.add(n.value);
      for (const child of Object.values(node)) walk(child);
    }
  };
  walk(template.parsed);
  const out: Record<string, undefined> = {};
  for (const name of names) {
    if (RENDER_ITEMS.includes(name) || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) continue;
    if (!definedByEngine(name)) out[name] = undefined;
  }
  return out;
}

/** Whether the engine defines `name` itself (a global such as `range`); false too for a word it will not read as a name. */
function definedByEngine(name: string): boolean {
  try {
    return new Template(`{% if ${name} is defined %}1{% endif %}`).render({}) === '1';
  } catch {
    return true; // a keyword (`not`, `in`, ...): never a variable lookup, so nothing to pass
  }
}

function compile(family: TemplatedFamily) {
  let c = compiled.get(family);
  if (!c) {
    const spellings = Object.keys(TEMPLATE_VOCABULARIES[family].specials).sort((a, b) => b.length - a.length);
    const alternatives = spellings.map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|');
    const template = new Template(CHAT_TEMPLATES[family]);
    c = {
      template,
      unset: unsetNames(template),
      split: new RegExp(`(${alternatives})`, 'g'),
      escape: new RegExp(`${MARK}|${alternatives}`, 'g'),
    };
    compiled.set(family, c);
  }
  return c;
}

/** The conversation rendered by the family's template, with an open assistant turn; client text escaped. */
export function renderChat(family: TemplatedFamily, conversation: readonly ConversationMessage[]): string {
  const vocabulary = TEMPLATE_VOCABULARIES[family];
  const { escape } = compile(family);
  const text = (s: string): string => s.replace(escape, (m) => (m === MARK ? MARK + MARK : m[0] + MARK + m.slice(1)));
  const messages = (vocabulary.alternating ? alternatingTurns(conversation) : conversation).map((m) =>
    templateMessage(m, text),
  );
  const plan = renderPlan(family, messages);
  return plan ? applyPlan(plan, messages) : render(family, messages);
}

/** The family's template rendered by the engine over these (escaped) messages. */
function render(family: TemplatedFamily, messages: readonly Record<string, unknown>[]): string {
  const vocabulary = TEMPLATE_VOCABULARIES[family];
  const { template, unset } = compile(family);
  try {
    return template.render({
      ...unset,
      messages,
      bos_token: vocabulary.bos,
      eos_token: vocabulary.eos,
      add_generation_prompt: true,
    });
  } catch (err) {
    // The template's own raise_exception (a conversation shape the model's template refuses), or a render failure.
    const reason = err instanceof Error ? err.message : String(err);
    throw badRequest(
      `the ${family} chat template cannot render these messages: ${reason}`,
      'messages',
      'invalid_messages',
    );
  }
}

/** What a template did to a content's whitespace where it inserted it: kept, trimmed, or trimmed at one end. */
type Trim = 'none' | 'both' | 'start' | 'end';

/**
 * A render as the text around the messages' contents, for conversations of one structure: `literals[0]`, then
 * per slot the content of message `slots[k].message` (trimmed as the template trims it) and `literals[k + 1]`.
 */
interface RenderPlan {
  readonly literals: readonly string[];
  readonly slots: readonly { readonly message: number; readonly trim: Trim }[];
}

/**
 * Plans by structure: the family, then each message's role and whether its content is empty. A structure is
 * planned the second time it is seen (so one that never comes back costs no planning renders); one whose render
 * no plan reproduces is held as null. Bounded; past the bound the oldest structure goes.
 */
const plans = new Map<string, RenderPlan | null | 'seen'>();
const MAX_PLANS = 256;

/** Stand-ins for the contents while a structure is planned: private use, never in a vocabulary's specials. */
const PROBE_OPEN = '\uE001';
const PROBE_CLOSE = '\uE002';
/** Whitespace around a stand-in: the first probe tells a trimmed content from one inserted as it is... */
const PAD = ' \n ';
/** ...and the second checks the plan against the engine with other whitespace (a template that strips only \n). */
const CHECK_PAD = '\n\t\n';

/**
 * The template rendered once per conversation structure instead of once per request: most of a render's cost is
 * the engine interpreting the template, and what the published templates do with a plain text message's content
 * is insert it, trimmed or not, at places that follow from the roles and which contents are empty (the one
 * property of a content they branch on; the special-token spellings they test for are escaped out of client
 * text). The engine renders the structure with stand-in contents, twice, and a plan is kept only when it
 * reproduces the second render exactly; anything else (tool calls, names, a template that changes a content in
 * another way, one that refuses the structure) is rendered by the engine on every request.
 */
function renderPlan(family: TemplatedFamily, messages: readonly Record<string, unknown>[]): RenderPlan | null {
  let key: string = family;
  for (const m of messages) {
    if (Object.keys(m).length !== 2 || typeof m.role !== 'string' || typeof m.content !== 'string') return null;
    // Whitespace only: empty once trimmed, which a template could branch on after trimming.
    if (m.content !== '' && m.content.trim() === '') return null;
    key += `|${m.role}${m.content === '' ? '' : '+'}`;
  }
  const known = plans.get(key);
  if (known !== undefined && known !== 'seen') return known;
  const plan = known === 'seen' ? makePlan(family, messages) : null;
  if (known === undefined && plans.size >= MAX_PLANS) plans.delete(plans.keys().next().value!);
  plans.set(key, plan ?? (known === 'seen' ? null : 'seen'));
  return plan;
}

function makePlan(family: TemplatedFamily, messages: readonly Record<string, unknown>[]): RenderPlan | null {
  const probe = (pad: string, tag: string) =>
    messages.map((m, i) => ({
      role: m.role,
      content: m.content === '' ? '' : `${pad}${PROBE_OPEN}${tag}${i}${PROBE_CLOSE}${pad}`,
    }));
  let first: string;
  let second: string;
  const firstProbe = probe(PAD, 'a');
  const secondProbe = probe(CHECK_PAD, 'b');
  try {
    first = render(family, firstProbe);
    second = render(family, secondProbe);
  } catch {
    return null; // refused: every request of this structure gets the engine's own error
  }
  const literals: string[] = [];
  const slots: { message: number; trim: Trim }[] = [];
  const found = new RegExp(`(${escapeRegExp(PAD)})?${PROBE_OPEN}a(\\d+)${PROBE_CLOSE}(${escapeRegExp(PAD)})?`, 'g');
  let from = 0;
  for (const match of first.matchAll(found)) {
    const kept = [match[1] !== undefined, match[3] !== undefined];
    const trim: Trim = kept[0] ? (kept[1] ? 'none' : 'end') : kept[1] ? 'start' : 'both';
    literals.push(first.slice(from, match.index));
    slots.push({ message: Number(match[2]), trim });
    from = match.index + match[0].length;
  }
  literals.push(first.slice(from));
  const plan = { literals, slots };
  if (literals.some((l) => l.includes(PROBE_OPEN) || l.includes(PROBE_CLOSE))) return null;
  return applyPlan(plan, secondProbe) === second ? plan : null;
}

function applyPlan(plan: RenderPlan, messages: readonly Record<string, unknown>[]): string {
  let out = plan.literals[0]!;
  for (let k = 0; k < plan.slots.length; k++) {
    const { message, trim } = plan.slots[k]!;
    out += trimmed(messages[message]!.content as string, trim) + plan.literals[k + 1]!;
  }
  return out;
}

function trimmed(content: string, trim: Trim): string {
  if (trim === 'none') return content;
  return trim === 'both' ? content.trim() : trim === 'start' ? content.trimStart() : content.trimEnd();
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Token ids of a rendered prompt: the template's special tokens as their ids, the text between them through
 * `encodeText` (which sees the client's text unescaped).
 */
export function renderedIds(
  family: TemplatedFamily,
  rendered: string,
  encodeText: (text: string) => number[],
  budget = Infinity,
): number[] {
  const { split } = compile(family);
  const specials = TEMPLATE_VOCABULARIES[family].specials;
  const ids: number[] = [];
  for (const part of rendered.split(split)) {
    if (part === '') continue;
    const special = specials[part];
    if (special !== undefined) ids.push(special);
    else for (const id of encodeText(unescape(part))) ids.push(id);
    // Past the budget the request is refused anyway: stop spending tokenizer time on it.
    if (ids.length > budget) break;
  }
  return ids;
}

function unescape(text: string): string {
  return text.includes(MARK)
    ? text.replace(/\uE000(\uE000)?/g, (_m, doubled: string | undefined) => (doubled ? MARK : ''))
    : text;
}

/** A turn in the shape templates read (OpenAI's, with tool-call arguments parsed, as vLLM passes them). */
function templateMessage(m: ConversationMessage, text: (s: string) => string): Record<string, unknown> {
  const role = m.role === 'developer' ? 'system' : m.role;
  const out: Record<string, unknown> = { role, content: text(m.content) };
  if (m.toolCalls && m.toolCalls.length > 0) {
    out.tool_calls = m.toolCalls.map((c) => ({
      id: c.id,
      type: 'function',
      function: { name: text(c.name), arguments: parsedArguments(c.arguments, text) },
    }));
  }
  if (m.toolCallId !== undefined) out.tool_call_id = m.toolCallId;
  if (m.name !== undefined) out.name = text(m.name);
  return out;
}

function parsedArguments(json: string, text: (s: string) => string): unknown {
  try {
    const value: unknown = JSON.parse(json);
    if (typeof value === 'object' && value !== null) return escapeStrings(value, text);
  } catch {
    // Not JSON: the template gets the text as the model wrote it.
  }
  return text(json);
}

function escapeStrings(value: unknown, text: (s: string) => string): unknown {
  if (typeof value === 'string') return text(value);
  if (Array.isArray(value)) return value.map((v) => escapeStrings(v, text));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [text(k), escapeStrings(v, text)]));
  }
  return value;
}

/**
 * For templates that take only an optional first system message and then strictly alternating user/assistant turns
 * (Llama 2, Mixtral): later system text and tool results join the next user turn, consecutive turns of one role
 * merge, a tool-calling turn carries its calls as text, and a conversation that opens with the assistant gets an
 * empty user turn first, so every conversation an agent sends renders.
 */
export function alternatingTurns(conversation: readonly ConversationMessage[]): ConversationMessage[] {
  const turns: { role: 'system' | 'user' | 'assistant'; content: string }[] = [];
  for (const m of conversation) {
    const calls = (m.toolCalls ?? []).map((c) => JSON.stringify({ name: c.name, arguments: c.arguments }));
    const content = [m.content, ...calls].filter((s) => s !== '').join('\n');
    const system = m.role === 'system' || m.role === 'developer';
    const role =
      system && turns.every((t) => t.role === 'system') ? 'system' : m.role === 'assistant' ? 'assistant' : 'user';
    const last = turns.at(-1);
    if (last && last.role === role) last.content = `${last.content}\n\n${content}`;
    else turns.push({ role, content });
  }
  const first = turns.findIndex((t) => t.role !== 'system');
  if (first !== -1 && turns[first]!.role === 'assistant') turns.splice(first, 0, { role: 'user', content: '' });
  if (first === -1) turns.push({ role: 'user', content: '' });
  return turns;
}
