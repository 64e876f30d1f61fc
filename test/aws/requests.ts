/** Requests a client sends through the emulated REST API, and what it reads back. */
import type { ApiResponse } from './rest-api';
import type { EmulatedStack } from './stack';

/** Common English words, each one Llama 3 token with its leading space: a prompt of N of them is N tokens. */
const WORDS = 'the of and to in is that for it with as on be at by this have from or one'.split(' ');

/** Tokens Llama 3.1/3.3's chat template adds around a user message (the system block and headers). */
export const CHAT_TEMPLATE_TOKENS = 35;

export function promptOfTokens(tokens: number): string {
  return Array.from({ length: Math.round(tokens) }, (_, k) => WORDS[(k * 7) % WORDS.length]).join(' ');
}

export function chatRequest(prompt: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { model: 'llama-3.3-70b', messages: [{ role: 'user', content: prompt }], max_tokens: 16, seed: 7, ...extra };
}

export function completionOf(body: string): { id: string; text: string } {
  const parsed = JSON.parse(body) as { id: string; choices: { message: { content: string } }[] };
  return { id: parsed.id, text: parsed.choices[0]?.message.content ?? '' };
}

export interface RequestView {
  readonly id: string;
  readonly state: string;
  readonly output_text: string;
  readonly disagg: {
    readonly mode: string;
    readonly timeline: { event: string; detail?: Record<string, unknown> }[];
  } & Record<string, unknown>;
  readonly [key: string]: unknown;
}

/** GET /v1/requests/{id}: the poll URL a 202 names. */
export async function requestView(stack: EmulatedStack, id: string): Promise<RequestView> {
  const res = await stack.api.request('GET', `/v1/requests/${id}`);
  if (res.status !== 200) throw new Error(`GET /v1/requests/${id} answered ${res.status}: ${res.body}`);
  return JSON.parse(res.body) as RequestView;
}

/** The kv_put event's detail: blob bytes and whether they travelled inline. */
export function kvPut(view: RequestView): { bytes: number; inline: boolean } | undefined {
  const event = view.disagg.timeline.find((t) => t.event === 'kv_put');
  return event?.detail as { bytes: number; inline: boolean } | undefined;
}

/** The request's KV went through the KV store by reference, and was about `megabytes` (within 5%). */
export function expectStoredKvOf(view: RequestView, megabytes: number): void {
  const put = kvPut(view);
  if (!put || put.inline) throw new Error(`expected a stored KV blob, got ${JSON.stringify(put)}`);
  const ratio = put.bytes / (megabytes * 1e6);
  if (ratio < 0.95 || ratio > 1.05)
    throw new Error(`expected a KV blob of about ${megabytes} MB, got ${put.bytes} bytes`);
}

/** Polls the request until it is done (or `timeoutMs`), as a client told 202 does. */
export async function pollUntilDone(stack: EmulatedStack, id: string, timeoutMs = 60_000): Promise<RequestView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const view = await requestView(stack, id);
    if (view.done === true || Date.now() > deadline) return view;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** The text of an SSE body's content deltas. */
export function streamedText(body: string): string {
  return body
    .split('\n\n')
    .filter((block) => block.startsWith('data: ') && block !== 'data: [DONE]')
    .map((block) => JSON.parse(block.slice('data: '.length)) as { choices?: { delta?: { content?: string } }[] })
    .map((chunk) => chunk.choices?.[0]?.delta?.content ?? '')
    .join('');
}

/**
 * POSTs a completion and returns its request once done: from the 200 at once, or, when the request outlived the
 * buffered response (202 on a loaded machine), by polling the URL the 202 names, as a client does.
 */
export async function completeRequest(
  stack: EmulatedStack,
  path: string,
  body: Record<string, unknown>,
): Promise<{ response: ApiResponse; view: RequestView }> {
  const response = await stack.api.request('POST', path, body);
  if (response.status !== 200 && response.status !== 202) {
    throw new Error(`POST ${path} answered ${response.status}: ${response.body} ${JSON.stringify(response.headers)}`);
  }
  const { id } = JSON.parse(response.body) as { id: string };
  return { response, view: await pollUntilDone(stack, id) };
}
