import { describe, expect, it } from 'vitest';
import { base64DecodedLength, base64ToBytes, bytesToBase64 } from '../../lib/core/handoff/base64';
import { crc32c } from '../../lib/core/handoff/checksum';
import {
  DESCRIPTOR_VERSION,
  DescriptorError,
  INLINE_KV_MAX_BYTES,
  MAX_DESCRIPTOR_BYTES,
  decodeDescriptor,
  encodeDescriptor,
  fitsInline,
  inlineKv,
  inlineKvBytes,
  refKv,
  verifyKvBytes,
} from '../../lib/core/handoff/descriptor';
import type { DescriptorErrorCode, HandoffDescriptor } from '../../lib/core/handoff/descriptor';
import { mulberry32 } from '../../lib/core/random';

function randInt(rng: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}

function randomBytes(rng: () => number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = randInt(rng, 0, 255);
  return b;
}

const blob = randomBytes(mulberry32(9), 1000);

function sample(overrides: Partial<HandoffDescriptor> = {}): HandoffDescriptor {
  return {
    v: DESCRIPTOR_VERSION,
    requestId: 'req-0001',
    attempt: 1,
    model: 'llama-3.1-70b',
    promptTokens: 5,
    promptIds: [128000, 9906, 11, 1917, 0],
    messages: [
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'Hello, world!' },
    ],
    sampling: { temperature: 0.7, topP: 0.9, seed: 42, maxTokens: 64, stop: ['\n\n'] },
    deadlineMs: 1_767_225_630_000,
    createdAtMs: 1_767_225_600_000,
    kv: refKv('kv/req-0001/1', blob),
    firstToken: { id: 791, text: ' The' },
    stamps: {
      received: { emulatedMs: 0, measuredMs: 0.12 },
      prefillEnd: { emulatedMs: 41.5, measuredMs: 3.4 },
    },
    mode: 'disaggregated',
    ...overrides,
  };
}

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to throw, but it returned');
}

function expectDescriptorError(fn: () => unknown, code: DescriptorErrorCode): DescriptorError {
  const err = catchError(fn);
  expect(err).toBeInstanceOf(DescriptorError);
  expect((err as DescriptorError).code, (err as Error).message).toBe(code);
  return err as DescriptorError;
}

/** The sample as a plain JSON object, to be broken in ways the types would not allow. */
function rawSample(): Record<string, unknown> {
  return JSON.parse(JSON.stringify(sample())) as Record<string, unknown>;
}

describe('handoff descriptor round trip', () => {
  it('decodes what it encodes, for each KV location kind', () => {
    for (const kv of [refKv('kv/abc', blob), inlineKv(blob), { kind: 'none' } as const]) {
      const d = sample({ kv });
      expect(decodeDescriptor(encodeDescriptor(d))).toEqual(d);
    }
  });

  it('round-trips without messages, without stop, with a null first token and a text-only token', () => {
    const minimal = sample({
      messages: undefined,
      sampling: { temperature: 0, topP: 1, seed: -7, maxTokens: 1 },
      firstToken: null,
      stamps: {},
      mode: 'colocated',
    });
    const back = decodeDescriptor(encodeDescriptor(minimal));
    expect(back.messages).toBeUndefined();
    expect(back.firstToken).toBeNull();
    expect(back.sampling).toEqual(minimal.sampling);
    const textOnly = sample({ firstToken: { id: null, text: 'Hi' }, kv: { kind: 'none' } });
    expect(decodeDescriptor(encodeDescriptor(textOnly)).firstToken).toEqual({ id: null, text: 'Hi' });
  });

  it('writes the version as field "v" of a JSON object', () => {
    expect(JSON.parse(encodeDescriptor(sample())).v).toBe(3);
    expect(DESCRIPTOR_VERSION).toBe(3);
  });

  it('carries the tools and tool-call histories (version 3), and refuses them in an older version', () => {
    const tools = {
      tools: [{ name: 'weather', description: 'a city', parameters: { type: 'object' } }],
      choice: { name: 'weather' },
    } as const;
    const messages = [
      { role: 'user', content: 'Paris?' },
      { role: 'assistant', content: '', toolCalls: [{ id: 'c1', name: 'weather', arguments: '{"city":"Paris"}' }] },
      { role: 'tool', content: '21', toolCallId: 'c1' },
    ] as const;
    const d = sample({ tools, messages });
    expect(decodeDescriptor(encodeDescriptor(d))).toEqual(d);
    const v2 = { ...JSON.parse(encodeDescriptor(d)), v: 2 };
    expect(expectDescriptorError(() => decodeDescriptor(JSON.stringify(v2)), 'invalid').field).toBe('messages[1]');
    const badChoice = { ...JSON.parse(encodeDescriptor(d)), tools: { ...tools, choice: 'sometimes' } };
    expect(expectDescriptorError(() => decodeDescriptor(JSON.stringify(badChoice)), 'invalid').field).toBe(
      'tools.choice',
    );
  });

  it("carries the prefill span's traceparent (version 2), and reads version 1 descriptors without one", () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    expect(decodeDescriptor(encodeDescriptor(sample({ traceparent }))).traceparent).toBe(traceparent);
    // What the previous release's prefill wrote: version 1, no traceparent field.
    const v1 = decodeDescriptor(JSON.stringify({ ...rawSample(), v: 1 }));
    expect(v1.v).toBe(1);
    expect(v1.traceparent).toBeUndefined();
  });

  it('refuses a traceparent in a version 1 descriptor, and one that is not a W3C traceparent', () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const v1 = JSON.stringify({ ...rawSample(), v: 1, traceparent });
    expect(expectDescriptorError(() => decodeDescriptor(v1), 'invalid').field).toBe('traceparent');
    for (const bad of [
      'not-a-traceparent',
      '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
      'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      '00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01',
      7,
    ]) {
      const raw = JSON.stringify({ ...rawSample(), traceparent: bad });
      expect(expectDescriptorError(() => decodeDescriptor(raw), 'invalid').field).toBe('traceparent');
    }
  });

  it('carries inline KV bytes exactly, verified by byte count and checksum', () => {
    const d = decodeDescriptor(encodeDescriptor(sample({ kv: inlineKv(blob) })));
    if (d.kv.kind !== 'inline') throw new Error('expected inline kv');
    expect(d.kv.bytes).toBe(blob.length);
    expect(d.kv.checksum).toBe(crc32c(blob));
    expect(inlineKvBytes(d.kv)).toEqual(blob);
  });

  it('decodes inline KV bytes once on the way in, hands them out once, and never trusts base64 changed since', () => {
    const d = decodeDescriptor(encodeDescriptor(sample({ kv: inlineKv(blob) })));
    if (d.kv.kind !== 'inline') throw new Error('expected inline kv');
    const first = inlineKvBytes(d.kv);
    const second = inlineKvBytes(d.kv);
    expect(first).toEqual(blob);
    expect(second).toEqual(blob);
    // The second read decodes again: the first holder may keep (and view) its array.
    expect(second).not.toBe(first);
    // A location inlineKv built, with its base64 replaced after: checked in full again when encoded.
    const kv = inlineKv(blob) as { data: string };
    kv.data = `${kv.data.slice(0, -8)}!!!!${kv.data.slice(-4)}`;
    const bad = sample({ kv: kv as HandoffDescriptor['kv'] });
    expect(expectDescriptorError(() => encodeDescriptor(bad), 'invalid').field).toBe('kv.data');
  });

  it('rejects inline KV bytes whose checksum or length does not match, naming the field', () => {
    const kv = inlineKv(blob);
    if (kv.kind !== 'inline') throw new Error('expected inline kv');
    const tampered = blob.slice();
    tampered[500]! ^= 1;
    expect(expectDescriptorError(() => inlineKvBytes({ ...kv, data: bytesToBase64(tampered) }), 'invalid').field).toBe(
      'kv.checksum',
    );
    expect(expectDescriptorError(() => verifyKvBytes(kv, blob.subarray(1)), 'invalid').field).toBe('kv.bytes');
    expect(expectDescriptorError(() => inlineKvBytes({ ...kv, data: 'AB C' }), 'invalid').field).toBe('kv.data');
  });

  it('fits a full INLINE_KV_MAX_BYTES blob inline next to a 4096-token prompt', () => {
    expect(fitsInline(INLINE_KV_MAX_BYTES)).toBe(true);
    expect(fitsInline(INLINE_KV_MAX_BYTES + 1)).toBe(false);
    const ids = Array.from({ length: 4096 }, (_, i) => 100_000 + i);
    const d = sample({ kv: inlineKv(new Uint8Array(INLINE_KV_MAX_BYTES)), promptTokens: ids.length, promptIds: ids });
    expect(new TextEncoder().encode(encodeDescriptor(d)).length).toBeLessThan(MAX_DESCRIPTOR_BYTES);
  });
});

describe('handoff descriptor size limit', () => {
  it('is the 1 MiB SQS message limit', () => {
    expect(MAX_DESCRIPTOR_BYTES).toBe(1_048_576);
    expect(INLINE_KV_MAX_BYTES).toBeLessThan(MAX_DESCRIPTOR_BYTES);
  });

  /** A descriptor whose encoding is exactly `target` UTF-8 bytes, padded through a message's content. */
  function descriptorOfSize(target: number, pad = 'a'): HandoffDescriptor {
    const base = sample({ messages: [{ role: 'user', content: '' }] });
    const baseBytes = new TextEncoder().encode(JSON.stringify(base)).length;
    const padBytes = new TextEncoder().encode(pad).length;
    const content =
      pad.repeat(Math.floor((target - baseBytes) / padBytes)) + 'a'.repeat((target - baseBytes) % padBytes);
    return sample({ messages: [{ role: 'user', content }] });
  }

  it('accepts a descriptor of exactly MAX_DESCRIPTOR_BYTES and rejects one byte more, naming size and limit', () => {
    const atLimit = descriptorOfSize(MAX_DESCRIPTOR_BYTES);
    const text = encodeDescriptor(atLimit);
    expect(new TextEncoder().encode(text).length).toBe(MAX_DESCRIPTOR_BYTES);
    expect(decodeDescriptor(text)).toEqual(atLimit);
    const err = expectDescriptorError(() => encodeDescriptor(descriptorOfSize(MAX_DESCRIPTOR_BYTES + 1)), 'too_large');
    expect(err.message).toContain(String(MAX_DESCRIPTOR_BYTES + 1));
    expect(err.message).toContain(String(MAX_DESCRIPTOR_BYTES));
  });

  it('counts UTF-8 bytes, not characters', () => {
    // "€" is 3 UTF-8 bytes: under the limit in characters, over it in bytes.
    const d = descriptorOfSize(MAX_DESCRIPTOR_BYTES + 3, '€');
    expect(JSON.stringify(d).length).toBeLessThan(MAX_DESCRIPTOR_BYTES);
    expectDescriptorError(() => encodeDescriptor(d), 'too_large');
    const text = JSON.stringify(d);
    expectDescriptorError(() => decodeDescriptor(text), 'too_large');
  });

  it('rejects a descriptor too large because of its prompt ids', () => {
    const ids = Array.from({ length: 200_000 }, (_, i) => 100_000 + i);
    expectDescriptorError(() => encodeDescriptor(sample({ promptTokens: ids.length, promptIds: ids })), 'too_large');
  });

  it('rejects oversized input before parsing it', () => {
    // Not JSON at all: only the size check can produce too_large rather than malformed.
    expectDescriptorError(() => decodeDescriptor('{'.repeat(MAX_DESCRIPTOR_BYTES + 1)), 'too_large');
  });
});

describe('handoff descriptor decoding errors', () => {
  it('reports version_mismatch naming the version sent and those read', () => {
    const raw = { ...rawSample(), v: 4 };
    const err = expectDescriptorError(() => decodeDescriptor(JSON.stringify(raw)), 'version_mismatch');
    expect(err.message).toContain('version 4 is not supported');
    expect(err.message).toContain('reads versions 1, 2 and 3');
  });

  it('checks the version before the other fields, since another version may have other fields', () => {
    expectDescriptorError(() => decodeDescriptor(JSON.stringify({ v: 7, somethingNew: true })), 'version_mismatch');
  });

  it('reports malformed for text that is not JSON or not a string', () => {
    for (const text of ['', '{', 'nul', '{"v":1,}', "{'v':1}", '\u0000']) {
      expectDescriptorError(() => decodeDescriptor(text), 'malformed');
    }
    for (const v of [null, undefined, 42, {}, new Uint8Array(3)]) {
      expectDescriptorError(() => decodeDescriptor(v as unknown as string), 'malformed');
    }
  });

  it('reports invalid (root) for JSON that is not an object', () => {
    for (const text of ['[]', 'null', '42', '"v"', 'true']) {
      expect(expectDescriptorError(() => decodeDescriptor(text), 'invalid').field).toBe('(root)');
    }
  });

  // Deliberately untyped: each case breaks the descriptor in a way its type would forbid.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  type Loose = any;
  /** [field the error must name, how to break a raw sample]. */
  const breakages: [string, (d: Loose) => void][] = [
    ['v', (d) => delete d.v],
    ['v', (d) => (d.v = '1')],
    ['requestId', (d) => delete d.requestId],
    ['requestId', (d) => (d.requestId = '')],
    ['requestId', (d) => (d.requestId = 17)],
    ['requestId', (d) => (d.requestId = 'r'.repeat(257))],
    ['attempt', (d) => (d.attempt = 0)],
    ['attempt', (d) => (d.attempt = 1.5)],
    ['attempt', (d) => (d.attempt = '1')],
    ['model', (d) => delete d.model],
    ['model', (d) => (d.model = null)],
    ['promptTokens', (d) => (d.promptTokens = -1)],
    ['promptTokens', (d) => delete d.promptTokens],
    ['promptIds', (d) => (d.promptTokens = 4)],
    ['promptIds', (d) => (d.promptIds = '1,2,3')],
    ['promptIds[1]', (d) => (d.promptIds[1] = -3)],
    ['promptIds[2]', (d) => (d.promptIds[2] = 2.5)],
    ['promptIds[4]', (d) => (d.promptIds[4] = '0')],
    ['messages', (d) => (d.messages = { role: 'user' })],
    ['messages[0]', (d) => (d.messages[0] = 'hi')],
    ['messages[1].role', (d) => (d.messages[1].role = 'robot')],
    ['messages[1].content', (d) => (d.messages[1].content = 5)],
    ['messages[0].name', (d) => (d.messages[0].name = 'x')],
    ['sampling', (d) => delete d.sampling],
    ['sampling.temperature', (d) => (d.sampling.temperature = -0.1)],
    ['sampling.temperature', (d) => (d.sampling.temperature = null)],
    ['sampling.topP', (d) => (d.sampling.topP = 0)],
    ['sampling.topP', (d) => (d.sampling.topP = 1.01)],
    ['sampling.seed', (d) => (d.sampling.seed = 0.5)],
    ['sampling.maxTokens', (d) => (d.sampling.maxTokens = 0)],
    ['sampling.stop', (d) => (d.sampling.stop = '\n')],
    ['sampling.stop[0]', (d) => (d.sampling.stop[0] = 3)],
    ['sampling.stream', (d) => (d.sampling.stream = true)],
    ['deadlineMs', (d) => (d.deadlineMs = -1)],
    ['deadlineMs', (d) => (d.deadlineMs = '2026-01-01')],
    ['createdAtMs', (d) => delete d.createdAtMs],
    ['kv', (d) => delete d.kv],
    ['kv.kind', (d) => (d.kv.kind = 's3')],
    ['kv.key', (d) => (d.kv.key = '')],
    ['kv.bytes', (d) => (d.kv.bytes = -1)],
    ['kv.checksum', (d) => (d.kv.checksum = 2 ** 32)],
    ['kv.checksum', (d) => (d.kv.checksum = -1)],
    ['kv.data', (d) => (d.kv.data = 'AAAA')],
    ['kv.data', (d) => (d.kv = { ...inlineKv(blob), data: 'not base64!' })],
    ['kv.bytes', (d) => (d.kv = { ...inlineKv(blob), bytes: 999 })],
    ['kv.key', (d) => (d.kv = { kind: 'none', key: 'k' })],
    ['firstToken', (d) => delete d.firstToken],
    ['firstToken', (d) => (d.firstToken = 'The')],
    ['firstToken.id', (d) => (d.firstToken.id = -1)],
    ['firstToken.text', (d) => delete d.firstToken.text],
    ['stamps', (d) => (d.stamps = [])],
    ['stamps', (d) => (d.stamps = { ['s'.repeat(129)]: { emulatedMs: 0, measuredMs: 0 } })],
    ['stamps.received', (d) => (d.stamps.received = 5)],
    ['stamps.received.measuredMs', (d) => delete d.stamps.received.measuredMs],
    ['stamps.prefillEnd.emulatedMs', (d) => (d.stamps.prefillEnd.emulatedMs = -2)],
    ['mode', (d) => (d.mode = 'both')],
    ['mode', (d) => delete d.mode],
    ['extra', (d) => (d.extra = 1)],
  ];

  it.each(breakages)('names %s when it is wrong (case %#)', (field, breakIt) => {
    const raw = rawSample();
    breakIt(raw);
    const decodeErr = expectDescriptorError(() => decodeDescriptor(JSON.stringify(raw)), 'invalid');
    expect(decodeErr.field).toBe(field);
    expect(decodeErr.message).toContain(field.length > 60 ? field.slice(0, 60) : field);
    // The encoder runs the same checks, so a bad descriptor never reaches the queue.
    const encodeErr = expectDescriptorError(() => encodeDescriptor(raw as unknown as HandoffDescriptor), 'invalid');
    expect(encodeErr.field).toBe(field);
  });

  it('names every required field when it is missing', () => {
    const required = Object.keys(rawSample()).filter((k) => k !== 'messages' && k !== 'v');
    expect(required).toHaveLength(12);
    for (const field of required) {
      const raw = rawSample();
      delete raw[field];
      expect(expectDescriptorError(() => decodeDescriptor(JSON.stringify(raw)), 'invalid').field).toBe(field);
    }
  });

  it('rejects NaN and Infinity in numeric fields on encode', () => {
    for (const temperature of [NaN, Infinity]) {
      const d = sample({ sampling: { ...sample().sampling, temperature } });
      expect(expectDescriptorError(() => encodeDescriptor(d), 'invalid').field).toBe('sampling.temperature');
    }
  });
});

describe('handoff descriptor decoder under fuzzing', () => {
  const valid = encodeDescriptor(sample({ kv: inlineKv(blob.subarray(0, 30)) }));
  const junk = ['{', '}', '[', ']', '"', ',', ':', '0', '-', '1e999', 'null', 'true', '\\', '\u00e9', '\ud800', ' '];
  const values: unknown[] = [null, true, -1, 0, 1.5, 2 ** 53, '', 'x', [], {}, [1, 'a'], { kind: 'ref' }];

  function mutateText(rng: () => number, text: string): string {
    let t = text;
    for (let k = randInt(rng, 1, 3); k > 0; k--) {
      const at = randInt(rng, 0, t.length);
      const op = randInt(rng, 0, 2);
      if (op === 0) t = t.slice(0, at) + junk[randInt(rng, 0, junk.length - 1)]! + t.slice(at);
      else if (op === 1) t = t.slice(0, at) + t.slice(at + randInt(rng, 1, 8));
      else t = t.slice(0, at);
    }
    return t;
  }

  /** Replaces one value anywhere in the parsed sample with a random JSON value of another kind. */
  function mutateValue(rng: () => number): string {
    const root = JSON.parse(valid) as Record<string, unknown>;
    let node: Record<string, unknown> = root;
    for (let depth = 0; depth < 4; depth++) {
      const keys = Object.keys(node);
      if (keys.length === 0) break;
      const key = keys[randInt(rng, 0, keys.length - 1)]!;
      const child = node[key];
      if (depth < 3 && typeof child === 'object' && child !== null && rng() < 0.6) {
        node = child as Record<string, unknown>;
        continue;
      }
      if (rng() < 0.2) delete node[key];
      else node[key] = values[randInt(rng, 0, values.length - 1)];
      break;
    }
    return JSON.stringify(root);
  }

  it('throws only DescriptorError with a message, for 3000 random and mutated inputs', () => {
    const rng = mulberry32(777);
    let accepted = 0;
    let rejected = 0;
    for (let i = 0; i < 3000; i++) {
      const kind = i % 3;
      const input =
        kind === 0
          ? Array.from({ length: randInt(rng, 0, 40) }, () => junk[randInt(rng, 0, junk.length - 1)]).join('')
          : kind === 1
            ? mutateText(rng, valid)
            : mutateValue(rng);
      try {
        decodeDescriptor(input);
        accepted++;
      } catch (err) {
        rejected++;
        expect(err).toBeInstanceOf(DescriptorError);
        expect(['too_large', 'malformed', 'version_mismatch', 'invalid']).toContain((err as DescriptorError).code);
        expect((err as Error).message.length).toBeGreaterThan(10);
      }
    }
    expect(rejected).toBeGreaterThan(2000);
    expect(accepted + rejected).toBe(3000);
  });
});

describe('base64 helpers', () => {
  it('match the standard padded encoding for every length 0..300', () => {
    const rng = mulberry32(12);
    for (let n = 0; n <= 300; n++) {
      const bytes = randomBytes(rng, n);
      const text = bytesToBase64(bytes);
      expect(text).toBe(Buffer.from(bytes).toString('base64'));
      expect(base64DecodedLength(text)).toBe(n);
      expect(base64ToBytes(text)).toEqual(bytes);
    }
  });

  it('handle 8 MiB without overflowing the stack', () => {
    const bytes = randomBytes(mulberry32(13), 8 * 1024 * 1024);
    const back = base64ToBytes(bytesToBase64(bytes));
    expect(back.length).toBe(bytes.length);
    expect(Buffer.compare(Buffer.from(back), Buffer.from(bytes))).toBe(0);
  });

  it('reject anything but canonical padded base64', () => {
    // Past the first group too, in the last group, and code units above 255 whose low byte is in the alphabet.
    const later = ['QUJDQ!==', 'QUJDREU\u0141', 'QUJD\u0141UJD', 'QUJDRA=A', 'QUJD=UJD'];
    for (const bad of [
      'A',
      'AB=',
      'A===',
      '====',
      'AB C',
      'AA=A',
      '=AAA',
      'AAA\n',
      'AB-_',
      'ÿÿÿÿ',
      'QUJD\u0100',
      ...later,
    ]) {
      expect(base64DecodedLength(bad), bad).toBe(-1);
      expect(() => base64ToBytes(bad)).toThrow(RangeError);
    }
  });
});
