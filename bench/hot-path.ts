/**
 * The per-request work of the handoff and the API, each against the least its job needs, in the same
 * process and interleaved blocks: the KV blob's encode + verified decode against one copy of the bytes and
 * two native CRC-32C passes; the descriptor against plain JSON of the same object; tokenizing a prompt
 * against one UTF-8 pass over its text. Also the floors themselves: CRC-32C native and in JavaScript, a copy.
 */
import { fastestCrc32c } from '../lib/adapters/checksum-native';
import { loadTokenizer, promptIdsFor, tokenizerFamily } from '../lib/adapters/tokenizers';
import type { ModelId } from '../lib/core/emulator';
import { crc32c as javascriptCrc32c } from '../lib/core/handoff/checksum';
import {
  decodeDescriptor,
  DESCRIPTOR_VERSION,
  encodeDescriptor,
  refKv,
  type HandoffDescriptor,
} from '../lib/core/handoff/descriptor';
import { decodeKvBlob, encodeKvBlob, kvBlobChecksum } from '../lib/core/handoff/kv-blob';
import type { ChatMessage } from '../lib/core/ports';
import createNullBackend from './null-backend';
import type { BenchPrompt } from './prompts';
import { fmt, median, ratioRow, spreadOf, type BenchRow } from './results';

export interface HotPathContext {
  readonly model: ModelId;
  readonly prompts: readonly BenchPrompt[];
  readonly progress: (line: string) => void;
  readonly quick: boolean;
}

/** Ms per call of `fn`, over `n` calls. */
function timeEach(n: number, fn: () => unknown): number {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) fn();
  return (performance.now() - t0) / n;
}

/** Per-block ratios project / floor, the two timed alternately within each block after a warm-up. */
function blocks(
  count: number,
  n: number,
  project: () => unknown,
  floor: () => unknown,
): { ratios: number[]; projectMs: number[]; floorMs: number[] } {
  timeEach(Math.max(3, n / 5), project);
  timeEach(Math.max(3, n / 5), floor);
  const out = { ratios: [] as number[], projectMs: [] as number[], floorMs: [] as number[] };
  for (let b = 0; b < count; b++) {
    let p: number;
    let f: number;
    if (b % 2 === 0) {
      p = timeEach(n, project);
      f = timeEach(n, floor);
    } else {
      f = timeEach(n, floor);
      p = timeEach(n, project);
    }
    out.ratios.push(p / f);
    out.projectMs.push(p);
    out.floorMs.push(f);
  }
  return out;
}

const ms = (values: readonly number[]): string => `${fmt(median(values))} ms`;

export async function hotPathBench(ctx: HotPathContext): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const count = ctx.quick ? 3 : 5;
  const native = fastestCrc32c();
  ctx.progress(`hot path: KV blob and checksums (${native.name} CRC-32C)`);

  const { kv } = await createNullBackend().prefill(
    Array.from({ length: 1000 }, (_, i) => i),
    { temperature: 0, topP: 1, seed: 0, maxTokens: 1 },
  );
  const blob = encodeKvBlob(kv!, { crc32c: native.crc32c });
  const mb = blob.length / (1024 * 1024);
  const scratch = new Uint8Array(blob.length);

  const crcs = blocks(
    count,
    40,
    () => javascriptCrc32c(blob),
    () => native.crc32c(blob),
  );
  rows.push(
    ratioRow(
      {
        section: 'hot path (1,000-token KV blob, 1 MB)',
        metric: 'CRC-32C in JavaScript (the fallback)',
        floor: `${native.name} CRC-32C`,
        note: `JavaScript ${fmt(mb / (median(crcs.projectMs) / 1000))} MB/s, ${native.name} ${fmt(mb / (median(crcs.floorMs) / 1000))} MB/s`,
      },
      crcs.ratios,
    ),
  );
  const codec = blocks(
    count,
    40,
    () => decodeKvBlob(encodeKvBlob(kv!, { crc32c: native.crc32c }), { crc32c: native.crc32c, copy: false }),
    () => {
      scratch.set(blob);
      native.crc32c(blob);
      native.crc32c(scratch);
    },
  );
  rows.push(
    ratioRow(
      {
        section: 'hot path (1,000-token KV blob, 1 MB)',
        metric: 'encode + verified decode',
        floor: `one copy of the bytes + two ${native.name} CRC-32C passes`,
        note: `project ${ms(codec.projectMs)}, floor ${ms(codec.floorMs)} (a 1 MB copy alone: ${fmt(timeEach(40, () => scratch.set(blob)))} ms)`,
      },
      codec.ratios,
    ),
  );

  ctx.progress('hot path: handoff descriptor');
  const chat = ctx.prompts.find((p) => p.name === 'chat')!;
  const descriptor: HandoffDescriptor = {
    v: DESCRIPTOR_VERSION,
    requestId: 'chatcmpl-00000000-0000-4000-8000-000000000000',
    attempt: 1,
    model: ctx.model,
    promptTokens: 1000,
    promptIds: Array.from({ length: 1000 }, (_, i) => (i * 7919) % 128_000),
    messages: chat.bodies[0]!.messages as ChatMessage[],
    sampling: { temperature: 0, topP: 1, seed: 0, maxTokens: 100 },
    deadlineMs: Date.now() + 300_000,
    createdAtMs: Date.now(),
    kv: refKv('abcdefghijklmnopqrstuvwx', blob, kvBlobChecksum(blob)),
    firstToken: { id: 24748, text: ' hello' },
    stamps: { prefill: { emulatedMs: 12.5, measuredMs: 0.2 } },
    mode: 'disaggregated',
  };
  const desc = blocks(
    count,
    200,
    () => decodeDescriptor(encodeDescriptor(descriptor)),
    () => JSON.parse(JSON.stringify(descriptor)),
  );
  rows.push(
    ratioRow(
      {
        section: 'hot path (handoff descriptor, 1,000 prompt ids + the chat)',
        metric: 'encode + validated decode',
        floor: 'JSON.stringify + JSON.parse of the same object',
        note: `project ${ms(desc.projectMs)}, floor ${ms(desc.floorMs)}; ${encodeDescriptor(descriptor).length} bytes`,
      },
      desc.ratios,
    ),
  );

  const family = tokenizerFamily(ctx.model);
  const tokenizer = await loadTokenizer(family);
  const utf8 = new TextEncoder();
  for (const prompt of ctx.prompts) {
    ctx.progress(`hot path: tokenizing the ${prompt.name} prompt`);
    // Each call takes the next of the prompt's variants, for the project and the floor alike.
    let next = 0;
    let nextText = 0;
    const texts = prompt.bodies.map((b) =>
      prompt.name === 'chat' ? (b.messages as ChatMessage[]).map((m) => m.content).join('') : (b.prompt as string),
    );
    const tokenize = (): number[] => {
      const body = prompt.bodies[next++ % prompt.bodies.length]!;
      return prompt.name === 'chat'
        ? promptIdsFor(tokenizer, family, 'chat', body.messages as ChatMessage[])
        : promptIdsFor(tokenizer, family, 'completion', body.prompt as string);
    };
    const tok = blocks(count, 16, tokenize, () => utf8.encode(texts[nextText++ % texts.length]!));
    rows.push(
      ratioRow(
        {
          section: `hot path (tokenizing the ${prompt.name} prompts, ${median(prompt.tokens)} tokens)`,
          metric: `${family} tokenizer under its template`,
          floor: 'one UTF-8 encoding pass over the text',
          note: `project ${ms(tok.projectMs)} (${fmt(median(prompt.tokens) / (median(tok.projectMs) / 1000) / 1000)}k tokens/s), floor ${ms(tok.floorMs)}; spread of the project alone ${fmt(spreadOf(tok.projectMs).min)}..${fmt(spreadOf(tok.projectMs).max)} ms`,
        },
        tok.ratios,
      ),
    );
  }
  return rows;
}
