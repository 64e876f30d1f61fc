/**
 * The handoff descriptor: the small versioned JSON message that goes on the handoff queue
 * (claim-check pattern). It names where the KV blob is (or carries it inline when small),
 * plus everything decode needs to continue the request.
 */
import type { ChatMessage, GeneratedToken, SamplingParams, ToolOffer } from '../ports';
import { base64DecodedLength, base64LengthOfCanonical, base64ToBytes, bytesToBase64 } from './base64';
import { crc32c } from './checksum';
import { TRACEPARENT_CHARS, validTraceparent } from './traceparent';

/**
 * The version this build writes. Bump on any change to the fields; a reader rejects every version it was not
 * built for. Version 2 added `traceparent`; version 3 the function-calling fields (`tools`, and `toolCalls` /
 * `toolCallId` on messages). Versions 1 and 2 (without them) are still read.
 */
export const DESCRIPTOR_VERSION = 3;

/** Versions this build reads: a decoder of this release takes what the previous release's prefill wrote. */
export const READABLE_DESCRIPTOR_VERSIONS: readonly number[] = [1, 2, 3];

/**
 * Largest encoded descriptor, in UTF-8 bytes: the SQS message size limit, which AWS raised
 * from 256 KiB to 1 MiB in 2025 ("Amazon SQS increases maximum message payload size to 1 MiB").
 * SQS counts message attributes against the same limit, so senders should keep those tiny.
 */
export const MAX_DESCRIPTOR_BYTES = 1_048_576;

/**
 * KV blobs up to this size travel inline (base64, 4/3 larger) instead of through the KV store:
 * one round trip saved, and 192 KiB → 256 KiB of base64 leaves ample room under MAX_DESCRIPTOR_BYTES.
 */
export const INLINE_KV_MAX_BYTES = 192 * 1024;

const MAX_ID_CHARS = 256;
const MAX_KEY_CHARS = 1024;
const MAX_STAMP_NAME_CHARS = 128;
const U32_MAX = 0xffff_ffff;

export type KvLocation =
  | { readonly kind: 'ref'; readonly key: string; readonly bytes: number; readonly checksum: number }
  | { readonly kind: 'inline'; readonly data: string; readonly bytes: number; readonly checksum: number }
  | { readonly kind: 'none' };

/** One trace stamp: the emulated device time charged and the measured wall time, kept apart. */
export interface TraceStamp {
  readonly emulatedMs: number;
  readonly measuredMs: number;
}

export type HandoffMode = 'disaggregated' | 'colocated';

export interface HandoffDescriptor {
  readonly v: 1 | 2 | typeof DESCRIPTOR_VERSION;
  readonly requestId: string;
  /** 1 on the first try; incremented on each recompute or retry. */
  readonly attempt: number;
  /** The emulated target model id (the one timing is charged for). */
  readonly model: string;
  readonly promptTokens: number;
  /** The prompt's token ids; promptIds.length === promptTokens. */
  readonly promptIds: readonly number[];
  /** The chat messages, for hosted backends that take text rather than token ids. */
  readonly messages?: readonly ChatMessage[];
  readonly sampling: SamplingParams;
  /** Version 3: the functions the model may call, for backends that call tools. */
  readonly tools?: ToolOffer;
  /** Epoch ms after which decode should give up on the request. */
  readonly deadlineMs: number;
  readonly createdAtMs: number;
  readonly kv: KvLocation;
  readonly firstToken: GeneratedToken | null;
  readonly stamps: Readonly<Record<string, TraceStamp>>;
  readonly mode: HandoffMode;
  /**
   * Version 2: the W3C traceparent of the prefill stage's span, so the decode stage's span joins its trace
   * (lib/adapters/telemetry.ts). Absent when nobody traced the request.
   */
  readonly traceparent?: string;
}

export type DescriptorErrorCode = 'too_large' | 'malformed' | 'version_mismatch' | 'invalid';

export class DescriptorError extends Error {
  override readonly name = 'DescriptorError';
  constructor(
    readonly code: DescriptorErrorCode,
    message: string,
    /** For 'invalid': the path of the offending field, e.g. "sampling.topP" or "promptIds[3]". */
    readonly field?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Validates and serializes; throws DescriptorError ('invalid' or 'too_large'). */
export function encodeDescriptor(d: HandoffDescriptor): string {
  validate(d);
  const text = JSON.stringify(d);
  if (surelyFits(text)) return text;
  const size = utf8ByteLength(text);
  if (size > MAX_DESCRIPTOR_BYTES) {
    throw new DescriptorError(
      'too_large',
      `handoff descriptor is ${size} bytes, over the ${MAX_DESCRIPTOR_BYTES} byte queue message limit; ` +
        `send the KV blob by reference (inline only up to ${INLINE_KV_MAX_BYTES} bytes) or shorten the prompt`,
    );
  }
  return text;
}

/** Parses and validates every field; throws only DescriptorError, whatever the input. */
export function decodeDescriptor(text: string): HandoffDescriptor {
  try {
    return decode(text);
  } catch (err) {
    if (err instanceof DescriptorError) throw err;
    // Unreachable by design; kept so a bug here still surfaces as the one error type callers handle.
    throw new DescriptorError('malformed', `handoff descriptor could not be decoded: ${String(err)}`, undefined, {
      cause: err,
    });
  }
}

function decode(text: string): HandoffDescriptor {
  if (typeof text !== 'string') {
    throw new DescriptorError('malformed', `handoff descriptor must be a string, got ${typeof text}`);
  }
  // Each UTF-16 unit is at least one UTF-8 byte, so the cheap length test bounds the work before parsing.
  const size = text.length > MAX_DESCRIPTOR_BYTES || surelyFits(text) ? text.length : utf8ByteLength(text);
  if (size > MAX_DESCRIPTOR_BYTES) {
    throw new DescriptorError(
      'too_large',
      `handoff descriptor is at least ${size} bytes, over the ${MAX_DESCRIPTOR_BYTES} byte limit`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new DescriptorError(
      'malformed',
      `handoff descriptor is not valid JSON: ${(err as Error).message}`,
      undefined,
      {
        cause: err,
      },
    );
  }
  validate(raw, true);
  return raw;
}

/** The bytes decode found in an inline location's base64, for inlineKvBytes to take once. */
const decodedHere = new WeakMap<object, { readonly data: string; readonly blob: Uint8Array }>();

/**
 * True when `text` is under the limit whatever its characters: a UTF-16 unit is at most 3 UTF-8 bytes
 * (a surrogate pair, two units, is 4). Typical descriptors (KV by reference) pass this in O(1), so
 * only one in the last two thirds of the limit pays for a byte count.
 */
function surelyFits(text: string): boolean {
  return text.length * 3 <= MAX_DESCRIPTOR_BYTES;
}

/** Bytes that JSON.stringify + UTF-8 would put on the wire, without allocating the encoding. */
function utf8ByteLength(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

// ---- KV location helpers ----

/**
 * A location carrying `blob` inline as base64. `checksum` identifies the content: by default the
 * CRC-32C of the bytes; the pipeline passes kvBlobChecksum(blob), the CRC the KV blob format carries.
 */
export function inlineKv(blob: Uint8Array, checksum = crc32c(blob)): KvLocation {
  const location = { kind: 'inline', data: bytesToBase64(blob), bytes: blob.length, checksum } as const;
  encodedHere.set(location, location.data);
  return location;
}

/**
 * Inline locations inlineKv built, with the base64 it wrote: while a location still holds that very text, encoding
 * its descriptor need not check every character of it again (a KV blob of up to 192 KiB) to know it is canonical.
 */
const encodedHere = new WeakMap<object, string>();

/** A location pointing at `blob` stored under `key` in the KV store (checksum as for inlineKv). */
export function refKv(key: string, blob: Uint8Array, checksum = crc32c(blob)): KvLocation {
  return { kind: 'ref', key, bytes: blob.length, checksum };
}

/** True when `blob` or a blob's byte count is small enough to travel inline. */
export function fitsInline(bytes: number): boolean {
  return bytes <= INLINE_KV_MAX_BYTES;
}

/**
 * Checks bytes fetched for (or carried by) a KV location against its byte count and checksum.
 * Throws DescriptorError 'invalid' naming kv.bytes or kv.checksum.
 */
export function verifyKvBytes(
  kv: Exclude<KvLocation, { kind: 'none' }>,
  blob: Uint8Array,
  checksumOf: (bytes: Uint8Array) => number = crc32c,
): Uint8Array {
  if (blob.length !== kv.bytes) {
    throw new DescriptorError(
      'invalid',
      `KV blob is ${blob.length} bytes; the descriptor says ${kv.bytes}`,
      'kv.bytes',
    );
  }
  const sum = checksumOf(blob);
  if (sum !== kv.checksum) {
    throw new DescriptorError(
      'invalid',
      `KV blob checksum 0x${sum.toString(16)} does not match the descriptor's 0x${kv.checksum.toString(16)}`,
      'kv.checksum',
    );
  }
  return blob;
}

/** The inline KV bytes of a decoded descriptor, verified against its byte count and checksum. */
export function inlineKvBytes(
  kv: Extract<KvLocation, { kind: 'inline' }>,
  checksumOf: (bytes: Uint8Array) => number = crc32c,
): Uint8Array {
  let blob: Uint8Array;
  const decoded = decodedHere.get(kv);
  try {
    if (decoded && decoded.data === kv.data) {
      decodedHere.delete(kv);
      blob = decoded.blob;
    } else blob = base64ToBytes(kv.data);
  } catch (err) {
    throw new DescriptorError('invalid', 'kv.data is not canonical base64', 'kv.data', { cause: err });
  }
  return verifyKvBytes(kv, blob, checksumOf);
}

// ---- validation ----

type Obj = Record<string, unknown>;

function fail(field: string, message: string): never {
  throw new DescriptorError('invalid', `handoff descriptor field ${field} ${message}`, field);
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function obj(v: unknown, field: string): Obj {
  if (!isObj(v)) fail(field, `must be an object, got ${kindOf(v)}`);
  return v;
}

function onlyKeys(o: Obj, allowed: readonly string[], field: string): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) fail(field ? `${field}.${k}` : k, 'is not a known field');
  }
}

function str(v: unknown, field: string, maxChars: number, minChars = 1): string {
  if (typeof v !== 'string') fail(field, `must be a string, got ${kindOf(v)}`);
  if (v.length < minChars || v.length > maxChars) fail(field, `must be ${minChars}..${maxChars} characters long`);
  return v;
}

function int(v: unknown, field: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) fail(field, `must be an integer, got ${show(v)}`);
  if (v < min || v > max) fail(field, `must be in ${min}..${max}, got ${v}`);
  return v;
}

function num(v: unknown, field: string, min: number, max = Number.MAX_VALUE): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(field, `must be a finite number, got ${show(v)}`);
  if (v < min || v > max) fail(field, `must be in ${min}..${max}, got ${v}`);
  return v;
}

function kindOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

function show(v: unknown): string {
  return typeof v === 'number' ? String(v) : kindOf(v);
}

const TOP_FIELDS = [
  'v',
  'requestId',
  'attempt',
  'model',
  'promptTokens',
  'promptIds',
  'messages',
  'sampling',
  'tools',
  'deadlineMs',
  'createdAtMs',
  'kv',
  'firstToken',
  'stamps',
  'mode',
  'traceparent',
] as const;
const ROLES: readonly string[] = ['system', 'user', 'assistant', 'tool'];
const TOOL_CHOICES: readonly string[] = ['auto', 'none', 'required'];

function validateCall(raw: unknown, f: string): void {
  const c = obj(raw, f);
  onlyKeys(c, ['id', 'name', 'arguments'], f);
  str(c.id, `${f}.id`, MAX_ID_CHARS);
  str(c.name, `${f}.name`, MAX_ID_CHARS);
  str(c.arguments, `${f}.arguments`, Number.MAX_SAFE_INTEGER, 0);
}

function validateTools(raw: unknown): void {
  const t = obj(raw, 'tools');
  onlyKeys(t, ['tools', 'choice'], 'tools');
  if (!Array.isArray(t.tools)) fail('tools.tools', `must be an array, got ${kindOf(t.tools)}`);
  const tools: unknown[] = t.tools;
  for (let i = 0; i < tools.length; i++) {
    const f = `tools.tools[${i}]`;
    const tool = obj(tools[i], f);
    onlyKeys(tool, ['name', 'description', 'parameters'], f);
    str(tool.name, `${f}.name`, MAX_ID_CHARS);
    if (tool.description !== undefined) str(tool.description, `${f}.description`, Number.MAX_SAFE_INTEGER, 0);
    if (tool.parameters !== undefined) obj(tool.parameters, `${f}.parameters`);
  }
  if (typeof t.choice === 'string') {
    if (!TOOL_CHOICES.includes(t.choice)) fail('tools.choice', `must be one of ${TOOL_CHOICES.join(', ')} or {name}`);
  } else {
    const choice = obj(t.choice, 'tools.choice');
    onlyKeys(choice, ['name'], 'tools.choice');
    str(choice.name, 'tools.choice.name', MAX_ID_CHARS);
  }
}
const MODES: readonly string[] = ['disaggregated', 'colocated'];

/** `fromWire`: the descriptor was parsed from text, and an inline KV's base64 is decoded as it is checked. */
function validate(raw: unknown, fromWire = false): asserts raw is HandoffDescriptor {
  if (!isObj(raw)) fail('(root)', `must be a JSON object, got ${kindOf(raw)}`);
  const d = raw;
  // The version goes first: another version may have different fields, so name the version, not a field.
  if (typeof d.v !== 'number') fail('v', `must be a number, got ${kindOf(d.v)}`);
  if (!READABLE_DESCRIPTOR_VERSIONS.includes(d.v)) {
    throw new DescriptorError(
      'version_mismatch',
      `handoff descriptor version ${d.v} is not supported (this build reads versions ` +
        `${READABLE_DESCRIPTOR_VERSIONS.slice(0, -1).join(', ')} and ${READABLE_DESCRIPTOR_VERSIONS.at(-1)}); run prefill and decode from the same release`,
    );
  }
  onlyKeys(d, TOP_FIELDS, '');
  str(d.requestId, 'requestId', MAX_ID_CHARS);
  int(d.attempt, 'attempt', 1);
  str(d.model, 'model', MAX_ID_CHARS);
  const promptTokens = int(d.promptTokens, 'promptTokens', 0);

  if (!Array.isArray(d.promptIds)) fail('promptIds', `must be an array, got ${kindOf(d.promptIds)}`);
  const ids: unknown[] = d.promptIds;
  if (ids.length !== promptTokens) fail('promptIds', `has ${ids.length} ids but promptTokens is ${promptTokens}`);
  // Thousands of ids per request: test them inline and name the field (a new string) only for the one that fails.
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > U32_MAX)
      int(id, `promptIds[${i}]`, 0, U32_MAX);
  }

  if (d.messages !== undefined) {
    if (!Array.isArray(d.messages)) fail('messages', `must be an array, got ${kindOf(d.messages)}`);
    const messages: unknown[] = d.messages;
    for (let i = 0; i < messages.length; i++) {
      const f = `messages[${i}]`;
      const m = obj(messages[i], f);
      onlyKeys(m, ['role', 'content', 'toolCalls', 'toolCallId'], f);
      if (typeof m.role !== 'string' || !ROLES.includes(m.role))
        fail(`${f}.role`, `must be one of ${ROLES.join(', ')}`);
      str(m.content, `${f}.content`, Number.MAX_SAFE_INTEGER, 0);
      if (m.toolCalls !== undefined || m.toolCallId !== undefined) {
        if (d.v < 3) fail(`${f}`, `holds function-calling fields, which descriptor version ${d.v} does not have`);
      }
      if (m.toolCalls !== undefined) {
        if (!Array.isArray(m.toolCalls)) fail(`${f}.toolCalls`, `must be an array, got ${kindOf(m.toolCalls)}`);
        const calls: unknown[] = m.toolCalls;
        for (let j = 0; j < calls.length; j++) validateCall(calls[j], `${f}.toolCalls[${j}]`);
      }
      if (m.toolCallId !== undefined) str(m.toolCallId, `${f}.toolCallId`, MAX_ID_CHARS);
    }
  }
  if (d.tools !== undefined) {
    if (d.v < 3) fail('tools', `is not a field of descriptor version ${d.v}`);
    validateTools(d.tools);
  }

  const s = obj(d.sampling, 'sampling');
  onlyKeys(s, ['temperature', 'topP', 'seed', 'maxTokens', 'stop'], 'sampling');
  num(s.temperature, 'sampling.temperature', 0);
  num(s.topP, 'sampling.topP', Number.MIN_VALUE, 1);
  int(s.seed, 'sampling.seed', Number.MIN_SAFE_INTEGER);
  int(s.maxTokens, 'sampling.maxTokens', 1);
  if (s.stop !== undefined) {
    if (!Array.isArray(s.stop)) fail('sampling.stop', `must be an array, got ${kindOf(s.stop)}`);
    const stop: unknown[] = s.stop;
    for (let i = 0; i < stop.length; i++) str(stop[i], `sampling.stop[${i}]`, Number.MAX_SAFE_INTEGER);
  }

  num(d.deadlineMs, 'deadlineMs', 0);
  num(d.createdAtMs, 'createdAtMs', 0);

  const kv = obj(d.kv, 'kv');
  if (kv.kind === 'ref') {
    onlyKeys(kv, ['kind', 'key', 'bytes', 'checksum'], 'kv');
    str(kv.key, 'kv.key', MAX_KEY_CHARS);
    int(kv.bytes, 'kv.bytes', 0);
    int(kv.checksum, 'kv.checksum', 0, U32_MAX);
  } else if (kv.kind === 'inline') {
    onlyKeys(kv, ['kind', 'data', 'bytes', 'checksum'], 'kv');
    if (typeof kv.data !== 'string') fail('kv.data', `must be a base64 string, got ${kindOf(kv.data)}`);
    const bytes = int(kv.bytes, 'kv.bytes', 0);
    int(kv.checksum, 'kv.checksum', 0, U32_MAX);
    let decoded: number;
    if (encodedHere.get(kv) === kv.data) decoded = base64LengthOfCanonical(kv.data);
    else if (fromWire) {
      // A descriptor read from the wire: its bytes decoded once, here, every character checked as it goes, and kept
      // for inlineKvBytes.
      let blob: Uint8Array;
      try {
        blob = base64ToBytes(kv.data);
      } catch {
        fail('kv.data', 'must be canonical padded base64');
      }
      decodedHere.set(kv, { data: kv.data, blob });
      decoded = blob.length;
    } else decoded = base64DecodedLength(kv.data);
    if (decoded < 0) fail('kv.data', 'must be canonical padded base64');
    if (decoded !== bytes) fail('kv.bytes', `is ${bytes} but kv.data holds ${decoded} bytes`);
  } else if (kv.kind === 'none') {
    onlyKeys(kv, ['kind'], 'kv');
  } else {
    fail('kv.kind', `must be "ref", "inline" or "none"`);
  }

  if (d.firstToken !== null) {
    if (!isObj(d.firstToken)) fail('firstToken', `must be null or an object, got ${kindOf(d.firstToken)}`);
    const t = d.firstToken;
    onlyKeys(t, ['id', 'text'], 'firstToken');
    if (t.id !== null) int(t.id, 'firstToken.id', 0, U32_MAX);
    if (typeof t.text !== 'string') fail('firstToken.text', `must be a string, got ${kindOf(t.text)}`);
  }

  const stamps = obj(d.stamps, 'stamps');
  for (const [name, value] of Object.entries(stamps)) {
    if (name.length < 1 || name.length > MAX_STAMP_NAME_CHARS) {
      fail('stamps', `has a stamp name of ${name.length} characters; names must be 1..${MAX_STAMP_NAME_CHARS}`);
    }
    const f = `stamps.${name}`;
    const st = obj(value, f);
    onlyKeys(st, ['emulatedMs', 'measuredMs'], f);
    num(st.emulatedMs, `${f}.emulatedMs`, 0);
    num(st.measuredMs, `${f}.measuredMs`, 0);
  }

  if (typeof d.mode !== 'string' || !MODES.includes(d.mode)) fail('mode', `must be one of ${MODES.join(', ')}`);

  if (d.traceparent !== undefined) {
    if (d.v < 2) fail('traceparent', 'is not a field of descriptor version 1');
    if (validTraceparent(d.traceparent) !== d.traceparent) {
      fail('traceparent', `must be a lower-case W3C traceparent of ${TRACEPARENT_CHARS} characters`);
    }
  }
}
