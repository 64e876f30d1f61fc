/**
 * Trace parsing (pure: text in, workload out). Two recorded formats:
 *
 * - Azure LLM inference trace 2023 CSV, `TIMESTAMP,ContextTokens,GeneratedTokens` (Azure/AzurePublicDataset,
 *   CC-BY 4.0; Patel et al., "Splitwise: Efficient generative LLM inference using phase splitting", ISCA 2024).
 * - Mooncake FAST'25 JSONL, `{"timestamp", "input_length", "output_length", "hash_ids"}` (kvcache-ai/Mooncake,
 *   Apache-2.0; Qin et al., "Mooncake: A KVCache-centric disaggregated architecture for LLM serving", FAST 2025).
 *
 * Blank lines are ignored, CRLF is tolerated, the last line needs no newline. A malformed line is an
 * error naming its line number; with `skipBadLines` it is skipped and reported instead.
 */
import type { SimRequest, Workload } from './workload';

export type TraceFormat = 'azure-csv' | 'mooncake-jsonl';

export interface LineProblem {
  /** 1-based line number in the file. */
  readonly line: number;
  readonly reason: string;
}

/** How many bad lines an error or warning lists; the count covers all of them. */
export const LISTED_BAD_LINES = 10;

export class TraceError extends Error {
  override readonly name = 'TraceError';
  constructor(
    readonly source: string,
    readonly problems: readonly LineProblem[],
    readonly badLines: number,
    summary?: string,
  ) {
    super(
      summary ?? `${source}: ${badLines} malformed line${badLines === 1 ? '' : 's'}${listProblems(problems, badLines)}`,
    );
  }
}

export function listProblems(problems: readonly LineProblem[], total: number): string {
  const shown = problems.map((p) => `\n  line ${p.line}: ${p.reason}`).join('');
  const more = total > problems.length ? `\n  … and ${total - problems.length} more` : '';
  return `${shown}${more}`;
}

export interface ParseOptions {
  /** Skip malformed lines (reported in the result) instead of failing. Default false. */
  readonly skipBadLines?: boolean;
}

export interface ParsedTrace {
  readonly format: TraceFormat;
  readonly workload: Workload;
  /** Lines skipped with skipBadLines (the first LISTED_BAD_LINES), and how many there were. */
  readonly skipped: readonly LineProblem[];
  readonly skippedCount: number;
}

/** Picks the format from the file name's extension, else from the content. */
export function detectTraceFormat(name: string, text: string): TraceFormat {
  const lower = name.toLowerCase();
  if (lower.endsWith('.csv')) return 'azure-csv';
  if (lower.endsWith('.jsonl') || lower.endsWith('.json') || lower.endsWith('.ndjson')) return 'mooncake-jsonl';
  const first = text.replace(/^\uFEFF/, '').trimStart();
  if (first.startsWith('{')) return 'mooncake-jsonl';
  if (/^timestamp\s*,/i.test(first)) return 'azure-csv';
  throw new TraceError(
    name,
    [],
    0,
    `${name}: unknown trace format: expected an Azure CSV (TIMESTAMP,ContextTokens,GeneratedTokens) or a Mooncake JSONL file`,
  );
}

export function parseTrace(text: string, name: string, opts: ParseOptions = {}): ParsedTrace {
  return detectTraceFormat(name, text) === 'azure-csv'
    ? parseAzureCsv(text, name, opts)
    : parseMooncakeJsonl(text, name, opts);
}

class ProblemLog {
  readonly listed: LineProblem[] = [];
  count = 0;
  add(line: number, reason: string): void {
    this.count += 1;
    if (this.listed.length < LISTED_BAD_LINES) this.listed.push({ line, reason });
  }
}

function lines(text: string): string[] {
  return text.replace(/^\uFEFF/, '').split('\n');
}

function finish(
  format: TraceFormat,
  source: string,
  rows: Row[],
  problems: ProblemLog,
  opts: ParseOptions,
): ParsedTrace {
  if (problems.count > 0 && !opts.skipBadLines) {
    throw new TraceError(
      source,
      problems.listed,
      problems.count,
      `${source}: ${problems.count} malformed line${problems.count === 1 ? '' : 's'} (use --skip-bad-lines to skip them)${listProblems(problems.listed, problems.count)}`,
    );
  }
  if (rows.length === 0)
    throw new TraceError(source, problems.listed, problems.count, `${source}: no requests in the trace`);
  // Arrival order, relative to the earliest request; a stable sort keeps file order among equal times.
  const t0 = rows.reduce((min, r) => Math.min(min, r.atMs), Infinity);
  // A trace already in order (most are) is what the stable sort would give back.
  let sorted = true;
  for (let k = 1; k < rows.length && sorted; k++) sorted = (rows[k - 1] as Row).atMs <= (rows[k] as Row).atMs;
  if (!sorted) rows.sort((a, b) => a.atMs - b.atMs);
  const requests: SimRequest[] = rows.map((r) => {
    const id = `line-${r.line}`;
    const arrivalMs = r.atMs - t0;
    return r.hashes
      ? { id, arrivalMs, promptTokens: r.prompt, outputTokens: r.output, blockHashes: r.hashes }
      : { id, arrivalMs, promptTokens: r.prompt, outputTokens: r.output };
  });
  return { format, workload: { source, requests }, skipped: problems.listed, skippedCount: problems.count };
}

interface Row {
  readonly line: number;
  readonly atMs: number;
  readonly prompt: number;
  readonly output: number;
  readonly hashes?: readonly number[];
}

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(\.\d+)?$/;

/**
 * `2023-11-16 18:15:46.6805900` as whole ms since the epoch plus the sub-second fraction in ms, kept
 * apart so that differences keep sub-microsecond precision (epoch ms use up most of a double's digits).
 * The trace's timestamps carry no zone; UTC is assumed, only differences matter.
 */
export function parseAzureTimestamp(value: string): { readonly wholeMs: number; readonly fractionMs: number } | null {
  const parsed = readAzureTimestamp(value);
  return typeof parsed === 'string' ? null : parsed;
}

/**
 * The timestamp, or why it is not one: the wrong shape, or a date or time that does not exist on the
 * calendar (2023-02-30, 2023-13-01, 24:00:00). Date.UTC alone would roll 2023-02-30 over to 2 March.
 */
export function readAzureTimestamp(value: string): { readonly wholeMs: number; readonly fractionMs: number } | string {
  const m = TIMESTAMP.exec(value.trim());
  if (!m) return `TIMESTAMP must look like 2023-11-16 18:15:46.6805900, got "${value}"`;
  const [, y, mo, d, h, mi, s, frac] = m as unknown as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
    string?,
  ];
  const dayMs = calendarDayMs(y, mo, d);
  if (dayMs === null) return `TIMESTAMP "${value.trim()}" is not a calendar date (${y}-${mo}-${d} does not exist)`;
  const [hour, minute, second] = [Number(h), Number(mi), Number(s)];
  // A leap second (:60) is allowed, as the trace's clock may record one.
  if (hour > 23 || minute > 59 || second > 60) return `TIMESTAMP "${value.trim()}" is not a time of day`;
  const ms = dayMs + ((hour * 60 + minute) * 60 + second) * 1000;
  return { wholeMs: ms, fractionMs: frac ? Number(frac) * 1000 : 0 };
}

/** The last calendar day checked: a trace's rows share a handful of days, so each is validated once. */
let lastDay: { readonly key: string; readonly ms: number | null } | null = null;

/** UTC midnight of year-month-day in ms, or null when that day does not exist. */
function calendarDayMs(y: string, mo: string, d: string): number | null {
  const key = `${y}-${mo}-${d}`;
  if (lastDay?.key === key) return lastDay.ms;
  const [year, month, day] = [Number(y), Number(mo), Number(d)];
  const ms = Date.UTC(year, month - 1, day);
  const date = new Date(ms);
  const real =
    month >= 1 &&
    month <= 12 &&
    date.getUTCFullYear() === year &&
    date.getUTCMonth() === month - 1 &&
    date.getUTCDate() === day;
  lastDay = { key, ms: real ? ms : null };
  return lastDay.ms;
}

function tokenCount(value: unknown, field: string, min: number): number | string {
  const n = typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min) {
    return `${field} must be a whole number of at least ${min}, got ${JSON.stringify(value)}`;
  }
  return n;
}

export function parseAzureCsv(text: string, source = 'trace.csv', opts: ParseOptions = {}): ParsedTrace {
  const all = lines(text);
  const problems = new ProblemLog();
  const rows: Row[] = [];
  let columns: { ts: number; ctx: number; gen: number; count: number } | null = null;
  let base: number | undefined;
  for (let i = 0; i < all.length; i++) {
    const line = (all[i] as string).replace(/\r$/, '');
    if (line.trim() === '') continue;
    const fields = line.split(',');
    if (columns === null) {
      const names = fields.map((f) => f.trim().toLowerCase());
      const ts = names.indexOf('timestamp');
      const ctx = names.indexOf('contexttokens');
      const gen = names.indexOf('generatedtokens');
      if (ts === -1 || ctx === -1 || gen === -1) {
        throw new TraceError(
          source,
          [{ line: i + 1, reason: 'expected the header TIMESTAMP,ContextTokens,GeneratedTokens' }],
          1,
          `${source}: line ${i + 1}: expected the header TIMESTAMP,ContextTokens,GeneratedTokens, got "${line.slice(0, 80)}"`,
        );
      }
      columns = { ts, ctx, gen, count: names.length };
      continue;
    }
    if (fields.length !== columns.count) {
      problems.add(i + 1, `expected ${columns.count} comma-separated fields, got ${fields.length}`);
      continue;
    }
    const stamp = readAzureTimestamp(fields[columns.ts] as string);
    if (typeof stamp === 'string') {
      problems.add(i + 1, stamp);
      continue;
    }
    const prompt = tokenCount(fields[columns.ctx], 'ContextTokens', 1);
    const output = tokenCount(fields[columns.gen], 'GeneratedTokens', 1);
    if (typeof prompt === 'string' || typeof output === 'string') {
      problems.add(i + 1, typeof prompt === 'string' ? prompt : (output as string));
      continue;
    }
    base ??= stamp.wholeMs;
    rows.push({ line: i + 1, atMs: stamp.wholeMs - base + stamp.fractionMs, prompt, output });
  }
  if (columns === null) throw new TraceError(source, [], 0, `${source}: empty trace (no header)`);
  return finish('azure-csv', source, rows, problems, opts);
}

const CR = 13;
const OPEN_BRACE = 123;

function allSafeIntegers(values: readonly unknown[]): boolean {
  for (let k = 0; k < values.length; k++) if (!Number.isSafeInteger(values[k])) return false;
  return true;
}

export function parseMooncakeJsonl(text: string, source = 'trace.jsonl', opts: ParseOptions = {}): ParsedTrace {
  const all = lines(text);
  const problems = new ProblemLog();
  const rows: Row[] = [];
  for (let i = 0; i < all.length; i++) {
    const raw = all[i] as string;
    const line = raw.charCodeAt(raw.length - 1) === CR ? raw.slice(0, -1) : raw;
    // A line that opens an object is not blank: only others need trimming to tell.
    if (line.charCodeAt(0) !== OPEN_BRACE && line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      problems.add(i + 1, `not JSON: ${(err as Error).message}`);
      continue;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      problems.add(i + 1, 'expected a JSON object');
      continue;
    }
    const o = value as Record<string, unknown>;
    if (typeof o.timestamp !== 'number' || !Number.isFinite(o.timestamp) || o.timestamp < 0) {
      problems.add(i + 1, `timestamp must be a number of ms >= 0, got ${JSON.stringify(o.timestamp)}`);
      continue;
    }
    const prompt = tokenCount(o.input_length, 'input_length', 1);
    const output = tokenCount(o.output_length, 'output_length', 1);
    if (typeof prompt === 'string' || typeof output === 'string') {
      problems.add(i + 1, typeof prompt === 'string' ? prompt : (output as string));
      continue;
    }
    let hashes: number[] | undefined;
    if (o.hash_ids !== undefined) {
      if (!Array.isArray(o.hash_ids) || !allSafeIntegers(o.hash_ids)) {
        problems.add(i + 1, 'hash_ids must be an array of whole numbers');
        continue;
      }
      hashes = o.hash_ids as number[];
    }
    rows.push(
      hashes
        ? { line: i + 1, atMs: o.timestamp, prompt, output, hashes }
        : { line: i + 1, atMs: o.timestamp, prompt, output },
    );
  }
  return finish('mooncake-jsonl', source, rows, problems, opts);
}
