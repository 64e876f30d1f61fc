import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { loadTraceFile } from '../../lib/adapters/trace-files';
import {
  detectTraceFormat,
  LISTED_BAD_LINES,
  parseAzureCsv,
  parseAzureTimestamp,
  parseMooncakeJsonl,
  parseTrace,
  TraceError,
} from '../../lib/core/sim';

// The repository's samples (samples/README.md): the first rows of the Azure LLM inference trace 2023
// (CC-BY 4.0; Patel et al., Splitwise, ISCA 2024) and of the Mooncake FAST'25 conversation trace
// (Apache-2.0; Qin et al., Mooncake, FAST 2025).
const AZURE = new URL('../../samples/azure-llm-2023-conv-sample.csv', import.meta.url);
const MOONCAKE = new URL('../../samples/mooncake-fast25-conversation-sample.jsonl', import.meta.url);

const HEADER = 'TIMESTAMP,ContextTokens,GeneratedTokens';

function traceErrorOf(fn: () => unknown): TraceError {
  try {
    fn();
  } catch (err) {
    if (err instanceof TraceError) return err;
    throw err;
  }
  throw new Error('expected a TraceError');
}

describe('trace parsing', () => {
  it('loads the Azure 2023 conversation sample: 2,000 requests, arrivals from 0 in order', async () => {
    const trace = await loadTraceFile(AZURE);
    expect(trace.format).toBe('azure-csv');
    const requests = trace.workload.requests;
    expect(requests).toHaveLength(2000);
    expect(requests[0]).toMatchObject({ arrivalMs: 0, promptTokens: 374, outputTokens: 44 });
    // Second row: 18:15:50.9951690 - 18:15:46.6805900 = 4314.579 ms.
    expect(requests[1]!.arrivalMs).toBeCloseTo(4314.579, 6);
    for (let i = 1; i < requests.length; i++)
      expect(requests[i]!.arrivalMs).toBeGreaterThanOrEqual(requests[i - 1]!.arrivalMs);
  });

  it('loads the Mooncake conversation sample: 300 requests with 512-token block hashes', async () => {
    const trace = await loadTraceFile(MOONCAKE);
    expect(trace.format).toBe('mooncake-jsonl');
    const requests = trace.workload.requests;
    expect(requests).toHaveLength(300);
    expect(requests[0]).toMatchObject({ arrivalMs: 0, promptTokens: 6758, outputTokens: 500 });
    expect(requests[0]!.blockHashes).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
    const mean = requests.reduce((s, r) => s + r.promptTokens, 0) / requests.length;
    // The sample's own average (the whole trace's is 12,035): 4,269,971 prompt tokens over 300 requests.
    expect(mean).toBeCloseTo(14_233.237, 3);
  });

  it('parses Azure timestamps to ms, keeping the sub-millisecond fraction', () => {
    const a = parseAzureTimestamp('2023-11-16 18:15:46.6805900')!;
    const b = parseAzureTimestamp('2023-11-16 18:15:45')!;
    expect(a.wholeMs - b.wholeMs + a.fractionMs - b.fractionMs).toBeCloseTo(1680.59, 9);
    expect(parseAzureTimestamp('2023-11-16 25:00:00')).toBeNull();
    expect(parseAzureTimestamp('yesterday')).toBeNull();
    // Real calendar dates only: Date.UTC would roll these over into the next month.
    expect(parseAzureTimestamp('2023-02-30 10:00:00')).toBeNull();
    expect(parseAzureTimestamp('2023-04-31 10:00:00')).toBeNull();
    expect(parseAzureTimestamp('2023-02-29 10:00:00')).toBeNull();
    expect(parseAzureTimestamp('2024-02-29 10:00:00')).not.toBeNull();
    expect(parseAzureTimestamp('2023-00-10 10:00:00')).toBeNull();
  });

  it('names the line of a date that does not exist', () => {
    const text = [HEADER, '2023-02-28 23:59:59.5,10,2', '2023-02-30 00:00:01,10,2'].join('\n');
    const err = traceErrorOf(() => parseAzureCsv(text, 'dates.csv'));
    expect(err.problems).toEqual([
      { line: 3, reason: 'TIMESTAMP "2023-02-30 00:00:01" is not a calendar date (2023-02-30 does not exist)' },
    ]);
  });

  it('reports malformed CSV lines with their line numbers and reasons', () => {
    const text = [
      HEADER,
      '2023-11-16 18:15:46.1,374,44',
      'garbage',
      '2023-11-16 18:15:47.1,abc,5',
      '2023-11-16 18:15:48.1,10,0',
    ].join('\n');
    const err = traceErrorOf(() => parseAzureCsv(text, 'bad.csv'));
    expect(err.badLines).toBe(3);
    expect(err.problems.map((p) => p.line)).toEqual([3, 4, 5]);
    expect(err.message).toContain('bad.csv: 3 malformed lines');
    expect(err.message).toContain('line 4: ContextTokens must be a whole number');
    expect(err.message).toContain('line 5: GeneratedTokens must be a whole number of at least 1');
    expect(err.message).toContain('--skip-bad-lines');
  });

  it('lists at most ten bad lines but counts them all', () => {
    const text = [HEADER, ...Array.from({ length: 25 }, () => 'x,y,z'), '2023-11-16 18:15:46,1,1'].join('\n');
    const err = traceErrorOf(() => parseAzureCsv(text));
    expect(err.badLines).toBe(25);
    expect(err.problems).toHaveLength(LISTED_BAD_LINES);
    expect(err.message).toContain('and 15 more');
  });

  it('skips malformed lines when asked, and says which', () => {
    const text = [
      '{"timestamp": 5, "input_length": 10, "output_length": 2}',
      '{not json',
      '{"timestamp": 9, "input_length": 0, "output_length": 2}',
      '{"timestamp": 7, "input_length": 3, "output_length": 1, "hash_ids": [4]}',
    ].join('\n');
    const parsed = parseMooncakeJsonl(text, 'm.jsonl', { skipBadLines: true });
    expect(parsed.skippedCount).toBe(2);
    expect(parsed.skipped.map((p) => p.line)).toEqual([2, 3]);
    expect(parsed.workload.requests.map((r) => [r.arrivalMs, r.promptTokens])).toEqual([
      [0, 10],
      [2, 3],
    ]);
    expect(parsed.workload.requests[1]!.blockHashes).toEqual([4]);
    expect(() => parseMooncakeJsonl(text, 'm.jsonl')).toThrow(/line 2: not JSON/);
  });

  it('accepts CRLF line ends, blank lines and a last line without a newline', () => {
    const csv = `${HEADER}\r\n\r\n2023-11-16 18:15:46.0,100,10\r\n   \r\n2023-11-16 18:15:47.5,200,20`;
    expect(parseAzureCsv(csv).workload.requests.map((r) => [r.arrivalMs, r.promptTokens, r.outputTokens])).toEqual([
      [0, 100, 10],
      [1500, 200, 20],
    ]);
    const jsonl =
      '\r\n{"timestamp": 0, "input_length": 5, "output_length": 1, "hash_ids": [1]}\r\n\r\n{"timestamp": 3, "input_length": 6, "output_length": 2, "hash_ids": [1]}';
    expect(parseMooncakeJsonl(jsonl).workload.requests).toHaveLength(2);
  });

  it('detects the format from the extension, else from the content', async () => {
    expect(detectTraceFormat('a.csv', '')).toBe('azure-csv');
    expect(detectTraceFormat('a.jsonl', '')).toBe('mooncake-jsonl');
    expect(detectTraceFormat('trace', '{"timestamp": 0}')).toBe('mooncake-jsonl');
    expect(detectTraceFormat('trace', `${HEADER}\n`)).toBe('azure-csv');
    expect(() => detectTraceFormat('trace.txt', 'hello')).toThrow(TraceError);
    const text = await readFile(AZURE, 'utf8');
    expect(parseTrace(text, 'no-extension').workload.requests).toHaveLength(2000);
  });

  it('refuses a CSV without the expected header, naming the line', () => {
    expect(() => parseAzureCsv('when,prompt,output\n1,2,3', 'x.csv')).toThrow(/line 1: expected the header/);
  });
});
